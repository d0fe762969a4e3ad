/* version: the release this binary was built from (`git describe --tags
 * --always --dirty` at build time, "0.0.0-unknown" without git), for
 * --version, /healthz and the devsys_build_info metric. */
#ifndef DEVSYS_VERSION_H
#define DEVSYS_VERSION_H

/* Static text, e.g. "v0.9.0", "v0.9.0-3-g1a2b3c4-dirty". */
const char *devsys_version(void);

/* Registers the gauge devsys_build_info{version="..."} 1 in the process's
 * metrics registry (so dashboards can tell which release each process runs). */
void version_metric_register(void);

#endif

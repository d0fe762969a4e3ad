/* version: the build's version text (see version.h). */
#include "version.h"

#include <stdio.h>

#include "metrics.h"
#include "version_gen.h"

const char *devsys_version(void)
{
    return DEVSYS_VERSION_TEXT;
}

void version_metric_register(void)
{
    char labels[160];
    /* git describe prints tag names, hex and dashes: nothing to escape in a label */
    snprintf(labels, sizeof labels, "version=\"%s\"", DEVSYS_VERSION_TEXT);
    metric_set(metric_gauge("devsys_build_info", labels, "The release this process was built from (value 1)"), 1);
}

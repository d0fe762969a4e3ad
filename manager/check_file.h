/* check_file: the checks file (DEVSYS_MONITOR_CHECKS), YAML read with libyaml:
 *
 *   checks:
 *     - name: web
 *       interval_s: 10
 *       monitor: {type: http, timeout_s: 5, url: "http://127.0.0.1:8081/", expect_status: 200}
 *       follow_up: {kind: deploy, deploy: {app: web, env: prod, action: rollback}}
 *
 * Each check has the API's fields (check_def.h). Errors name the file, the
 * line and the field. */
#ifndef DEVSYS_CHECK_FILE_H
#define DEVSYS_CHECK_FILE_H

#include <jansson.h>
#include <stddef.h>

#define CHECK_FILE_MAX_BYTES (4 << 20)
#define CHECK_FILE_MAX_NODES 200000 /* values in the file, aliases expanded */

/* The checks path defines, each as check_def_parse makes it (a new array
 * reference), or NULL with why ("/etc/devsys/checks.yaml:12:
 * checks[1].monitor.body_regex: invalid regular expression /(/: ..."). */
json_t *check_file_load(const char *path, char *why, size_t cap);

/* The same for YAML text already in memory (len bytes); name is used in the
 * messages in place of the path. */
json_t *check_file_parse(const char *name, const char *text, size_t len, char *why, size_t cap);

#endif

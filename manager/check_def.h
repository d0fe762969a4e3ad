/* check_def: the rules of a check, shared by the API (http_monitors.c) and the
 * checks file (check_file.c): its fields, bounds and defaults, its probe (the
 * monitor section of its tasks, validated as the monitor kind does, regexes
 * compiled with regcomp) and its follow-up (a task spec, validated as a
 * submit), with messages naming the field. */
#ifndef DEVSYS_CHECK_DEF_H
#define DEVSYS_CHECK_DEF_H

#include <jansson.h>
#include <stddef.h>

#define CHECK_INTERVAL_DEFAULT 60
#define CHECK_FAILURE_THRESHOLD_DEFAULT 3
#define CHECK_SUCCESS_THRESHOLD_DEFAULT 2
#define CHECK_TIMEOUT_MAX 300

/* body: {"name", "monitor": {"type", "timeout_s", "<type>": {...}},
 * "interval_s", "failure_threshold", "success_threshold", "follow_up"}. The
 * flat object checkdb_put takes (new reference), defaults filled in, or NULL
 * with why ("monitor.http.body_regex: not a valid POSIX extended regular
 * expression: ..."). */
json_t *check_def_parse(const json_t *body, char *why, size_t cap);

/* Is s a check name: 1..64 characters of [A-Za-z0-9_.-]? */
int check_def_name_ok(const char *s);

#endif

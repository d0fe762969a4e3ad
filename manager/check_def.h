/* check_def: the rules of a check, shared by the API (http_monitors.c) and the
 * checks file (check_file.c): its fields, bounds and defaults, its probe (the
 * monitor section of its tasks, all fields at one level as kind monitor takes
 * it, proto/kind.h; judged by that kind's validator) and its follow-up (a task
 * spec, validated as a submit), with messages naming the field. */
#ifndef DEVSYS_CHECK_DEF_H
#define DEVSYS_CHECK_DEF_H

#include <jansson.h>
#include <stddef.h>

#define CHECK_INTERVAL_DEFAULT 60
#define CHECK_FAILURE_THRESHOLD_DEFAULT 3
#define CHECK_SUCCESS_THRESHOLD_DEFAULT 2

/* body: {"name", "monitor": {"type", "timeout_s", <the type's fields>},
 * "interval_s", "failure_threshold", "success_threshold", "follow_up"}. The
 * flat object checkdb_put takes (new reference), defaults filled in, or NULL
 * with why ("monitor.body_regex: invalid regular expression /(/: ..."). The
 * monitor section may not carry "check" or a log's "offset": the manager
 * sets them. */
json_t *check_def_parse(const json_t *body, char *why, size_t cap);

/* The probe task spec of check name with probe monitor (a new reference), as
 * check_tick (migrations/015_checks.sql) builds it: kind and queue monitor,
 * name "check <name>", one attempt, the monitor section plus "check" and,
 * when log_offset >= 0, "offset". The two must stay the same. */
json_t *check_def_probe_spec(const json_t *monitor, const char *name, long long log_offset);

/* Is s a check name: 1..64 characters of [A-Za-z0-9_.-]? */
int check_def_name_ok(const char *s);

#endif

/* check_def: a check's fields and their rules (see check_def.h). The probe
 * is the monitor kind's section: the kind's validator (proto/kind_monitor.c)
 * judges it, on the probe task spec the check timer will submit. */
#include "check_def.h"

#include <stdio.h>
#include <string.h>

#include "spec.h"

static int bad(char *why, size_t cap, const char *field, const char *rule)
{
    snprintf(why, cap, "%s: %s", field, rule);
    return -1;
}

int check_def_name_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    return n > 0 && n <= 64 &&
           strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") == n;
}

/* Unknown keys of o: the first one, or NULL. */
static const char *unknown_key(const json_t *o, const char *const *known)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)o, k, v) {
        int ok = 0;
        for (const char *const *p = known; *p; p++)
            ok |= strcmp(*p, k) == 0;
        if (!ok)
            return k;
    }
    return NULL;
}

static int int_in(const json_t *v, long long lo, long long hi)
{
    return json_is_integer(v) && json_integer_value(v) >= lo && json_integer_value(v) <= hi;
}

json_t *check_def_probe_spec(const json_t *monitor, const char *name, long long log_offset)
{
    json_t *sec = json_deep_copy(monitor);
    json_object_set_new(sec, "check", json_string(name));
    if (log_offset >= 0)
        json_object_set_new(sec, "offset", json_integer((json_int_t)log_offset));
    char title[96];
    snprintf(title, sizeof title, "check %s", name);
    return json_pack("{s:s,s:s,s:s,s:{s:i},s:o}", "kind", "monitor", "queue", "monitor", "name", title,
                     "retry_policy", "max_attempts", 1, "monitor", sec);
}

/* The monitor section of a check: the monitor kind's own section (one level,
 * proto/kind.h), less what the manager sets. The kind's validator judges it
 * on the probe task spec check_tick will submit, with the offset a log
 * check's later probes carry, so a check that is accepted always runs. */
static int probe_valid(const json_t *m, const char *name, char *why, size_t cap)
{
    if (!json_is_object(m))
        return bad(why, cap, "monitor", "required, the probe: an object {\"type\": \"http\"|\"tcp\"|\"dns\"|"
                                        "\"script\"|\"log\", \"timeout_s\", and the type's fields}");
    if (json_object_get(m, "check"))
        return bad(why, cap, "monitor.check", "set by the manager (the check's name)");
    const char *type = json_string_value(json_object_get(m, "type"));
    int is_log = type && strcmp(type, "log") == 0;
    if (is_log && json_object_get(m, "offset"))
        return bad(why, cap, "monitor.offset", "set by the manager (where the last probe stopped reading)");
    json_t *task = check_def_probe_spec(m, name, is_log ? 0 : -1);
    char err[SPEC_ERR_MAX];
    spec_t *s = spec_from_json(task, err, sizeof err);
    json_decref(task);
    if (!s) {
        snprintf(why, cap, "%s", err);
        return -1;
    }
    spec_free(s);
    return 0;
}

/* The follow-up: one task spec, inserted as is by the incident. */
static int follow_up_valid(const json_t *f, json_t *out, char *why, size_t cap)
{
    static const char *const refused[][2] = {
        {"idempotency_key", "not allowed (each incident submits its follow-up once)"},
        {"unique", "not allowed (each incident submits its follow-up once)"},
        {"next", "not supported: a follow-up is one task (a pipeline can be started by it)"},
    };
    if (!json_is_object(f))
        return bad(why, cap, "follow_up", "must be a task spec (a JSON object) or null");
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        if (json_object_get(f, refused[i][0])) {
            char field[64];
            snprintf(field, sizeof field, "follow_up.%s", refused[i][0]);
            return bad(why, cap, field, refused[i][1]);
        }
    char err[SPEC_ERR_MAX];
    spec_t *s = spec_from_json((json_t *)f, err, sizeof err);
    if (!s) {
        snprintf(why, cap, "follow_up.%s", err);
        return -1;
    }
    if (strcmp(s->kind, "monitor") == 0) {
        spec_free(s);
        return bad(why, cap, "follow_up.kind", "must not be monitor (a check's probes are its own)");
    }
    json_object_set_new(out, "follow_up_queue", json_string(s->queue));
    json_object_set_new(out, "follow_up_max_attempts", json_integer(s->retry.max_attempts));
    json_object_set_new(out, "follow_up_priority", json_integer(s->priority));
    spec_free(s);
    return 0;
}

json_t *check_def_parse(const json_t *body, char *why, size_t cap)
{
    static const char *const known[] = {"name", "monitor", "interval_s", "failure_threshold",
                                        "success_threshold", "follow_up", NULL};
    if (!json_is_object(body)) {
        bad(why, cap, "check", "must be an object {\"name\", \"monitor\", \"interval_s\", \"failure_threshold\","
                               " \"success_threshold\", \"follow_up\"}");
        return NULL;
    }
    const char *k = unknown_key(body, known);
    if (k) {
        char buf[64];
        snprintf(why, cap, "%s: unknown field (name, monitor, interval_s, failure_threshold, success_threshold,"
                           " follow_up)", spec_printable(k, strlen(k), buf));
        return NULL;
    }
    const json_t *name = json_object_get(body, "name"), *m = json_object_get(body, "monitor"),
                 *iv = json_object_get(body, "interval_s"), *ft = json_object_get(body, "failure_threshold"),
                 *st = json_object_get(body, "success_threshold"), *fu = json_object_get(body, "follow_up");
    if (!json_is_string(name) || !check_def_name_ok(json_string_value(name))) {
        bad(why, cap, "name", "required, 1 to 64 characters of [A-Za-z0-9_.-]");
        return NULL;
    }
    if (probe_valid(m, json_string_value(name), why, cap) < 0)
        return NULL;
    if (iv && !(json_is_number(iv) && json_number_value(iv) >= 1 && json_number_value(iv) <= 86400)) {
        bad(why, cap, "interval_s", "must be a number of seconds from 1 to 86400");
        return NULL;
    }
    if ((ft && !int_in(ft, 1, 1000)) || (st && !int_in(st, 1, 1000))) {
        bad(why, cap, ft && !int_in(ft, 1, 1000) ? "failure_threshold" : "success_threshold",
            "must be an integer from 1 to 1000");
        return NULL;
    }
    json_t *d = json_pack("{s:O,s:O,s:f,s:I,s:I}", "name", name, "monitor", m, "interval_s",
                          iv ? json_number_value(iv) : CHECK_INTERVAL_DEFAULT, "failure_threshold",
                          (json_int_t)(ft ? json_integer_value(ft) : CHECK_FAILURE_THRESHOLD_DEFAULT),
                          "success_threshold",
                          (json_int_t)(st ? json_integer_value(st) : CHECK_SUCCESS_THRESHOLD_DEFAULT));
    if (fu && !json_is_null(fu)) {
        if (follow_up_valid(fu, d, why, cap) < 0) {
            json_decref(d);
            return NULL;
        }
        json_object_set(d, "follow_up", (json_t *)fu);
    } else {
        json_object_set_new(d, "follow_up", json_null());
    }
    return d;
}

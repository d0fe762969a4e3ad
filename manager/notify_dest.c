/* notify_dest: a destination's fields and their rules (see notify_dest.h). A
 * destination holds the NAME of its signing secret (secret_ref), never the
 * secret: the agents hold the secrets (DEVSYS_NOTIFY_SECRETS_FILE). */
#include "notify_dest.h"

#include <stdio.h>
#include <string.h>

#include "kind.h"
#include "notifydb.h"
#include "spec.h"

#define EVENTS_PER_DEST_MAX 16

/* The numbers of a destination: body path, column, bounds, default. */
static const struct num_field {
    const char *path, *parent, *key, *column;
    double min, max, def;
    int integer;
} nums[] = {
    {"rate.per_s", "rate", "per_s", "rate_per_s", 0.001, 1000, 1, 0},
    {"rate.burst", "rate", "burst", "burst", 1, 1000, 5, 1},
    {"group_wait_s", NULL, "group_wait_s", "group_wait_s", 0, 3600, 5, 0},
    {"group_interval_s", NULL, "group_interval_s", "group_interval_s", 0, 86400, 60, 0},
    {"repeat_interval_s", NULL, "repeat_interval_s", "repeat_interval_s", 0, 604800, 14400, 0},
    {"max_listed", NULL, "max_listed", "max_listed", 1, 100, 20, 1},
    {"max_attempts", NULL, "max_attempts", "max_attempts", 1, 1000, 10, 1},
    {"retry.initial_s", "retry", "initial_s", "retry_initial_s", 0, 86400, 2, 0},
    {"retry.max_s", "retry", "max_s", "retry_max_s", 0, 604800, 300, 0},
    {"timeout_s", NULL, "timeout_s", "timeout_s", 0.1, KIND_NOTIFY_TIMEOUT_MAX, 10, 0},
};
#define NNUMS (sizeof nums / sizeof nums[0])

static const char *const top_fields[] = {"name",     "url",   "events",     "format", "secret_ref",
                                         "rate",     "group_by", "group_wait_s", "group_interval_s",
                                         "repeat_interval_s", "max_listed", "max_attempts", "retry",
                                         "timeout_s", NULL};

int notify_dest_one_of(const char *const *list, const char *s)
{
    for (; *list; list++)
        if (strcmp(*list, s) == 0)
            return 1;
    return 0;
}

/* Unknown keys of o (a sub-object when parent is set). */
static int check_keys(const json_t *o, const char *parent, char *why, size_t cap)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)o, k, v) {
        int known = 0;
        if (!parent)
            known = notify_dest_one_of(top_fields, k);
        for (size_t i = 0; parent && i < NNUMS; i++)
            known |= nums[i].parent && strcmp(nums[i].parent, parent) == 0 && strcmp(nums[i].key, k) == 0;
        if (!known) {
            char buf[64];
            if (!parent && strcmp(k, "secret") == 0)
                snprintf(why, cap, "secret: not accepted: a secret is never stored; put it in the agents'"
                                   " DEVSYS_NOTIFY_SECRETS_FILE and name it here with secret_ref");
            else
                snprintf(why, cap, "%s%s%s: unknown field", parent ? parent : "", parent ? "." : "",
                         spec_printable(k, strlen(k), buf));
            return -1;
        }
    }
    return 0;
}

static int check_strings(const json_t *v, const char *field, const char *const *allowed, size_t max, char *why,
                         size_t cap)
{
    if (!json_is_array(v) || json_array_size(v) > max || (max == EVENTS_PER_DEST_MAX && json_array_size(v) == 0)) {
        snprintf(why, cap, "%s: must be an array of %s of %s", field,
                 max == EVENTS_PER_DEST_MAX ? "1 to 16" : "at most 3", allowed[0]);
        return -1;
    }
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e) {
        if (!json_is_string(e) || !notify_dest_one_of(allowed, json_string_value(e))) {
            char list[256] = "";
            for (const char *const *a = allowed; *a; a++)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", a == allowed ? "" : ", ", *a);
            snprintf(why, cap, "%s[%zu]: must be one of %s", field, i, list);
            return -1;
        }
    }
    return 0;
}

json_t *notify_dest_parse(const json_t *body, char *why, size_t cap)
{
    static const char *const group_keys[] = {"type", "queue", "subject", NULL};
    if (!json_is_object(body)) {
        snprintf(why, cap, "body: must be a JSON object {\"name\", \"url\", \"events\", ...}");
        return NULL;
    }
    if (check_keys(body, NULL, why, cap) < 0)
        return NULL;
    const json_t *name = json_object_get(body, "name"), *url = json_object_get(body, "url"),
                 *events = json_object_get(body, "events"), *format = json_object_get(body, "format"),
                 *ref = json_object_get(body, "secret_ref"), *by = json_object_get(body, "group_by");
    if (!kind_notify_name_ok(name, 64)) {
        snprintf(why, cap, "name: required, 1 to 64 characters of [A-Za-z0-9_.-]");
        return NULL;
    }
    if (!kind_notify_url_ok(url)) {
        snprintf(why, cap, "url: required, an http:// or https:// URL of at most %d bytes", KIND_NOTIFY_URL_MAX);
        return NULL;
    }
    if (check_strings(events, "events", notifydb_event_types, EVENTS_PER_DEST_MAX, why, cap) < 0)
        return NULL;
    if (format && !(json_is_string(format) && notify_dest_one_of((const char *const[]){"json", "slack", NULL},
                                                     json_string_value(format)))) {
        snprintf(why, cap, "format: must be \"json\" or \"slack\"");
        return NULL;
    }
    if (ref && !json_is_null(ref) && json_is_string(ref) && strncmp(json_string_value(ref), "whsec_", 6) == 0) {
        snprintf(why, cap, "secret_ref: names a secret of the agents' DEVSYS_NOTIFY_SECRETS_FILE; a raw"
                           " secret (whsec_...) is refused so that it is never stored");
        return NULL;
    }
    if (ref && !json_is_null(ref) && !kind_notify_name_ok(ref, 64)) {
        snprintf(why, cap, "secret_ref: must name a secret: 1 to 64 characters of [A-Za-z0-9_.-], or null");
        return NULL;
    }
    if (by && check_strings(by, "group_by", group_keys, 3, why, cap) < 0)
        return NULL;
    json_t *d = json_pack("{s:O,s:O,s:O,s:s}", "name", name, "url", url, "events", events, "format",
                          format ? json_string_value(format) : "json");
    json_object_set_new(d, "secret_ref", ref && !json_is_null(ref) ? json_incref((json_t *)ref) : json_null());
    json_object_set_new(d, "group_by", by ? json_incref((json_t *)by) : json_pack("[s,s]", "type", "queue"));
    for (size_t i = 0; i < NNUMS; i++) {
        const struct num_field *f = &nums[i];
        const json_t *parent = f->parent ? json_object_get(body, f->parent) : body;
        if (f->parent && parent && (!json_is_object(parent) || check_keys(parent, f->parent, why, cap) < 0)) {
            if (!json_is_object(parent))
                snprintf(why, cap, "%s: must be an object", f->parent);
            json_decref(d);
            return NULL;
        }
        const json_t *v = parent ? json_object_get(parent, f->key) : NULL;
        double x = v ? json_number_value(v) : f->def;
        if (v && (!(f->integer ? json_is_integer(v) : json_is_number(v)) || !(x >= f->min && x <= f->max))) {
            snprintf(why, cap, "%s: must be %s from %g to %g", f->path, f->integer ? "an integer" : "a number",
                     f->min, f->max);
            json_decref(d);
            return NULL;
        }
        json_object_set_new(d, f->column, f->integer ? json_integer((json_int_t)x) : json_real(x));
    }
    return d;
}


/* devsysctl_queues: the queue commands of the CLI (queues, queue show, pause,
 * resume, set) over /v1/queues (see devsysctl.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devsysctl.h"
#include "xalloc.h"

/* "10/1s" as the API's rate object {"n": 10, "period_s": 1}; "none" as
 * null. Units: ms, s, m, h; the number before the unit is optional (10/s). */
static json_t *parse_rate(const char *s, int per_key)
{
    if (strcmp(s, "none") == 0)
        return json_null();
    char *end;
    long n = strtol(s, &end, 10);
    if (end == s || *end != '/' || n < 1)
        die_usage("--rate must be N/PERIOD like 10/1s, 600/1m or 5/500ms (or none), not '%s'", s);
    const char *p = end + 1;
    double amount = 1;
    if (*p >= '0' && *p <= '9') {
        amount = strtod(p, &end);
        p = end;
    }
    static const struct { const char *unit; double s; } units[] = { { "ms", 0.001 }, { "s", 1 }, { "m", 60 },
                                                                   { "h", 3600 } };
    double scale = 0;
    for (size_t i = 0; i < sizeof units / sizeof *units; i++)
        if (strcmp(p, units[i].unit) == 0)
            scale = units[i].s;
    if (scale == 0 || !(amount > 0) || !isfinite(amount))
        die_usage("--rate must be N/PERIOD like 10/1s, 600/1m or 5/500ms (or none), not '%s'", s);
    return json_pack("{s:I,s:f,s:b}", "n", (json_int_t)n, "period_s", amount * scale, "per_key", per_key);
}

/* The rate of a settings object as "10/1s" (or "-"); caller frees. */
static char *rate_text(const json_t *rate)
{
    if (!json_is_object(rate))
        return xstrdup("-");
    return xasprintf("%lld/%gs%s", (long long)json_integer_value(json_object_get(rate, "n")),
                     json_number_value(json_object_get(rate, "period_s")),
                     json_is_true(json_object_get(rate, "per_key")) ? " per key" : "");
}

/* One queue object flattened for print_table / print_object. New reference. */
static json_t *flat(const json_t *q)
{
    json_t *stats = json_object_get(q, "stats");
    json_t *conc = json_object_get(q, "concurrency");
    char *rate = rate_text(json_object_get(q, "rate"));
    json_t *row = json_pack("{s:O,s:s,s:o,s:s}", "queue", json_object_get(q, "queue"), "paused",
                            json_is_true(json_object_get(q, "paused")) ? "yes" : "no", "concurrency",
                            json_is_integer(conc) ? json_incref(conc) : json_string("-"), "rate", rate);
    free(rate);
    static const char *const counts[] = { "depth", "in_flight", "delayed", "dlq" };
    for (size_t i = 0; i < 4; i++) {
        json_t *v = json_object_get(stats, counts[i]);
        json_object_set_new(row, counts[i], v ? json_incref(v) : json_string("?"));
    }
    json_t *levels = json_object_get(stats, "levels");
    if (levels)
        json_object_set(row, "levels", levels);
    return row;
}

int cmd_queues(const struct ctl *ctl)
{
    int code;
    json_t *doc = ctl_call(ctl, "GET", "/v1/queues", NULL, 0, &code);
    if (!doc || ctl->json) {
        json_decref(doc);
        return code;
    }
    json_t *rows = json_array(), *q;
    size_t i;
    json_array_foreach(json_object_get(doc, "queues"), i, q)
        json_array_append_new(rows, flat(q));
    static const char *const heads[] = { "QUEUE", "PAUSED", "CONCURRENCY", "RATE", "DEPTH", "IN_FLIGHT",
                                         "DELAYED", "DLQ" };
    static const char *const keys[] = { "queue", "paused", "concurrency", "rate", "depth", "in_flight",
                                        "delayed", "dlq" };
    print_table(rows, heads, keys, 8);
    json_decref(rows);
    json_decref(doc);
    return 0;
}

static int show_queue(const struct ctl *ctl, const char *method, const char *path, const char *body,
                      const char *done)
{
    int code;
    json_t *doc = ctl_call(ctl, method, path, body, body ? strlen(body) : 0, &code);
    if (!doc || ctl->json) {
        json_decref(doc);
        return code;
    }
    if (done)
        printf("%s\n", done);
    json_t *row = flat(doc);
    static const char *const extra[] = { "mirrored", "notified", "note", "updated_at", "updated_by" };
    for (size_t i = 0; i < sizeof extra / sizeof *extra; i++)
        if (json_object_get(doc, extra[i]))
            json_object_set(row, extra[i], json_object_get(doc, extra[i]));
    if (!json_object_get(doc, "stats")) /* a change's answer has no stats */
        for (const char *const *k = (const char *const[]){ "depth", "in_flight", "delayed", "dlq", NULL }; *k; k++)
            json_object_del(row, *k);
    static const char *const order[] = { "queue", "paused", "concurrency", "rate", NULL };
    print_object(row, order, NULL);
    json_decref(row);
    json_decref(doc);
    return 0;
}

int cmd_queue(const struct ctl *ctl, const char *sub, const char *queue, const struct queue_set_opts *o)
{
    char *q = enc(queue), *path = NULL, *done = NULL, *body = NULL;
    int code;
    if (strcmp(sub, "show") == 0) {
        path = xasprintf("/v1/queues/%s", q);
        code = show_queue(ctl, "GET", path, NULL, NULL);
    } else if (strcmp(sub, "pause") == 0 || strcmp(sub, "resume") == 0) {
        int pause = strcmp(sub, "pause") == 0;
        /* literals, not sub: gcc -O2 with the sanitizers cannot see sub is non-NULL here */
        path = xasprintf("/v1/queues/%s/%s", q, pause ? "pause" : "resume");
        done = xasprintf("%s %s", pause ? "paused" : "resumed", queue);
        code = show_queue(ctl, "POST", path, NULL, done);
    } else if (strcmp(sub, "set") == 0) {
        if (!o->concurrency && !o->rate)
            die_usage("queue set needs --concurrency N|none or --rate N/PERIOD|none%s", "");
        if (o->per_key && !o->rate)
            die_usage("--per-key goes with --rate%s", "");
        json_t *b = json_object();
        if (o->concurrency) {
            char *end;
            long n = strtol(o->concurrency, &end, 10);
            if (strcmp(o->concurrency, "none") == 0)
                json_object_set_new(b, "concurrency", json_null());
            else if (*o->concurrency && !*end && n >= 1)
                json_object_set_new(b, "concurrency", json_integer(n));
            else
                die_usage("--concurrency must be a positive integer or none, not '%s'", o->concurrency);
        }
        if (o->rate)
            json_object_set_new(b, "rate", parse_rate(o->rate, o->per_key));
        body = json_dumps(b, JSON_COMPACT);
        json_decref(b);
        path = xasprintf("/v1/queues/%s/settings", q);
        done = xasprintf("updated %s", queue);
        code = show_queue(ctl, "PATCH", path, body, done);
    } else {
        die_usage("queue takes show, pause, resume or set, not '%s'", sub);
    }
    free(body);
    free(done);
    free(path);
    free(q);
    return code;
}

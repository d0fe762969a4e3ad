/* devsysctl_notify: the notification commands of the CLI over
 * /v1/notifications (see devsysctl.h): notify add|list|rm|events. Settings
 * are KEY=VALUE words (the API's field names), so the global options stay as
 * they are. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devsysctl.h"
#include "xalloc.h"

/* A number, or the text as given (the API says what is wrong with it). */
static json_t *num(const char *s)
{
    char *end;
    double v = strtod(s, &end);
    if (*s && !*end)
        return v == (double)(long long)v && !strchr(s, '.') ? json_integer((json_int_t)v) : json_real(v);
    return json_string(s);
}

/* Sets path (a.b or a) of o to v; takes the reference to v. */
static void set_path(json_t *o, const char *key, json_t *v)
{
    const char *dot = strchr(key, '.');
    if (!dot) {
        json_object_set_new(o, key, v);
        return;
    }
    char parent[64];
    snprintf(parent, sizeof parent, "%.*s", (int)(dot - key), key);
    json_t *p = json_object_get(o, parent);
    if (!json_is_object(p)) {
        p = json_object();
        json_object_set_new(o, parent, p);
    }
    json_object_set_new(p, dot + 1, v);
}

/* notify add NAME URL EVENTS [KEY=VALUE...]: keys as in the API (format,
 * secret_ref, group_by, group_wait_s, rate.per_s, rate.burst, retry.initial_s,
 * ...); list values (events, group_by) are comma-separated. */
static int notify_add(const struct ctl *ctl, int argc, char **argv)
{
    if (argc < 4)
        die_usage("notify add needs NAME URL EVENTS [KEY=VALUE...]%s", "");
    json_t *d = json_pack("{s:s,s:s,s:o}", "name", argv[1], "url", argv[2], "events", ctl_csv(argv[3]));
    for (int i = 4; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        if (!eq || eq == argv[i])
            die_usage("notify add: expected KEY=VALUE, not '%s'", argv[i]);
        *eq = '\0';
        const char *k = argv[i], *v = eq + 1;
        json_t *val = strcmp(k, "group_by") == 0 ? ctl_csv(v)
                      : strcmp(k, "format") == 0 || strcmp(k, "secret_ref") == 0 ? json_string(v)
                                                                                  : num(v);
        set_path(d, k, val);
    }
    char *body = json_dumps(d, JSON_COMPACT);
    json_decref(d);
    int code;
    json_t *doc = ctl_call(ctl, "POST", "/v1/notifications/destinations", body, strlen(body), &code);
    free(body);
    if (doc && !ctl->json)
        printf("destination %s saved\n", json_string_value(json_object_get(doc, "name")));
    json_decref(doc);
    return doc ? 0 : code;
}

/* ["a","b"] as "a,b"; caller frees. */
static char *joined(const json_t *a)
{
    size_t i, len = 1;
    json_t *e;
    json_array_foreach(a, i, e) len += json_string_length(e) + 1;
    char *s = xcalloc(1, len);
    json_array_foreach(a, i, e) {
        if (i)
            strcat(s, ",");
        strcat(s, json_string_value(e) ? json_string_value(e) : "");
    }
    return s;
}

static json_t *dest_row(const json_t *d)
{
    const json_t *rate = json_object_get(d, "rate");
    char *events = joined(json_object_get(d, "events")), *by = joined(json_object_get(d, "group_by"));
    char *r = xasprintf("%g/s burst %lld", json_number_value(json_object_get(rate, "per_s")),
                        (long long)json_integer_value(json_object_get(rate, "burst")));
    char *g = xasprintf("%g/%g", json_number_value(json_object_get(d, "group_wait_s")),
                        json_number_value(json_object_get(d, "group_interval_s")));
    json_t *row = json_pack("{s:O,s:O,s:O,s:s,s:s,s:s,s:s,s:O}", "name", json_object_get(d, "name"), "url",
                            json_object_get(d, "url"), "format", json_object_get(d, "format"), "events", events,
                            "rate", r, "group", g, "group_by", by, "secret_ref", json_object_get(d, "secret_ref"));
    free(events);
    free(by);
    free(r);
    free(g);
    return row;
}

static int notify_list(const struct ctl *ctl)
{
    int code;
    json_t *doc = ctl_call(ctl, "GET", "/v1/notifications/destinations", NULL, 0, &code);
    if (!doc || ctl->json) {
        json_decref(doc);
        return doc ? 0 : code;
    }
    json_t *rows = json_array(), *d;
    size_t i;
    json_array_foreach(json_object_get(doc, "destinations"), i, d) json_array_append_new(rows, dest_row(d));
    static const char *const heads[] = {"NAME", "URL", "FORMAT", "EVENTS", "RATE", "WAIT/INTERVAL", "GROUP BY",
                                        "SECRET"};
    static const char *const keys[] = {"name", "url", "format", "events", "rate", "group", "group_by", "secret_ref"};
    print_table(rows, heads, keys, 8);
    json_decref(rows);
    json_decref(doc);
    return 0;
}

/* notify events [destination=D] [state=S] [limit=N] [after=CURSOR] */
static int notify_events(const struct ctl *ctl, int argc, char **argv)
{
    char query[512] = "";
    for (int i = 1; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        if (!eq || eq == argv[i])
            die_usage("notify events: expected destination=D, state=S, limit=N or after=CURSOR, not '%s'", argv[i]);
        *eq = '\0';
        char *v = enc(eq + 1);
        snprintf(query + strlen(query), sizeof query - strlen(query), "%c%s=%s", query[0] ? '&' : '?', argv[i], v);
        free(v);
    }
    char *path = xasprintf("/v1/notifications/events%s", query);
    int code;
    json_t *doc = ctl_call(ctl, "GET", path, NULL, 0, &code);
    free(path);
    if (!doc || ctl->json) {
        json_decref(doc);
        return doc ? 0 : code;
    }
    json_t *rows = json_array(), *e;
    size_t i;
    json_array_foreach(json_object_get(doc, "events"), i, e) {
        const json_t *dl = json_object_get(e, "delivery");
        char *in = json_is_object(dl) ? xasprintf("%s (%lld events, %s)", json_string_value(json_object_get(dl, "webhook_id")),
                                                  (long long)json_integer_value(json_object_get(dl, "events")),
                                                  json_string_value(json_object_get(dl, "state")))
                                      : xstrdup("-");
        json_array_append_new(rows, json_pack("{s:O,s:O,s:O,s:O,s:O,s:O,s:s}", "event_id", json_object_get(e, "event_id"),
                                              "type", json_object_get(e, "type"), "subject", json_object_get(e, "subject"),
                                              "destination", json_object_get(e, "destination"), "state",
                                              json_object_get(e, "state"), "at", json_object_get(e, "at"), "delivery", in));
        free(in);
    }
    static const char *const heads[] = {"EVENT", "TYPE", "SUBJECT", "DESTINATION", "STATE", "AT", "DELIVERY"};
    static const char *const keys[] = {"event_id", "type", "subject", "destination", "state", "at", "delivery"};
    print_table(rows, heads, keys, 7);
    char *counts = show(json_object_get(doc, "counts"));
    printf("counts: %s\n", counts);
    free(counts);
    const json_t *next = json_object_get(doc, "next_after");
    if (json_is_string(next))
        printf("next: after=%s\n", json_string_value(next));
    json_decref(rows);
    json_decref(doc);
    return 0;
}

int cmd_notify(const struct ctl *ctl, int argc, char **argv)
{
    const char *sub = argc > 0 ? argv[0] : "";
    if (strcmp(sub, "add") == 0)
        return notify_add(ctl, argc, argv);
    if (strcmp(sub, "list") == 0 && argc == 1)
        return notify_list(ctl);
    if (strcmp(sub, "events") == 0)
        return notify_events(ctl, argc, argv);
    if (strcmp(sub, "rm") == 0 && argc == 2) {
        char *name = enc(argv[1]);
        char *path = xasprintf("/v1/notifications/destinations/%s", name);
        char *done = xasprintf("deleted destination %s", argv[1]);
        int code = cmd_action(ctl, "DELETE", path, done);
        free(done);
        free(path);
        free(name);
        return code;
    }
    die_usage("notify takes add NAME URL EVENTS [KEY=VALUE...], list, rm NAME or events [KEY=VALUE...]%s", "");
}

/* devsysctl_monitor: the check and incident commands of the CLI over
 * /v1/monitors and /v1/incidents (see devsysctl.h): monitors, monitor
 * NAME|add|rm|silence|unsilence, incidents. Query settings are KEY=VALUE
 * words, so the global options stay as they are. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devsysctl.h"
#include "xalloc.h"

/* KEY=VALUE words (keys among allowed) as a query string "?k=v&..."; caller frees. */
static char *query_of(int argc, char **argv, const char *const *allowed, const char *cmd)
{
    char *q = xstrdup("");
    for (int i = 0; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        int ok = 0;
        for (const char *const *a = allowed; eq && *a; a++)
            ok |= strlen(*a) == (size_t)(eq - argv[i]) && strncmp(*a, argv[i], (size_t)(eq - argv[i])) == 0;
        if (!ok)
            die_usage(cmd, argv[i]);
        char *v = enc(eq + 1);
        char *n = xasprintf("%s%c%.*s=%s", q, q[0] ? '&' : '?', (int)(eq - argv[i]), argv[i], v);
        free(v);
        free(q);
        q = n;
    }
    return q;
}

/* v, or JSON null for a missing member (json_pack's O takes no NULL). */
static json_t *or_null(json_t *v)
{
    return v ? v : json_null();
}

/* A percentage or latency as text ("99.5%", "12.3ms", "-"). */
static json_t *num_text(const json_t *v, const char *unit)
{
    if (!json_is_number(v))
        return json_string("-");
    char *s = xasprintf("%.4g%s", json_number_value(v), unit);
    json_t *j = json_string(s);
    free(s);
    return j;
}

static int cmd_monitors(const struct ctl *ctl, int argc, char **argv)
{
    static const char *const keys_ok[] = {"limit", "after", NULL};
    char *q = query_of(argc, argv, keys_ok, "monitors takes limit=N and after=NAME, not '%s'");
    char *path = xasprintf("/v1/monitors%s", q);
    free(q);
    int code;
    json_t *doc = ctl_get_doc(ctl, path, &code);
    if (!doc)
        return code;
    json_t *rows = json_array(), *c;
    size_t i;
    json_array_foreach(json_object_get(doc, "monitors"), i, c) {
        const json_t *last = json_object_get(c, "last_probe");
        json_array_append_new(
            rows, json_pack("{s:O,s:O,s:O,s:s,s:o,s:o,s:o,s:o,s:O,s:O,s:O}", "name", json_object_get(c, "name"),
                            "type", or_null(json_object_get(json_object_get(c, "monitor"), "type")), "state",
                            or_null(json_object_get(c, "state")), "silenced",
                            json_is_true(json_object_get(c, "silenced")) ? "yes" : "no", "up24",
                            num_text(json_object_get(c, "uptime_24h"), "%"), "up7",
                            num_text(json_object_get(c, "uptime_7d"), "%"), "p50",
                            num_text(json_object_get(c, "latency_p50_ms_24h"), "ms"), "p95",
                            num_text(json_object_get(c, "latency_p95_ms_24h"), "ms"), "last",
                            or_null(json_object_get(last, "at")), "incident",
                            or_null(json_object_get(c, "open_incident")), "error",
                            or_null(json_object_get(last, "error"))));
    }
    static const char *const heads[] = {"NAME", "TYPE", "STATE", "SILENCED", "UPTIME 24H", "UPTIME 7D",
                                        "P50 24H", "P95 24H", "LAST PROBE", "INCIDENT", "LAST ERROR"};
    static const char *const keys[] = {"name", "type", "state", "silenced", "up24", "up7",
                                       "p50", "p95", "last", "incident", "error"};
    print_table(rows, heads, keys, 11);
    if (json_is_string(json_object_get(doc, "next_after")))
        printf("next: after=%s\n", json_string_value(json_object_get(doc, "next_after")));
    json_decref(rows);
    json_decref(doc);
    return 0;
}

static void print_incidents(const json_t *list)
{
    static const char *const heads[] = {"INCIDENT", "CHECK", "STATE", "OPENED", "RESOLVED", "FAILURES",
                                        "FOLLOW-UP", "FOLLOW-UP STATE", "ERROR"};
    static const char *const keys[] = {"id", "check", "state", "opened_at", "resolved_at", "failures",
                                       "follow_up_task", "follow_up_state", "error"};
    print_table(list, heads, keys, 9);
}

static int monitor_show(const struct ctl *ctl, const char *name, int argc, char **argv)
{
    static const char *const keys_ok[] = {"limit", "after", NULL};
    char *q = query_of(argc, argv, keys_ok, "monitor NAME takes limit=N and after=ID, not '%s'");
    char *n = enc(name);
    char *path = xasprintf("/v1/monitors/%s%s", n, q);
    free(n);
    free(q);
    int code;
    json_t *doc = ctl_get_doc(ctl, path, &code);
    if (!doc)
        return code;
    static const char *const order[] = {"name", "state", "state_since", "silenced", "silenced_until",
                                        "consecutive_failures", "consecutive_successes", "uptime_24h",
                                        "uptime_7d", "latency_p50_ms_24h", "latency_p95_ms_24h", "open_incident",
                                        "interval_s", "failure_threshold", "success_threshold", "monitor",
                                        "follow_up", NULL};
    static const char *const hidden[] = {"probes", "incidents", "next_after", NULL};
    json_t *shown = json_deep_copy(doc);
    for (const char *const *h = hidden; *h; h++)
        json_object_del(shown, *h);
    print_object(shown, order, NULL);
    json_decref(shown);
    printf("\nprobes (newest first):\n");
    static const char *const heads[] = {"PROBE", "AT", "OK", "LATENCY MS", "SILENCED", "TASK", "ERROR"};
    static const char *const keys[] = {"id", "at", "ok", "latency_ms", "silenced", "task_id", "error"};
    print_table(json_object_get(doc, "probes"), heads, keys, 7);
    if (json_is_string(json_object_get(doc, "next_after")))
        printf("next: after=%s\n", json_string_value(json_object_get(doc, "next_after")));
    printf("\nincidents (newest first):\n");
    print_incidents(json_object_get(doc, "incidents"));
    json_decref(doc);
    return 0;
}

static int cmd_incidents(const struct ctl *ctl, int argc, char **argv)
{
    static const char *const keys_ok[] = {"state", "check", "limit", "after", NULL};
    char *q = query_of(argc, argv, keys_ok, "incidents takes state=open|resolved, check=NAME, limit=N and after=ID,"
                                            " not '%s'");
    char *path = xasprintf("/v1/incidents%s", q);
    free(q);
    int code;
    json_t *doc = ctl_get_doc(ctl, path, &code);
    if (!doc)
        return code;
    print_incidents(json_object_get(doc, "incidents"));
    if (json_is_string(json_object_get(doc, "next_after")))
        printf("next: after=%s\n", json_string_value(json_object_get(doc, "next_after")));
    json_decref(doc);
    return 0;
}

/* "90", "90s", "30m", "2h", "1d" as seconds; -1 when it is none of these. */
static double duration_s(const char *s)
{
    char *end;
    double v = strtod(s, &end);
    double unit = !*end ? 1 : !strcmp(end, "s") ? 1 : !strcmp(end, "m") ? 60 : !strcmp(end, "h") ? 3600
                  : !strcmp(end, "d") ? 86400 : -1;
    return end == s || unit < 0 || v <= 0 ? -1 : v * unit;
}

/* monitor silence NAME for=DURATION|until=TIME [reason=TEXT] */
static int monitor_silence(const struct ctl *ctl, const char *name, int argc, char **argv)
{
    json_t *body = json_object();
    for (int i = 0; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        const char *k = argv[i], *v = eq ? eq + 1 : "";
        if (eq && strncmp(k, "for=", 4) == 0) {
            double s = duration_s(v);
            if (s < 0)
                die_usage("monitor silence: for= takes a duration like 90s, 30m, 2h or 1d, not '%s'", v);
            json_object_set_new(body, "for_s", json_real(s));
        } else if (eq && strncmp(k, "until=", 6) == 0) {
            json_object_set_new(body, "until", json_string(v));
        } else if (eq && strncmp(k, "reason=", 7) == 0) {
            json_object_set_new(body, "reason", json_string(v));
        } else {
            die_usage("monitor silence NAME takes for=DURATION or until=TIME, and reason=TEXT, not '%s'", k);
        }
    }
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    char *n = enc(name);
    char *path = xasprintf("/v1/monitors/%s/silence", n);
    int code;
    json_t *doc = ctl_call(ctl, "POST", path, text, strlen(text), &code);
    if (doc && !ctl->json)
        printf("check %s silenced until %s\n", name, json_string_value(json_object_get(doc, "silenced_until")));
    free(n);
    free(path);
    free(text);
    json_decref(doc);
    return doc ? 0 : code;
}

static int monitor_add(const struct ctl *ctl, const char *file)
{
    size_t len;
    char *body = ctl_read_all(file, &len);
    if (!body)
        return EXIT_USAGE;
    int code;
    json_t *doc = ctl_call(ctl, "POST", "/v1/monitors", body, len, &code);
    free(body);
    if (doc && !ctl->json)
        printf("check %s saved (state %s)\n", json_string_value(json_object_get(doc, "name")),
               json_string_value(json_object_get(doc, "state")));
    json_decref(doc);
    return doc ? 0 : code;
}

int cmd_monitor(const struct ctl *ctl, int argc, char **argv)
{
    const char *cmd = argv[0], *sub = argc > 1 ? argv[1] : "";
    if (strcmp(cmd, "monitors") == 0)
        return cmd_monitors(ctl, argc - 1, argv + 1);
    if (strcmp(cmd, "incidents") == 0)
        return cmd_incidents(ctl, argc - 1, argv + 1);
    if (strcmp(sub, "add") == 0 && argc == 3)
        return monitor_add(ctl, argv[2]);
    if (strcmp(sub, "silence") == 0 && argc >= 3)
        return monitor_silence(ctl, argv[2], argc - 3, argv + 3);
    if ((strcmp(sub, "rm") == 0 || strcmp(sub, "unsilence") == 0) && argc == 3) {
        int rm = strcmp(sub, "rm") == 0;
        char *n = enc(argv[2]);
        char *path = xasprintf("/v1/monitors/%s%s", n, rm ? "" : "/silence");
        char *done = xasprintf(rm ? "deleted check %s" : "check %s no longer silenced", argv[2]);
        int code = cmd_action(ctl, "DELETE", path, done);
        free(done);
        free(path);
        free(n);
        return code;
    }
    if (argc >= 2 && strcmp(sub, "add") && strcmp(sub, "rm") && strcmp(sub, "silence") && strcmp(sub, "unsilence"))
        return monitor_show(ctl, sub, argc - 2, argv + 2);
    die_usage("monitor takes NAME [limit=N] [after=ID], add FILE, rm NAME, silence NAME for=D|until=T or"
              " unsilence NAME%s", "");
}

/* devsysctl_pipeline: `devsysctl pipeline submit FILE | ID [--watch] | rerun ID
 * | cancel ID` (the /v1/pipelines routes): a pipeline's steps and nodes as a
 * table, followed live with --watch until the pipeline finishes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "devsysctl.h"
#include "xalloc.h"

#define WATCH_PERIOD_MS 1000

static int submit(const struct ctl *ctl, const char *path)
{
    size_t len;
    char *body = ctl_read_all(path, &len);
    if (!body)
        return EXIT_OTHER;
    int code;
    json_t *doc = ctl_call(ctl, "POST", "/v1/pipelines", body, len, &code);
    free(body);
    if (!doc || ctl->json) {
        json_decref(doc);
        return code;
    }
    printf("%s\n", json_string_value(json_object_get(doc, "id")));
    json_decref(doc);
    return 0;
}

/* One row per node: STEP (on its first node), NODE, STATE, RUNS, ATTEMPT,
 * DURATION, TASK. */
static void print_pipeline(const json_t *doc)
{
    printf("pipeline: %s  %s  state %s  runs %lld\n", json_string_value(json_object_get(doc, "id")),
           json_string_value(json_object_get(doc, "name")), json_string_value(json_object_get(doc, "state")),
           (long long)json_integer_value(json_object_get(doc, "runs")));
    json_t *rows = json_array();
    size_t i, j;
    json_t *st, *nd;
    json_array_foreach(json_object_get(doc, "steps"), i, st) {
        json_array_foreach(json_object_get(st, "nodes"), j, nd) {
            char step[160], dur[32] = "-";
            const json_t *needs = json_object_get(st, "needs");
            char *n = json_array_size(needs) ? json_dumps(needs, JSON_COMPACT) : xstrdup("");
            snprintf(step, sizeof step, "%s%s%s", j ? "" : json_string_value(json_object_get(st, "step")),
                     j || !*n ? "" : " <- ", j ? "" : n);
            free(n);
            const json_t *d = json_object_get(nd, "duration_s");
            if (json_is_number(d))
                snprintf(dur, sizeof dur, "%.1fs", json_number_value(d));
            json_array_append_new(rows, json_pack("{s:s,s:O,s:O,s:O,s:O,s:s,s:O}", "step", step, "node",
                                                  json_object_get(nd, "name"), "state", json_object_get(nd, "state"),
                                                  "runs", json_object_get(nd, "runs"), "attempt",
                                                  json_object_get(nd, "attempt"), "duration", dur, "task",
                                                  json_object_get(nd, "task_id")));
        }
    }
    static const char *const heads[] = {"STEP", "NODE", "STATE", "RUNS", "ATTEMPT", "DURATION", "TASK"};
    static const char *const keys[] = {"step", "node", "state", "runs", "attempt", "duration", "task"};
    print_table(rows, heads, keys, 7);
    json_decref(rows);
    /* approval gates: how to decide them, or who did */
    json_array_foreach(json_object_get(doc, "steps"), i, st) {
        const json_t *a = json_object_get(st, "approval");
        if (!json_is_object(a))
            continue;
        const char *state = json_string_value(json_object_get(a, "state"));
        printf("approval of %s: %s (role %s, deadline %s)%s%s\n", json_string_value(json_object_get(st, "step")),
               state, json_string_value(json_object_get(a, "role")),
               json_string_value(json_object_get(a, "deadline")), strcmp(state, "pending") ? "" : "  devsysctl approve ",
               strcmp(state, "pending") ? "" : json_string_value(json_object_get(a, "id")));
        if (json_is_string(json_object_get(a, "decided_by")))
            printf("  decided by %s%s%s\n", json_string_value(json_object_get(a, "decided_by")),
                   json_is_string(json_object_get(a, "comment")) ? ": " : "",
                   json_is_string(json_object_get(a, "comment")) ? json_string_value(json_object_get(a, "comment")) : "");
    }
}

/* Exit status of a finished pipeline: 0 succeeded, 1 otherwise. */
static int show_pipeline(const struct ctl *ctl, const char *id, int watch)
{
    char *eid = enc(id);
    char *path = xasprintf("/v1/pipelines/%s", eid);
    free(eid);
    char *last = NULL;
    int code;
    for (;;) {
        json_t *doc = ctl_call(ctl, "GET", path, NULL, 0, &code);
        if (!doc || ctl->json) {
            json_decref(doc);
            break;
        }
        const char *state = json_string_value(json_object_get(doc, "state"));
        int running = state && (strcmp(state, "running") == 0 || strcmp(state, "queued") == 0);
        char *now = json_dumps(doc, JSON_COMPACT);
        if (!last || strcmp(now, last) != 0) {
            if (last)
                printf("\n");
            print_pipeline(doc);
            fflush(stdout);
        }
        free(last);
        last = now;
        code = watch && !running && state && strcmp(state, "succeeded") != 0 ? EXIT_OTHER : 0;
        json_decref(doc);
        if (!watch || !running)
            break;
        struct timespec ts = {WATCH_PERIOD_MS / 1000, (WATCH_PERIOD_MS % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    free(last);
    free(path);
    return code;
}

int cmd_pipeline(const struct ctl *ctl, int argc, char **argv, int watch)
{
    const char *sub = argc > 0 ? argv[0] : "";
    int is_submit = !strcmp(sub, "submit"), is_rerun = !strcmp(sub, "rerun"), is_cancel = !strcmp(sub, "cancel");
    if (is_submit || is_rerun || is_cancel) {
        if (argc != 2 || watch)
            die_usage("wrong arguments for pipeline %s", sub);
        if (is_submit)
            return submit(ctl, argv[1]);
        char *eid = enc(argv[1]);
        char *path = xasprintf("/v1/pipelines/%s/%s", eid, sub);
        char *done = xasprintf("%s %s", is_rerun ? "re-running" : "cancelled", argv[1]);
        int code = cmd_action(ctl, "POST", path, done);
        free(done);
        free(path);
        free(eid);
        return code;
    }
    if (argc != 1)
        die_usage("pipeline needs submit FILE, ID [--watch], rerun ID or cancel ID, not '%s'", sub);
    return show_pipeline(ctl, argv[0], watch);
}

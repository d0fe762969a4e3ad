/* devsysctl_schedule: the schedule commands of the CLI (schedule add, list,
 * show, pause, resume, rm) over /v1/schedules (see devsysctl.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devsysctl.h"
#include "xalloc.h"

/* schedule add NAME CRON SPEC_FILE: CRON as the API takes it ("*\/5 * * * *",
 * "@daily", "@every 30s"); SPEC_FILE a task spec, "-" for stdin. */
static int schedule_add(const struct ctl *ctl, char **argv, const struct schedule_opts *o)
{
    json_error_t jerr;
    const char *file = argv[2];
    json_t *spec = strcmp(file, "-") == 0 ? json_loadf(stdin, 0, &jerr) : json_load_file(file, 0, &jerr);
    if (!json_is_object(spec)) {
        fprintf(stderr, "devsysctl: %s: %s%s (line %d)\n", strcmp(file, "-") == 0 ? "stdin" : file,
                spec ? "expected a spec object" : "invalid JSON: ", spec ? "" : jerr.text, spec ? 1 : jerr.line);
        json_decref(spec);
        return EXIT_OTHER;
    }
    json_t *b = json_pack("{s:s,s:s,s:o}", "name", argv[0], "cron", argv[1], "spec", spec);
    if (o->tz)
        json_object_set_new(b, "tz", json_string(o->tz));
    if (o->catch_up)
        json_object_set_new(b, "catch_up", json_string(o->catch_up));
    char *body = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    int code;
    json_t *doc = ctl_call(ctl, "POST", "/v1/schedules", body, strlen(body), &code);
    free(body);
    if (!doc || ctl->json) {
        json_decref(doc);
        return code;
    }
    printf("created schedule %s (%s)\n", argv[0], json_string_value(json_object_get(doc, "id")));
    static const char *const order[] = {"id", "name", "cron", "tz", "catch_up", "paused", "next_due_at", NULL};
    static const char *const blocks[] = {"spec", "next_runs", NULL};
    print_object(doc, order, blocks);
    json_decref(doc);
    return 0;
}

static int schedule_list(const struct ctl *ctl)
{
    int code;
    json_t *doc = ctl_call(ctl, "GET", "/v1/schedules", NULL, 0, &code);
    if (!doc || ctl->json) {
        json_decref(doc);
        return code;
    }
    static const char *const heads[] = {"NAME", "CRON", "TZ", "PAUSED", "CATCH_UP", "NEXT_DUE", "LAST_TICK"};
    static const char *const keys[] = {"name", "cron", "tz", "paused", "catch_up", "next_due_at", "last_tick_at"};
    print_table(json_object_get(doc, "schedules"), heads, keys, 7);
    json_decref(doc);
    return 0;
}

int cmd_schedule(const struct ctl *ctl, int argc, char **argv, const struct schedule_opts *o)
{
    const char *sub = argc > 0 ? argv[0] : "";
    int add = strcmp(sub, "add") == 0, list = strcmp(sub, "list") == 0 || strcmp(sub, "ls") == 0;
    int show_ = strcmp(sub, "show") == 0, pause = strcmp(sub, "pause") == 0, resume = strcmp(sub, "resume") == 0;
    int rm = strcmp(sub, "rm") == 0;
    if (!(add || list || show_ || pause || resume || rm))
        die_usage("schedule takes add, list, show, pause, resume or rm, not '%s'", sub);
    if (argc != (add ? 4 : list ? 1 : 2))
        die_usage("wrong arguments for schedule %s", sub);
    if ((o->tz || o->catch_up) && !add)
        die_usage("--tz and --catch-up go with schedule add, not schedule %s", sub);
    if (add)
        return schedule_add(ctl, argv + 1, o);
    if (list)
        return schedule_list(ctl);
    char *name = enc(argv[1]), *path, *done;
    int code;
    if (show_) {
        path = xasprintf("/v1/schedules/%s", name);
        json_t *doc = ctl_call(ctl, "GET", path, NULL, 0, &code);
        if (doc && !ctl->json) {
            static const char *const order[] = {"id", "name", "cron", "tz", "catch_up", "paused", "next_due_at",
                                                "last_tick_at", "created_by", "created_at", NULL};
            static const char *const blocks[] = {"spec", "next_runs", "recent_ticks", NULL};
            print_object(doc, order, blocks);
            code = 0;
        }
        json_decref(doc);
        free(path);
        free(name);
        return code;
    }
    if (rm) {
        path = xasprintf("/v1/schedules/%s", name);
        done = xasprintf("deleted schedule %s", argv[1]);
        code = cmd_action(ctl, "DELETE", path, done);
    } else {
        path = xasprintf("/v1/schedules/%s/%s", name, pause ? "pause" : "resume");
        done = xasprintf("%s schedule %s", pause ? "paused" : "resumed", argv[1]);
        code = cmd_action(ctl, "POST", path, done);
    }
    free(done);
    free(path);
    free(name);
    return code;
}

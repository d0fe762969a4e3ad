/* devsysctl_deploy: `devsysctl deploy APP ENV SOURCE [--check-url URL]` (a
 * deploy task through POST /v1/tasks), `rollback APP ENV [REV]` (POST
 * /v1/apps/APP/rollback) and `revisions APP [ENV]` (GET /v1/apps/APP/revisions). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devsysctl.h"
#include "xalloc.h"

/* Prints the task id of a submit's answer (doc: {"tasks": [...]} or {"task_id"}). */
static int print_task(const struct ctl *ctl, json_t *doc, int code)
{
    if (doc && !ctl->json) {
        const char *id = json_string_value(json_object_get(doc, "task_id"));
        if (!id)
            id = json_string_value(json_object_get(json_array_get(json_object_get(doc, "tasks"), 0), "id"));
        printf("%s\n", id ? id : "?");
    }
    json_decref(doc);
    return code;
}

static int cmd_deploy(const struct ctl *ctl, char **args, const char *check_url)
{
    /* a SOURCE that exists here is sent as an absolute path (the agent may
     * run elsewhere: then give a path valid there, or input:<node>/<path>) */
    char real[PATH_MAX];
    const char *source = strncmp(args[3], "input:", 6) != 0 && realpath(args[3], real) ? real : args[3];
    json_t *sec = json_pack("{s:s,s:s,s:s}", "app", args[1], "env", args[2], "source", source);
    if (check_url)
        json_object_set_new(sec, "check", json_pack("{s:{s:s}}", "http", "url", check_url));
    json_t *spec = json_pack("{s:s,s:o}", "kind", "deploy", "deploy", sec);
    char *body = json_dumps(spec, JSON_COMPACT);
    json_decref(spec);
    int code;
    json_t *doc = ctl_call(ctl, "POST", "/v1/tasks", body, strlen(body), &code);
    free(body);
    return print_task(ctl, doc, code);
}

static int cmd_rollback(const struct ctl *ctl, int nargs, char **args)
{
    json_t *req = json_pack("{s:s}", "env", args[2]);
    if (nargs > 3)
        json_object_set_new(req, "revision", json_string(args[3]));
    char *body = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    char *app = enc(args[1]);
    char *path = xasprintf("/v1/apps/%s/rollback", app);
    int code;
    json_t *doc = ctl_call(ctl, "POST", path, body, strlen(body), &code);
    free(app);
    free(path);
    free(body);
    return print_task(ctl, doc, code);
}

static int cmd_revisions(const struct ctl *ctl, int nargs, char **args)
{
    char *app = enc(args[1]);
    char *env = nargs > 2 ? enc(args[2]) : NULL;
    char *path = xasprintf("/v1/apps/%s/revisions%s%s", app, env ? "?env=" : "", env ? env : "");
    int code;
    json_t *doc = ctl_call(ctl, "GET", path, NULL, 0, &code);
    free(app);
    free(env);
    free(path);
    if (!doc || ctl->json) {
        json_decref(doc);
        return code;
    }
    static const char *const heads[] = {"ENV", "REVISION", "CURRENT", "ACTION", "OUTCOME", "SWITCHED_AT",
                                        "DEPLOYED_BY", "PIPELINE", "TASK", "ERROR"};
    static const char *const keys[] = {"env", "revision", "current", "action", "outcome", "switched_at",
                                       "deployed_by", "pipeline_id", "task_id", "error"};
    print_table(json_object_get(doc, "revisions"), heads, keys, 10);
    json_decref(doc);
    return 0;
}

int cmd_deploy_family(const struct ctl *ctl, int nargs, char **args, const char *check_url)
{
    const char *cmd = args[0];
    if (check_url && strcmp(cmd, "deploy") != 0)
        die_usage("--check-url goes with deploy, not %s", cmd);
    if (strcmp(cmd, "deploy") == 0) {
        if (nargs != 4)
            die_usage("deploy needs APP ENV SOURCE%s", "");
        return cmd_deploy(ctl, args, check_url);
    }
    if (strcmp(cmd, "rollback") == 0) {
        if (nargs != 3 && nargs != 4)
            die_usage("rollback needs APP ENV [REVISION]%s", "");
        return cmd_rollback(ctl, nargs, args);
    }
    if (nargs != 2 && nargs != 3)
        die_usage("revisions needs APP [ENV]%s", "");
    return cmd_revisions(ctl, nargs, args);
}

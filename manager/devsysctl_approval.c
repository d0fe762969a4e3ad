/* devsysctl_approval: `devsysctl approve ID [--reject] [--comment C]` and
 * `devsysctl approvals [--all]` over /v1/approvals (the approval gates of
 * pipeline steps). Their options are their own, as access_main's are. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devsysctl.h"
#include "xalloc.h"

static int approve(const struct ctl *ctl, const char *id, int reject, const char *comment)
{
    json_t *b = json_pack("{s:s}", "decision", reject ? "reject" : "approve");
    if (comment)
        json_object_set_new(b, "comment", json_string(comment));
    char *body = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    char *eid = enc(id);
    char *path = xasprintf("/v1/approvals/%s", eid);
    int code;
    json_t *doc = ctl_call(ctl, "POST", path, body, strlen(body), &code);
    free(path);
    free(eid);
    free(body);
    if (!doc)
        return code;
    if (!ctl->json)
        printf("%s step %s of pipeline %s (%zu task(s) created)\n", reject ? "rejected" : "approved",
               json_string_value(json_object_get(doc, "step")), json_string_value(json_object_get(doc, "pipeline")),
               json_array_size(json_object_get(doc, "tasks")));
    json_decref(doc);
    return 0;
}

static int list(const struct ctl *ctl, int all)
{
    int code;
    json_t *doc = ctl_get_doc(ctl, xasprintf("/v1/approvals?state=%s", all ? "all" : "pending"), &code);
    if (!doc)
        return code;
    static const char *const heads[] = {"ID", "PIPELINE", "NAME", "STEP", "ROLE", "STATE", "DEADLINE", "DECIDED_BY"};
    static const char *const keys[] = {"id", "pipeline", "name", "step", "role", "state", "deadline", "decided_by"};
    print_table(json_object_get(doc, "approvals"), heads, keys, 8);
    json_decref(doc);
    return 0;
}

int approval_main(int argc, char **argv)
{
    const char *cmd = NULL;
    for (int i = 1; i < argc && !cmd; i++) {
        if (strcmp(argv[i], "--url") == 0 || strcmp(argv[i], "--comment") == 0)
            i++;
        else if (argv[i][0] != '-')
            cmd = argv[i];
    }
    if (!cmd || (strcmp(cmd, "approve") != 0 && strcmp(cmd, "approvals") != 0))
        return -1;
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},   {"url", required_argument, NULL, 'u'},
        {"reject", no_argument, NULL, 'r'}, {"comment", required_argument, NULL, 'c'},
        {"all", no_argument, NULL, 'a'},    {NULL, 0, NULL, 0},
    };
    struct ctl ctl = {.url = getenv("DEVSYS_URL"), .token = getenv("DEVSYS_TOKEN"), .timeout_s = 10};
    const char *comment = NULL;
    int reject = 0, all = 0, c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'j': ctl.json = 1; break;
        case 'u': ctl.url = optarg; break;
        case 'r': reject = 1; break;
        case 'c': comment = optarg; break;
        case 'a': all = 1; break;
        default: die_usage("unknown option or missing value: %s", argv[optind - 1]);
        }
    }
    int is_approve = strcmp(cmd, "approve") == 0, nargs = argc - optind;
    if (is_approve ? nargs != 2 || all : nargs != 1 || reject || comment)
        die_usage("%s", is_approve ? "approve takes ID [--reject] [--comment C]" : "approvals takes [--all]");
    ctl_finish_opts(&ctl);
    int code = is_approve ? approve(&ctl, argv[optind + 1], reject, comment) : list(&ctl, all);
    free(ctl.host);
    free(ctl.prefix);
    return code;
}

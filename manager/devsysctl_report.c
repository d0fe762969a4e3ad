/* devsysctl_report: `devsysctl report ID [--xml]`, a testing task's report
 * (GET /v1/tasks/ID/report): the counts and the failed tests with their
 * message, or the JUnit XML as stored. */
#include <stdio.h>
#include <stdlib.h>

#include "devsysctl.h"
#include "xalloc.h"

/* --xml: the body as is; a refusal is JSON with its error. */
static int report_xml(const struct ctl *ctl, const char *path)
{
    struct reply r;
    if (ctl_request(ctl, "GET", path, NULL, 0, &r) != 0)
        return EXIT_UNREACHABLE;
    int code = 0;
    if (r.status == 200) {
        fwrite(r.body, 1, r.len, stdout);
    } else {
        json_t *doc = json_loadb(r.body, r.len, 0, NULL);
        const char *msg = json_string_value(json_object_get(doc, "error"));
        fprintf(stderr, "devsysctl: the manager refused GET %s: %d %s\n", path, r.status,
                msg ? msg : "(no error message)");
        json_decref(doc);
        code = EXIT_REFUSED;
    }
    free(r.body);
    return code;
}

static long num(const json_t *o, const char *key)
{
    return (long)json_integer_value(json_object_get(o, key));
}

int cmd_report(const struct ctl *ctl, const char *id, int xml)
{
    char *eid = enc(id);
    char *path = xasprintf("/v1/tasks/%s/report%s", eid, xml ? "" : "?format=summary");
    free(eid);
    if (xml) {
        int code = report_xml(ctl, path);
        free(path);
        return code;
    }
    int code;
    json_t *doc = ctl_get_doc(ctl, path, &code);
    if (!doc)
        return code;
    const json_t *s = json_object_get(doc, "summary");
    printf("task:     %s (attempt %ld)\n", json_string_value(json_object_get(doc, "task_id")), num(doc, "attempt"));
    printf("tests:    %ld  passed %ld  failed %ld  errors %ld  skipped %ld  flaky %ld\n", num(s, "tests"),
           num(s, "passed"), num(s, "failures"), num(s, "errors"), num(s, "skipped"), num(s, "flaky"));
    printf("time:     %.3f s\n", json_number_value(json_object_get(s, "time_s")));
    const json_t *failed = json_object_get(s, "failed");
    if (json_array_size(failed)) {
        static const char *const heads[] = {"CLASSNAME", "NAME", "MESSAGE"};
        static const char *const keys[] = {"classname", "name", "message"};
        printf("failed:\n");
        print_table(failed, heads, keys, 3);
        if (num(s, "failed_unlisted"))
            printf("... and %ld more\n", num(s, "failed_unlisted"));
    }
    json_decref(doc);
    return 0;
}

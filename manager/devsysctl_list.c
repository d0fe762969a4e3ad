/* devsysctl_list: `devsysctl list`, the task list and search (GET /v1/tasks
 * with state, queue, name prefix, tag and since/until): a table, newest
 * first, and the cursor of the next page. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "devsysctl.h"
#include "xalloc.h"

/* An age ("90s", "30m", "2h", "7d") as the epoch seconds that long ago, in
 * buf; anything else is passed to the manager as given (it checks times).
 * Returns the value to send. */
static const char *since_value(const char *v, char *buf, size_t cap)
{
    char *end;
    double n = strtod(v, &end);
    static const struct { char unit; double s; } units[] = { { 's', 1 }, { 'm', 60 }, { 'h', 3600 }, { 'd', 86400 } };
    if (end == v || n < 0 || end[0] == '\0' || end[1] != '\0')
        return v;
    for (size_t i = 0; i < sizeof units / sizeof *units; i++) {
        if (*end == units[i].unit) {
            snprintf(buf, cap, "%.3f", (double)time(NULL) - n * units[i].s);
            return buf;
        }
    }
    return v;
}

int cmd_list(const struct ctl *ctl, const char *const q[LIST_NQ])
{
    static const char *const names[LIST_NQ] = { "state", "queue", "limit", "after",
                                                "name",  "tag",   "since", "until" };
    char *path = xstrdup("/v1/tasks");
    char sep = '?';
    for (int i = 0; i < LIST_NQ; i++) {
        if (!q[i])
            continue;
        char buf[32];
        const char *v = i >= 6 ? since_value(q[i], buf, sizeof buf) : q[i];
        char *e = enc(v);
        char *next = xasprintf("%s%c%s=%s", path, sep, names[i], e);
        free(e);
        free(path);
        path = next;
        sep = '&';
    }
    int code;
    json_t *doc = ctl_get_doc(ctl, path, &code);
    if (!doc)
        return code;
    static const char *const heads[] = { "ID", "STATE", "KIND", "QUEUE", "NAME", "ATTEMPT", "CREATED" };
    static const char *const keys[] = { "id", "state", "kind", "queue", "name", "attempt", "created_at" };
    print_table(json_object_get(doc, "tasks"), heads, keys, 7);
    /* An empty cursor means "no more", like null. */
    const char *next = json_string_value(json_object_get(doc, "next"));
    if (next && *next)
        printf("next: %s\n", next);
    json_decref(doc);
    return 0;
}

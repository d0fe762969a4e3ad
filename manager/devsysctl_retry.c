/* devsysctl_retry: `devsysctl retry ID` — a dead or cancelled task queued
 * again with the same id (POST /v1/tasks/{id}/retry); its attempts are kept. */
#include "devsysctl.h"

#include <stdio.h>
#include <stdlib.h>

#include "xalloc.h"

int cmd_retry(const struct ctl *ctl, const char *id)
{
    char *e = enc(id);
    char *path = xasprintf("/v1/tasks/%s/retry", e);
    char *done = xasprintf("retrying %s", id);
    int code = cmd_action(ctl, "POST", path, done);
    free(done);
    free(path);
    free(e);
    return code;
}

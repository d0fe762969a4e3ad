/* exec_env: what a task's process starts with (see exec_env.h). */
#include "exec_env.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "xalloc.h"

#define DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin"
#define EXTRA_MAX 64

/* Passed through from the agent when set. LC_* is a prefix. */
static const char *const base_allow[] = {"PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR"};

static char *extra_allow[EXTRA_MAX];
static size_t n_extra;
static int env_ready;

void exec_env_init(void)
{
    if (env_ready)
        return;
    env_ready = 1;
    const char *list = cfg_str("DEVSYS_TASK_ENV_ALLOW", NULL);
    if (!list)
        return;
    char *copy = xstrdup(list), *save = NULL;
    for (char *tok = strtok_r(copy, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
        const char *why = strncmp(tok, "DEVSYS_", 7) == 0 ? "the agent's own settings are never passed on"
                                                          : spec_env_refused(tok, strlen(tok));
        if (why || strchr(tok, '=') || n_extra == EXTRA_MAX) {
            fprintf(stderr, "DEVSYS_TASK_ENV_ALLOW: \"%s\": %s\n", tok,
                    why ? why : n_extra == EXTRA_MAX ? "at most 64 names" : "a name has no '='");
            exit(2);
        }
        extra_allow[n_extra++] = xstrdup(tok);
    }
    free(copy);
}

void exec_env_shutdown(void)
{
    for (size_t i = 0; i < n_extra; i++)
        free(extra_allow[i]);
    n_extra = 0;
    env_ready = 0;
}

static int allowed(const char *name, size_t len)
{
    if (len > 3 && memcmp(name, "LC_", 3) == 0)
        return 1;
    for (size_t i = 0; i < sizeof base_allow / sizeof *base_allow; i++)
        if (strlen(base_allow[i]) == len && memcmp(base_allow[i], name, len) == 0)
            return 1;
    for (size_t i = 0; i < n_extra; i++)
        if (strlen(extra_allow[i]) == len && memcmp(extra_allow[i], name, len) == 0)
            return 1;
    return 0;
}

/* The spec's env replaces an allowed variable of the same name. The spec
 * was validated (spec_env_refused), but a refused name is skipped here too:
 * the handler does not trust its caller with what reaches the loader. */
char **exec_env_build(const task_run_t *run, int cp_fd)
{
    json_t *senv = json_is_object(run->spec->env) ? run->spec->env : NULL;
    size_t n_agent = 0;
    while (environ && environ[n_agent])
        n_agent++;
    size_t n_extra_env = 0;
    while (run->env_extra && run->env_extra[n_extra_env])
        n_extra_env++;
    size_t cap = n_agent + (senv ? json_object_size(senv) : 0) + n_extra_env + 8;
    char **envp = xcalloc(cap, sizeof *envp);
    size_t n = 0;
    int have_path = 0;

    for (size_t i = 0; i < n_agent; i++) {
        const char *e = environ[i];
        size_t len = strcspn(e, "=");
        if (!e[len] || !allowed(e, len) || (senv && json_object_getn(senv, e, len)))
            continue;
        have_path |= len == 4 && memcmp(e, "PATH", 4) == 0;
        envp[n++] = xstrdup(e);
    }
    const char *key;
    json_t *val;
    if (senv) {
        json_object_foreach(senv, key, val) {
            const char *why = spec_env_refused(key, strlen(key));
            if (json_is_object(val)) { /* {"secret": "name"}: fetched by the agent into run->secrets */
                val = json_object_get(run->secrets, json_string_value(json_object_get(val, "secret")));
                if (!why && !val)
                    why = "its secret was not fetched";
            }
            if (why || !json_is_string(val) || !key[0] || strchr(key, '=')) {
                log_warn("task %s: env %s skipped: %s", run->id, key,
                         why ? why : "needs a string value and a name without '='");
                continue;
            }
            have_path |= strcmp(key, "PATH") == 0;
            envp[n++] = xasprintf("%s=%s", key, json_string_value(val));
        }
    }
    if (!have_path)
        envp[n++] = xstrdup("PATH=" DEFAULT_PATH);
    envp[n++] = xasprintf("DEVSYS_TASK_ID=%s", run->id ? run->id : "");
    envp[n++] = xasprintf("DEVSYS_TASK_ATTEMPT=%ld", run->attempt);
    envp[n++] = xasprintf("DEVSYS_ATTEMPT=%ld", run->attempt); /* the older name */
    if (run->checkpoint)
        envp[n++] = xasprintf("DEVSYS_CHECKPOINT=%s", run->checkpoint);
    envp[n++] = xasprintf("DEVSYS_CHECKPOINT_FD=%d", cp_fd);
    for (size_t i = 0; i < n_extra_env; i++) /* DEVSYS_WORKSPACE, DEVSYS_RESULT, DEVSYS_INPUTS */
        envp[n++] = xstrdup(run->env_extra[i]);
    envp[n] = NULL;
    return envp;
}

void exec_env_free(char **envp)
{
    if (!envp)
        return;
    for (size_t i = 0; envp[i]; i++)
        free(envp[i]);
    free(envp);
}

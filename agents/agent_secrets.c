/* agent_secrets: secrets for a task's environment (see agent_secrets.h).
 * While the fetch is in flight the task's ops are this module's, so a cancel
 * lands here and is reported once the fetch is back. */
#include "agent_secrets.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "secretdb.h"
#include "xalloc.h"

struct fetching {
    struct task *t;                 /* NULL once shutdown orphaned it */
    const handler_ops_t *real;      /* the task's handler */
    int cancelled;
    struct fetching *next;
};

static struct fetching *in_flight;

static void fetching_cancel(task_run_t *run)
{
    struct fetching *f = run->handler_data;
    f->cancelled = 1;
}

static int fetching_start(task_run_t *run, handler_result_t *res)
{
    (void)run;
    (void)res;
    return -1; /* never called: start goes through agent_secrets_start */
}

static const handler_ops_t fetching_ops = {NULL, fetching_start, fetching_cancel};

/* The secret names of the spec's env, as a JSON array (new reference), or NULL if none. */
static json_t *secret_names(const spec_t *spec)
{
    json_t *names = NULL;
    const char *k;
    json_t *v;
    json_object_foreach(spec->env, k, v)
    {
        const char *name = json_string_value(json_object_get(v, "secret"));
        if (!json_is_object(v) || !name)
            continue;
        if (!names)
            names = json_array();
        json_array_append_new(names, json_string(name));
    }
    return names;
}

static void fetched(json_t *values, const char *err, void *arg)
{
    struct fetching *f = arg;
    for (struct fetching **p = &in_flight; *p; p = &(*p)->next)
        if (*p == f) {
            *p = f->next;
            break;
        }
    struct task *t = f->t;
    const handler_ops_t *real = f->real;
    int cancelled = f->cancelled;
    free(f);
    if (!t) { /* the agent is gone */
        json_decref(values);
        return;
    }
    t->ops = real;
    t->run.handler_data = NULL;
    handler_result_t res = {0};
    if (cancelled) {
        json_decref(values);
        res.retryable = 1;
        res.error = xstrdup("cancelled");
    } else if (!values) {
        /* a missing secret or key will not appear by retrying; the database will */
        res.retryable = strncmp(err, "secrets: database", 17) == 0;
        res.error = xstrdup(err);
        log_warn("task %s: %s", t->env.id, err);
    } else {
        t->secrets = values;
        t->run.secrets = values;
        if (real->start(&t->run, &res) == 0)
            return;
    }
    t->run.done(&t->run, &res);
}

int agent_secrets_start(struct task *t, handler_result_t *res)
{
    json_t *names = t->spec && json_is_object(t->spec->env) ? secret_names(t->spec) : NULL;
    if (!names)
        return t->ops->start(&t->run, res);
    struct fetching *f = xcalloc(1, sizeof *f);
    f->t = t;
    f->real = t->ops;
    f->next = in_flight;
    in_flight = f;
    t->ops = &fetching_ops;
    t->run.handler_data = f;
    char actor[160];
    snprintf(actor, sizeof actor, "agent:%s", t->ag->name);
    secretdb_fetch(t->ag->pg, t->ag->secrets, names, actor, t->env.id, fetched, f);
    json_decref(names);
    return 0;
}

void agent_secrets_shutdown(void)
{
    for (struct fetching *f = in_flight; f; f = f->next) {
        if (f->t)
            f->t->ops = f->real;
        f->t = NULL;
    }
}

/* ----------------------------------------------------------------- redact */

char *agent_secrets_redact(const struct task *t, const char *s, size_t len, size_t *outlen)
{
    if (!t->secrets || !s)
        return NULL;
    char *cur = NULL;
    size_t curlen = len;
    const char *name;
    json_t *v;
    json_object_foreach(t->secrets, name, v)
    {
        const char *val = json_string_value(v);
        size_t vlen = json_string_length(v);
        const char *src = cur ? cur : s;
        if (vlen == 0 || !memmem(src, curlen, val, vlen))
            continue;
        char mark[80];
        int mlen = snprintf(mark, sizeof mark, "[secret:%s]", name);
        size_t cap = curlen + 1 + (curlen / vlen + 1) * (size_t)mlen, n = 0;
        char *out = xmalloc(cap);
        for (size_t i = 0; i < curlen;) {
            if (i + vlen <= curlen && memcmp(src + i, val, vlen) == 0) {
                memcpy(out + n, mark, (size_t)mlen);
                n += (size_t)mlen;
                i += vlen;
            } else {
                out[n++] = src[i++];
            }
        }
        out[n] = '\0';
        free(cur);
        cur = out;
        curlen = n;
    }
    if (cur && outlen)
        *outlen = curlen;
    return cur;
}

/* *s (malloc'd, *len bytes when len is given) redacted in place. */
static void redact_str(const struct task *t, char **s, size_t *len)
{
    if (!*s)
        return;
    size_t n;
    char *r = agent_secrets_redact(t, *s, len ? *len : strlen(*s), &n);
    if (!r)
        return;
    free(*s);
    *s = r;
    if (len)
        *len = n;
}

static void redact_json(const struct task *t, json_t **j)
{
    if (!*j)
        return;
    char *text = json_dumps(*j, JSON_COMPACT | JSON_ENCODE_ANY);
    size_t n;
    char *r = text ? agent_secrets_redact(t, text, strlen(text), &n) : NULL;
    if (r) {
        json_t *nj = json_loadb(r, n, JSON_DECODE_ANY, NULL);
        json_decref(*j);
        /* a value that was part of JSON syntax could break it: drop, never leak */
        *j = nj ? nj : json_pack("{s:s}", "redacted", "the result held a secret and could not be kept");
        free(r);
    }
    free(text);
}

void agent_secrets_redact_result(struct task *t)
{
    if (!t->secrets)
        return;
    redact_str(t, &t->res.output, &t->res.output_len);
    redact_str(t, &t->res.error, NULL);
    redact_str(t, &t->res.report_xml, NULL);
    redact_json(t, &t->res.result);
    redact_json(t, &t->res.report_summary);
    redact_json(t, &t->res.report_history);
}

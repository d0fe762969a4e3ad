/* pipeline: a pipeline document -> validated steps in dependency order, each
 * expanded (matrix x shards) into nodes whose specs spec_from_json accepted.
 * No I/O; the manager records the result (common/pipelinedb.h). */
#include "pipeline.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Out of memory aborts: the policy of common/xalloc.h, without the dependency. */
static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (!p)
        abort();
    return p;
}

__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

const char *pipeline_if_name(enum pipeline_if c)
{
    return c == PIPELINE_IF_FAILURE ? "failure" : c == PIPELINE_IF_ALWAYS ? "always" : "success";
}

const char *pipeline_approval_name(enum pipeline_approval a)
{
    return a == PIPELINE_APPROVAL_ADMIN ? "admin" : a == PIPELINE_APPROVAL_OPERATOR ? "operator" : NULL;
}

/* A string of 1 to max bytes without control characters or NUL. */
static int text_ok(const json_t *v, size_t max)
{
    const char *s = json_string_value(v);
    if (!s || !*s || strlen(s) > max || strlen(s) != json_string_length(v))
        return 0;
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 0;
    return 1;
}

static int name_ok(const char *s, size_t max, int dash)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_' && !(dash && s[i] == '-'))
            return 0;
    return 1;
}

void pipeline_free(pipeline_t *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->nsteps; i++) {
        for (size_t j = 0; j < p->steps[i].nnodes; j++)
            json_decref(p->steps[i].nodes[j].spec);
        free(p->steps[i].nodes);
        free(p->steps[i].needs);
    }
    free(p->steps);
    json_decref(p->doc);
    free(p);
}

/* ------------------------------------------------------------ one step */

/* "approval": {"role": "operator"|"admin" (default operator), "timeout_s":
 * 1..PIPELINE_APPROVAL_TIMEOUT_MAX (default a day)}; absent: no gate. */
static int check_approval(const char *name, const json_t *a, pipeline_step_t *st, char *err, size_t errlen)
{
    if (!a)
        return 0;
    if (!json_is_object(a))
        return fail(err, errlen, "steps.%s.approval: must be an object {\"role\", \"timeout_s\"}", name);
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)a, k, v) {
        char pk[64];
        if (strcmp(k, "role") && strcmp(k, "timeout_s"))
            return fail(err, errlen, "steps.%s.approval.%s: unknown field (allowed: role, timeout_s)", name,
                        spec_printable(k, strlen(k), pk));
    }
    st->approval = PIPELINE_APPROVAL_OPERATOR;
    const json_t *role = json_object_get(a, "role");
    if (role) {
        const char *r = json_string_value(role);
        if (r && !strcmp(r, "admin"))
            st->approval = PIPELINE_APPROVAL_ADMIN;
        else if (!r || strcmp(r, "operator"))
            return fail(err, errlen, "steps.%s.approval.role: must be \"operator\" or \"admin\" (who may approve)",
                        name);
    }
    st->approval_timeout_s = PIPELINE_APPROVAL_TIMEOUT_DEFAULT;
    const json_t *t = json_object_get(a, "timeout_s");
    if (t) {
        if (!json_is_integer(t) || json_integer_value(t) < 1 || json_integer_value(t) > PIPELINE_APPROVAL_TIMEOUT_MAX)
            return fail(err, errlen, "steps.%s.approval.timeout_s: must be an integer from 1 to %d (seconds)", name,
                        PIPELINE_APPROVAL_TIMEOUT_MAX);
        st->approval_timeout_s = (int)json_integer_value(t);
    }
    return 0;
}

/* "concurrency": {"group": 1..PIPELINE_GROUP_MAX bytes, "cancel_in_progress": bool},
 * of the pipeline (step NULL) or of step `step`; into group and *cip. */
static int check_concurrency(const char *step, const json_t *c, char *group, int *cip, char *err, size_t errlen)
{
    char at[96] = "concurrency";
    if (!c)
        return 0;
    if (step)
        snprintf(at, sizeof at, "steps.%s.concurrency", step);
    if (!json_is_object(c))
        return fail(err, errlen, "%s: must be an object {\"group\", \"cancel_in_progress\"}", at);
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)c, k, v) {
        char pk[64];
        if (strcmp(k, "group") && strcmp(k, "cancel_in_progress"))
            return fail(err, errlen, "%s.%s: unknown field (allowed: group, cancel_in_progress)", at,
                        spec_printable(k, strlen(k), pk));
    }
    if (!text_ok(json_object_get(c, "group"), PIPELINE_GROUP_MAX))
        return fail(err, errlen, "%s.group: required, a string of 1 to %d bytes without control characters", at,
                    PIPELINE_GROUP_MAX);
    const json_t *b = json_object_get(c, "cancel_in_progress");
    if (b && !json_is_boolean(b))
        return fail(err, errlen, "%s.cancel_in_progress: must be true or false", at);
    snprintf(group, PIPELINE_GROUP_MAX + 1, "%s", json_string_value(json_object_get(c, "group")));
    *cip = json_is_true(b);
    return 0;
}

/* The step object's own fields (not its spec); needs resolved by name
 * against keys (the document's step names, in order). */
static int check_step(const char *name, const json_t *o, const char *const *keys, size_t nkeys,
                      pipeline_step_t *st, size_t *fanout, char *err, size_t errlen)
{
    if (!json_is_object(o))
        return fail(err, errlen, "steps.%s: must be an object with \"spec\"", name);
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)o, k, v) {
        if (strcmp(k, "needs") && strcmp(k, "if") && strcmp(k, "matrix") && strcmp(k, "shards") &&
            strcmp(k, "spec") && strcmp(k, "approval") && strcmp(k, "concurrency")) {
            char pk[64];
            return fail(err, errlen,
                        "steps.%s.%s: unknown field (allowed: needs, if, matrix, shards, approval, concurrency,"
                        " spec)", name, spec_printable(k, strlen(k), pk));
        }
    }
    if (check_approval(name, json_object_get(o, "approval"), st, err, errlen) < 0)
        return -1;
    if (check_concurrency(name, json_object_get(o, "concurrency"), st->group, &st->cancel_in_progress, err,
                          errlen) < 0)
        return -1;
    if (!json_is_object(json_object_get(o, "spec")))
        return fail(err, errlen, "steps.%s.spec: required, must be a task spec object", name);
    const json_t *needs = json_object_get(o, "needs");
    if (needs) {
        if (!json_is_array(needs))
            return fail(err, errlen, "steps.%s.needs: must be an array of step names", name);
        if (json_array_size(needs) > PIPELINE_STEPS_MAX)
            return fail(err, errlen, "steps.%s.needs: %zu entries exceeds the limit of %d", name,
                        json_array_size(needs), PIPELINE_STEPS_MAX);
        st->needs = xcalloc(json_array_size(needs) + 1, sizeof *st->needs);
        for (size_t i = 0; i < json_array_size(needs); i++) {
            const char *n = json_string_value(json_array_get(needs, i));
            if (!n)
                return fail(err, errlen, "steps.%s.needs[%zu]: must be a step name (a string)", name, i);
            size_t j = 0;
            while (j < nkeys && strcmp(keys[j], n) != 0)
                j++;
            char pn[64];
            if (j == nkeys)
                return fail(err, errlen, "steps.%s.needs[%zu]: unknown step \"%s\"", name, i,
                            spec_printable(n, strlen(n), pn));
            if (strcmp(n, name) == 0)
                return fail(err, errlen, "steps.%s.needs[%zu]: a step cannot need itself", name, i);
            for (size_t m = 0; m < st->nneeds; m++)
                if (st->needs[m] == (int)j)
                    return fail(err, errlen, "steps.%s.needs[%zu]: \"%s\" is listed twice", name, i, n);
            st->needs[st->nneeds++] = (int)j;
        }
    }
    const json_t *cond = json_object_get(o, "if");
    if (cond) {
        const char *c = json_string_value(cond);
        if (c && !strcmp(c, "success"))
            st->cond = PIPELINE_IF_SUCCESS;
        else if (c && !strcmp(c, "failure"))
            st->cond = PIPELINE_IF_FAILURE;
        else if (c && !strcmp(c, "always"))
            st->cond = PIPELINE_IF_ALWAYS;
        else
            return fail(err, errlen, "steps.%s.if: must be \"success\", \"failure\" or \"always\"", name);
    }
    size_t n = 1;
    const json_t *shards = json_object_get(o, "shards");
    if (shards) {
        if (!json_is_integer(shards) || json_integer_value(shards) < 1 ||
            json_integer_value(shards) > SPEC_FANOUT_MAX)
            return fail(err, errlen, "steps.%s.shards: must be an integer from 1 to %d", name, SPEC_FANOUT_MAX);
        n = (size_t)json_integer_value(shards);
    }
    const json_t *matrix = json_object_get(o, "matrix");
    if (matrix) {
        if (!json_is_object(matrix) || json_object_size(matrix) == 0 ||
            json_object_size(matrix) > PIPELINE_MATRIX_VARS_MAX)
            return fail(err, errlen, "steps.%s.matrix: must be an object of 1 to %d variables", name,
                        PIPELINE_MATRIX_VARS_MAX);
        json_object_foreach((json_t *)matrix, k, v) {
            char pk[64];
            if (!name_ok(k, 32, 0))
                return fail(err, errlen, "steps.%s.matrix.%s: a variable name is 1 to 32 of [A-Za-z0-9_]", name,
                            spec_printable(k, strlen(k), pk));
            if (!json_is_array(v) || json_array_size(v) == 0)
                return fail(err, errlen, "steps.%s.matrix.%s: must be a non-empty array of values", name, k);
            for (size_t i = 0; i < json_array_size(v); i++) {
                const json_t *x = json_array_get(v, i);
                if (!json_is_string(x) && !json_is_number(x) && !json_is_boolean(x))
                    return fail(err, errlen, "steps.%s.matrix.%s[%zu]: must be a string, number or boolean",
                                name, k, i);
                if (json_is_string(x) && json_string_length(x) > PIPELINE_VALUE_MAX)
                    return fail(err, errlen, "steps.%s.matrix.%s[%zu]: longer than %d bytes", name, k, i,
                                PIPELINE_VALUE_MAX);
            }
            n *= json_array_size(v);
            if (n > SPEC_FANOUT_MAX)
                break;
        }
    }
    if (n > SPEC_FANOUT_MAX)
        return fail(err, errlen, "steps.%s: matrix x shards makes more than %d tasks", name, SPEC_FANOUT_MAX);
    *fanout = n;
    return 0;
}

/* ------------------------------------------------------------ ordering */

/* Depth-first from step i; state 0 new, 1 on the path, 2 done. On a back
 * edge, names the cycle from the path stack. Appends finished steps to order. */
static int visit(pipeline_step_t *steps, const char *const *keys, int i, int *state, int *path, int depth,
                 int *order, size_t *norder, char *err, size_t errlen)
{
    state[i] = 1;
    path[depth] = i;
    for (size_t m = 0; m < steps[i].nneeds; m++) {
        int j = steps[i].needs[m];
        if (state[j] == 1) {
            char buf[PIPELINE_ERR_MAX] = "";
            int from = depth;
            while (from > 0 && path[from] != j)
                from--;
            for (int d = from; d <= depth; d++)
                snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s -> ", keys[path[d]]);
            snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s", keys[j]);
            return fail(err, errlen, "steps: cycle %s (each needs the next)", buf);
        }
        if (state[j] == 0 && visit(steps, keys, j, state, path, depth + 1, order, norder, err, errlen) < 0)
            return -1;
    }
    state[i] = 2;
    order[(*norder)++] = i;
    return 0;
}

/* ------------------------------------------------------------ expansion */

static void env_value(const json_t *x, char *out, size_t cap)
{
    if (json_is_string(x))
        snprintf(out, cap, "%s", json_string_value(x));
    else if (json_is_integer(x))
        snprintf(out, cap, "%lld", (long long)json_integer_value(x));
    else if (json_is_real(x))
        snprintf(out, cap, "%.17g", json_real_value(x));
    else
        snprintf(out, cap, "%s", json_is_true(x) ? "true" : "false");
}

/* Node idx of step st: a copy of its spec with the env and "pipeline" of
 * that node, validated. */
static int expand_node(pipeline_t *p, pipeline_step_t *st, const json_t *so, size_t idx, const char *id,
                       char *err, size_t errlen)
{
    pipeline_node_t *nd = &st->nodes[idx];
    nd->index = (int)idx;
    if (st->nnodes == 1)
        snprintf(nd->name, sizeof nd->name, "%s", st->name);
    else
        snprintf(nd->name, sizeof nd->name, "%.64s[%zu]", st->name, idx);
    json_t *spec = json_deep_copy(json_object_get(so, "spec"));
    nd->spec = spec;
    static const char *const own[] = {"next", "pipeline", "inputs", "idempotency_key", "unique"};
    for (size_t i = 0; i < sizeof own / sizeof *own; i++)
        if (json_object_get(spec, own[i]))
            return fail(err, errlen, "steps.%s.spec.%s: not allowed in a pipeline step%s", st->name, own[i],
                        i < 3 ? " (the manager sets it; use needs)" : "");
    json_t *env = json_object_get(spec, "env");
    if (!env) {
        env = json_object();
        json_object_set_new(spec, "env", env);
    }
    if (!json_is_object(env))
        return fail(err, errlen, "steps.%s.spec.env: must be an object of strings", st->name);
    const json_t *shards = json_object_get(so, "shards"), *matrix = json_object_get(so, "matrix");
    size_t nshards = shards ? (size_t)json_integer_value(shards) : 1, combo = idx / nshards;
    char v[PIPELINE_VALUE_MAX + 32];
    if (shards) {
        snprintf(v, sizeof v, "%zu", idx % nshards);
        json_object_set_new(env, "DEVSYS_SHARD", json_string(v));
        snprintf(v, sizeof v, "%zu", nshards);
        json_object_set_new(env, "DEVSYS_SHARDS", json_string(v));
    }
    if (matrix) {
        /* mixed radix, the last variable varying fastest */
        size_t nvars = json_object_size(matrix), vi = 0;
        const char *names[PIPELINE_MATRIX_VARS_MAX] = {0};
        const json_t *vals[PIPELINE_MATRIX_VARS_MAX];
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)matrix, k, x) {
            names[vi] = k;
            vals[vi++] = x;
        }
        for (size_t i = nvars; i-- > 0;) {
            size_t nv = json_array_size(vals[i]);
            env_value(json_array_get(vals[i], combo % nv), v, sizeof v);
            combo /= nv;
            char key[64] = "DEVSYS_MATRIX_";
            for (size_t c = 0; names[i][c] && c < 32; c++)
                key[14 + c] = (char)toupper((unsigned char)names[i][c]), key[15 + c] = '\0';
            json_object_set_new(env, key, json_string(v));
        }
    }
    json_object_set_new(spec, "pipeline", json_pack("{s:s,s:s,s:s,s:i}", "id", id, "name", p->name, "step",
                                                    st->name, "index", (int)idx));
    char serr[SPEC_ERR_MAX];
    spec_t *s = spec_from_json(spec, serr, sizeof serr);
    if (!s) {
        if (!strncmp(serr, "spec: ", 6))
            return fail(err, errlen, "steps.%s.spec: %s", st->name, serr + 6);
        return fail(err, errlen, "steps.%s.spec.%s", st->name, serr);
    }
    snprintf(nd->kind, sizeof nd->kind, "%s", s->kind);
    snprintf(nd->queue, sizeof nd->queue, "%s", s->queue);
    nd->priority = s->priority;
    nd->max_attempts = s->retry.max_attempts;
    spec_free(s);
    return 0;
}

/* ------------------------------------------------------------ the document */

pipeline_t *pipeline_from_json(json_t *doc, const char *id, char *err, size_t errlen)
{
    pipeline_t *p = xcalloc(1, sizeof *p);
    p->doc = json_incref(doc);
    const char **keys = NULL;
    pipeline_step_t *tmp = NULL;
    size_t *fanout = NULL;
    int *state = NULL, *path = NULL, *order = NULL;
    size_t nsteps = 0;
    if (!json_is_object(doc)) {
        fail(err, errlen, "pipeline: must be a JSON object with \"name\" and \"steps\"");
        goto fail;
    }
    const char *k;
    json_t *v;
    json_object_foreach(doc, k, v) {
        if (strcmp(k, "name") && strcmp(k, "steps") && strcmp(k, "concurrency")) {
            char pk[64];
            fail(err, errlen, "%s: unknown field (allowed: name, concurrency, steps)", spec_printable(k, strlen(k), pk));
            goto fail;
        }
    }
    const char *name = json_string_value(json_object_get(doc, "name"));
    if (!name || !*name || strlen(name) > PIPELINE_NAME_MAX || strlen(name) != json_string_length(json_object_get(doc, "name"))) {
        fail(err, errlen, "name: required, a string of 1 to %d bytes", PIPELINE_NAME_MAX);
        goto fail;
    }
    if (!text_ok(json_object_get(doc, "name"), PIPELINE_NAME_MAX)) {
        fail(err, errlen, "name: control characters are not allowed");
        goto fail;
    }
    snprintf(p->name, sizeof p->name, "%s", name);
    if (check_concurrency(NULL, json_object_get(doc, "concurrency"), p->group, &p->cancel_in_progress, err, errlen) < 0)
        goto fail;
    json_t *steps = json_object_get(doc, "steps");
    if (!json_is_object(steps) || json_object_size(steps) == 0) {
        fail(err, errlen, "steps: required, an object of 1 to %d steps", PIPELINE_STEPS_MAX);
        goto fail;
    }
    nsteps = json_object_size(steps);
    if (nsteps > PIPELINE_STEPS_MAX) {
        fail(err, errlen, "steps: %zu steps exceeds the limit of %d", nsteps, PIPELINE_STEPS_MAX);
        goto fail;
    }
    keys = xcalloc(nsteps, sizeof *keys);
    size_t i = 0;
    json_object_foreach(steps, k, v) {
        char pk[64];
        if (!name_ok(k, 64, 1)) {
            fail(err, errlen, "steps.%s: a step name is 1 to 64 of [A-Za-z0-9_-]", spec_printable(k, strlen(k), pk));
            goto fail;
        }
        keys[i++] = k;
    }
    tmp = xcalloc(nsteps, sizeof *tmp);
    fanout = xcalloc(nsteps, sizeof *fanout);
    size_t total = 0;
    for (i = 0; i < nsteps; i++) {
        snprintf(tmp[i].name, sizeof tmp[i].name, "%s", keys[i]);
        if (check_step(keys[i], json_object_get(steps, keys[i]), keys, nsteps, &tmp[i], &fanout[i], err, errlen) < 0)
            goto fail;
        total += fanout[i];
    }
    if (total > PIPELINE_NODES_MAX) {
        fail(err, errlen, "steps: %zu tasks in all exceeds the limit of %d", total, PIPELINE_NODES_MAX);
        goto fail;
    }
    for (i = 0; i < nsteps; i++) {
        size_t inputs = 0;
        for (size_t m = 0; m < tmp[i].nneeds; m++)
            inputs += fanout[tmp[i].needs[m]];
        if (inputs > SPEC_INPUTS_MAX) {
            fail(err, errlen, "steps.%s.needs: %zu tasks to take inputs from exceeds the limit of %d", keys[i],
                 inputs, SPEC_INPUTS_MAX);
            goto fail;
        }
    }
    state = xcalloc(nsteps, sizeof *state);
    path = xcalloc(nsteps, sizeof *path);
    order = xcalloc(nsteps, sizeof *order);
    size_t norder = 0;
    for (i = 0; i < nsteps; i++)
        if (state[i] == 0 && visit(tmp, keys, (int)i, state, path, 0, order, &norder, err, errlen) < 0)
            goto fail;
    /* order[] is a topological order; renumber needs into it */
    int *pos = state; /* reused: step index -> position */
    for (i = 0; i < nsteps; i++)
        pos[order[i]] = (int)i;
    p->steps = xcalloc(nsteps, sizeof *p->steps);
    for (i = 0; i < nsteps; i++) {
        p->steps[i] = tmp[order[i]];
        for (size_t m = 0; m < p->steps[i].nneeds; m++)
            p->steps[i].needs[m] = pos[p->steps[i].needs[m]];
    }
    free(tmp);
    tmp = NULL;
    p->nsteps = nsteps;
    for (i = 0; i < nsteps; i++) {
        pipeline_step_t *st = &p->steps[i];
        size_t n = fanout[order[i]];
        st->nodes = xcalloc(n, sizeof *st->nodes);
        st->nnodes = n;
        for (size_t j = 0; j < n; j++)
            if (expand_node(p, st, json_object_get(steps, st->name), j, id, err, errlen) < 0)
                goto fail;
        p->nnodes += n;
    }
    free(keys);
    free(fanout);
    free(state);
    free(path);
    free(order);
    return p;
fail:
    if (tmp) {
        for (i = 0; i < nsteps; i++)
            free(tmp[i].needs);
        free(tmp);
    }
    free(keys);
    free(fanout);
    free(state);
    free(path);
    free(order);
    pipeline_free(p);
    return NULL;
}

pipeline_t *pipeline_parse(const char *text, size_t len, const char *id, char *err, size_t errlen)
{
    char jerr[SPEC_ERR_MAX];
    json_t *doc = spec_json_load(text, len, jerr, sizeof jerr);
    if (!doc) {
        fail(err, errlen, "pipeline: %s", !strncmp(jerr, "spec: ", 6) ? jerr + 6 : jerr);
        return NULL;
    }
    pipeline_t *p = pipeline_from_json(doc, id, err, errlen);
    json_decref(doc);
    return p;
}

/* ------------------------------------------------------------ next sugar */

/* Appends spec (without its next) as step "next-<n>" needing prev, then its
 * own next entries in order. -1: not a spec object, a next that is not an
 * array, or past PIPELINE_STEPS_MAX steps. */
static int add_chain(json_t *steps, const json_t *spec, char *prev, size_t prev_cap, int *n)
{
    if (!json_is_object(spec))
        return -1;
    if (*n > PIPELINE_STEPS_MAX)
        return -1;
    json_t *copy = json_deep_copy(spec);
    json_object_del(copy, "next");
    char name[32];
    if (*n == 0)
        snprintf(name, sizeof name, "main");
    else
        snprintf(name, sizeof name, "next-%d", *n);
    json_t *step = json_pack("{s:o}", "spec", copy);
    if (*n > 0)
        json_object_set_new(step, "needs", json_pack("[s]", prev));
    json_object_set_new(steps, name, step);
    snprintf(prev, prev_cap, "%s", name);
    (*n)++;
    const json_t *next = json_object_get(spec, "next");
    if (next && !json_is_array(next))
        return -1;
    for (size_t i = 0; next && i < json_array_size(next); i++)
        if (add_chain(steps, json_array_get(next, i), prev, prev_cap, n) < 0)
            return -1;
    return 0;
}

pipeline_t *pipeline_from_next(const json_t *spec, const char *id, char *err, size_t errlen)
{
    if (!json_is_array(json_object_get(spec, "next"))) {
        fail(err, errlen, "next: must be an array of specs");
        return NULL;
    }
    const char *name = json_string_value(json_object_get(spec, "name"));
    json_t *steps = json_object();
    char prev[32] = "";
    int n = 0;
    if (add_chain(steps, spec, prev, sizeof prev, &n) < 0) {
        json_decref(steps);
        fail(err, errlen, "next: must be arrays of spec objects, at most %d steps in all", PIPELINE_STEPS_MAX);
        return NULL;
    }
    char nm[PIPELINE_NAME_MAX + 1];
    snprintf(nm, sizeof nm, "%s", name && *name ? name : "next");
    json_t *doc = json_pack("{s:s,s:o}", "name", nm, "steps", steps);
    pipeline_t *p = pipeline_from_json(doc, id, err, errlen);
    json_decref(doc);
    return p;
}

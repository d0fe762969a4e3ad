/* http_op: what the manager's route modules (http_dlq.c, http_replay.c,
 * http_tasks.c) share: the struct op a handler chains its pgc and rc callbacks
 * through, its replies, and the paging every list parses (see http_internal.h).
 * Roles, methods and paths are checked once, in http_route.c. */
#include "http_internal.h"

#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "pgarr.h"
#include "queue.h"
#include "uuid.h"
#include "xalloc.h"

struct op *op_new(struct req *q, const char *queue)
{
    struct op *o = xcalloc(1, sizeof *o);
    o->q = q;
    if (queue)
        snprintf(o->queue, sizeof o->queue, "%s", queue);
    return o;
}

void op_free(struct op *o)
{
    json_decref(o->found);
    json_decref(o->acc);
    free(o->ok_ids ? pgarr_finish(o->ok_ids) : NULL);
    free(o->lost_ids ? pgarr_finish(o->lost_ids) : NULL);
    dlq_filter_free(o->filter);
    free(o);
}

/* Takes the reference to j; answers and frees o (and its request). */
void op_reply(struct op *o, int status, json_t *j)
{
    reply_json(o->q, status, j);
    op_free(o);
}

void op_error(struct op *o, int status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    reply_error(o->q, status, msg);
    op_free(o);
}

void op_db_error(struct op *o, const char *err)
{
    reply_db_unavailable(o->q, err, NULL);
    op_free(o);
}

int op_have_row(struct op *o, const PGresult *res, const char *err, const char *fmt, ...)
{
    if (!res || err[0]) {
        op_db_error(o, err);
        return 0;
    }
    if (PQntuples(res) > 0)
        return 1;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    reply_error(o->q, 404, msg);
    op_free(o);
    return 0;
}

/* 409 with the task's current state next to the message. */
void op_conflict(struct op *o, const char *msg)
{
    op_reply(o, 409, json_pack("{s:s,s:s,s:s}", "error", msg, "id", o->task, "state", o->state));
}

const char *op_redis_why(const char *err)
{
    return queue_disconnected(err) ? "redis unavailable" : err;
}

int op_parse_page(const char *query, long def, long max, int (*after_ok)(const char *), struct op_page *p)
{
    p->why[0] = '\0';
    struct evkeyvalq args;
    TAILQ_INIT(&args);
    if (query && evhttp_parse_query_str(query, &args) < 0) {
        snprintf(p->why, sizeof p->why, "query string does not parse");
        return -1;
    }
    const char *l = evhttp_find_header(&args, "limit"), *a = evhttp_find_header(&args, "after");
    long n = def;
    if (l) {
        char *end;
        n = strtol(l, &end, 10);
        if (!*l || *end || n < 1 || n > max)
            snprintf(p->why, sizeof p->why, "limit: must be an integer from 1 to %ld", max);
    }
    snprintf(p->limit, sizeof p->limit, "%ld", n);
    p->after[0] = '\0';
    if (a) {
        if (strlen(a) >= sizeof p->after || !after_ok(a))
            snprintf(p->why, sizeof p->why, "after: not a cursor returned by this API");
        else
            snprintf(p->after, sizeof p->after, "%s", a);
    }
    evhttp_clear_headers(&args);
    return p->why[0] ? -1 : 0;
}

/* A list cursor is "<created_at in µs since the epoch>_<id>", opaque to
 * clients. Whole string checked and the time kept inside PostgreSQL's range
 * (up to year 9999), so a forged one is a 400, not a failed query. */
#define LIST_CURSOR_MAX_US 253402300799999999LL

int op_cursor_parse(const char *s, char *us, size_t us_cap, char *id, size_t id_cap)
{
    size_t n = strspn(s, "0123456789");
    if (n == 0 || n > 18 || s[n] != '_' || strlen(s + n + 1) != 36 || !uuid_valid(s + n + 1, 36) ||
        us_cap <= n || id_cap <= 36)
        return 0;
    if (strtoll(s, NULL, 10) > LIST_CURSOR_MAX_US)
        return 0;
    snprintf(us, us_cap, "%.*s", (int)n, s);
    snprintf(id, id_cap, "%s", s + n + 1);
    return 1;
}

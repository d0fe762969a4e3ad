/* http_search: GET /v1/tasks, the task list and search: filters by state,
 * queue, name prefix, tag and creation time (since/until), newest first, in
 * keyset pages over the hot table and history (retention moved finished
 * tasks there). Each filter reaches its rows through an index (README, "Task
 * search"; migrations/003_history.sql and 010_search.sql). */
#include "http_internal.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include "utf8.h"
#include "uuid.h"

#define LIST_MAX_LIMIT 1000
#define SEARCH_NAME_MAX 256 /* a task's name (proto/spec.c) */
#define SEARCH_TAG_MAX 128  /* one tag (proto/spec.c) */
/* Times and cursors stay inside PostgreSQL's range (up to year 9999), so a
 * forged one is a 400, not a failed query. */
#define SEARCH_MAX_US 253402300799999999LL

static void list_done(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct req *q = arg;
    if (err[0] && strstr(err, "statement timeout")) {
        char msg[200];
        snprintf(msg, sizeof msg, "search took longer than %ld ms (DEVSYS_SEARCH_TIMEOUT_MS): narrow it with"
                 " since/until, state or queue", q->api->search_timeout_ms);
        reply_error(q, 422, msg);
        return;
    }
    if (!res || err[0]) {
        reply_db_unavailable(q, err, NULL);
        return;
    }
    int rows = PQntuples(res);
    long limit = strtol(PQgetvalue(res, 0, 2), NULL, 10);
    struct evbuffer *b = evbuffer_new();
    evbuffer_add_printf(b, "{\"tasks\":[");
    int n = 0, last = -1;
    for (int i = 0; i < rows; i++) {
        if (PQgetisnull(res, i, 0))
            continue;
        evbuffer_add_printf(b, "%s%s", n++ ? "," : "", PQgetvalue(res, i, 0));
        last = i;
    }
    if (n == limit && last >= 0)
        evbuffer_add_printf(b, "],\"next\":\"%s\"}", PQgetvalue(res, last, 1));
    else
        evbuffer_add_printf(b, "],\"next\":null}");
    size_t len = evbuffer_get_length(b);
    reply_raw(q, 200, (const char *)evbuffer_pullup(b, -1), len);
    evbuffer_free(b);
}

/* ------------------------------------------------------------ parameters */

/* Reads exactly n digits at *s into *v; advances *s. */
static int digits(const char **s, int n, int *v)
{
    *v = 0;
    for (int i = 0; i < n; i++, (*s)++) {
        if (**s < '0' || **s > '9')
            return 0;
        *v = *v * 10 + (**s - '0');
    }
    return 1;
}

/* A time as µs since the epoch (UTC): seconds since the epoch ("1733130000",
 * fraction allowed), a date ("2026-12-02", midnight UTC) or RFC 3339
 * ("2026-12-02T05:30:00Z", "...T05:30:00.25+01:00", seconds optional; a
 * space stands for the '+' a query string decodes to one). 0 when s is none
 * of these or outside 1970..9999. */
int time_parse(const char *s, long long *us)
{
    size_t n = strspn(s, "0123456789");
    if (n > 0 && n <= 11 && (s[n] == '\0' || (s[n] == '.' && s[n + 1]))) {
        char *end;
        double secs = strtod(s, &end);
        if (*end || secs < 0 || secs * 1e6 > (double)SEARCH_MAX_US)
            return 0;
        *us = (long long)(secs * 1e6);
        return 1;
    }
    struct tm tm = {0};
    int y, mo, d, h = 0, mi = 0, sec = 0, off = 0;
    long long frac_us = 0;
    const char *p = s;
    if (!digits(&p, 4, &y) || *p++ != '-' || !digits(&p, 2, &mo) || *p++ != '-' || !digits(&p, 2, &d))
        return 0;
    if (*p) {
        if (*p != 'T' && *p != 't')
            return 0;
        p++;
        if (!digits(&p, 2, &h) || *p++ != ':' || !digits(&p, 2, &mi))
            return 0;
        if (*p == ':') {
            p++;
            if (!digits(&p, 2, &sec))
                return 0;
            if (*p == '.') {
                p++;
                long long scale = 100000;
                int k = 0;
                for (; *p >= '0' && *p <= '9'; p++, k++)
                    if (scale) {
                        frac_us += (*p - '0') * scale;
                        scale /= 10;
                    }
                if (k == 0)
                    return 0;
            }
        }
        if (*p == 'Z' || *p == 'z') {
            p++;
        } else if (*p == '+' || *p == '-' || *p == ' ') {
            int sign = *p == '-' ? -1 : 1, oh, om;
            p++;
            if (!digits(&p, 2, &oh) || *p++ != ':' || !digits(&p, 2, &om) || oh > 23 || om > 59)
                return 0;
            off = sign * (oh * 3600 + om * 60);
        } else {
            return 0;
        }
        if (*p)
            return 0;
    }
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return 0;
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    time_t t = timegm(&tm);
    if (tm.tm_mday != d) /* 2026-02-31 normalised to March */
        return 0;
    long long v = ((long long)t - off) * 1000000 + frac_us;
    if (v < 0 || v > SEARCH_MAX_US)
        return 0;
    *us = v;
    return 1;
}

/* Is s 1..max bytes of valid UTF-8? */
static int text_ok(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return 0;
    char *clean = utf8_sanitize(s, n);
    int same = strcmp(clean, s) == 0;
    free(clean);
    return same;
}

/* The filters of one request, checked; texts point into the parsed query. */
struct search {
    const char *state, *queue, *tag;
    const char *text;            /* q: words of the spec or last error (websearch syntax) */
    char name[260];              /* without the trailing '*' of a prefix; "" when not given */
    int prefix;                  /* name ended in '*': a prefix */
    char limit[16];
    char since[24], until[24];   /* µs since the epoch, "" when not given */
    char after_us[24], after_id[40];
    char *tag_json;              /* ["<tag>"], owned */
    int live;                    /* state is queued, running or retrying */
    char why[200];               /* the 400 of an unknown parameter */
};

static const char *const known[] = {"state", "queue", "name", "tag", "since", "until", "limit", "after", "q"};

/* Fills s from args. Returns NULL, or the message of the 400 naming the
 * parameter that is wrong. */
static const char *search_parse(struct evkeyvalq *args, struct search *s)
{
    struct evkeyval *kv;
    TAILQ_FOREACH(kv, args, next) {
        size_t i = 0;
        while (i < sizeof known / sizeof *known && strcmp(kv->key, known[i]) != 0)
            i++;
        if (i == sizeof known / sizeof *known) {
            snprintf(s->why, sizeof s->why,
                     "%.64s: unknown parameter (the task list takes state, queue, name, tag, q, since, until,"
                     " limit and after)", kv->key);
            return s->why;
        }
    }
    s->state = evhttp_find_header(args, "state");
    s->queue = evhttp_find_header(args, "queue");
    const char *name = evhttp_find_header(args, "name");
    s->tag = evhttp_find_header(args, "tag");
    const char *limit = evhttp_find_header(args, "limit"), *after = evhttp_find_header(args, "after");
    const char *since = evhttp_find_header(args, "since"), *until = evhttp_find_header(args, "until");
    snprintf(s->limit, sizeof s->limit, "50");
    if (limit) {
        char *end;
        long l = strtol(limit, &end, 10);
        if (!*limit || *end || l < 1 || l > LIST_MAX_LIMIT)
            return "limit: must be an integer from 1 to 1000";
        snprintf(s->limit, sizeof s->limit, "%ld", l);
    }
    if (after && !op_cursor_parse(after, s->after_us, sizeof s->after_us, s->after_id, sizeof s->after_id))
        return "after: not a cursor returned by this API";
    static const char *const states[] = {"queued", "running", "retrying", "succeeded",
                                         "failed", "dead",    "cancelled"};
    if (s->state) {
        size_t i = 0;
        while (i < sizeof states / sizeof *states && strcmp(s->state, states[i]) != 0)
            i++;
        if (i == sizeof states / sizeof *states)
            return "state: must be one of queued, running, retrying, succeeded, failed, dead, cancelled";
        s->live = i < 3;
    }
    if (s->queue && !spec_queue_name_ok(s->queue))
        return "queue: not a valid queue name";
    if (name) {
        size_t n = strlen(name);
        s->prefix = n > 0 && name[n - 1] == '*';
        snprintf(s->name, sizeof s->name, "%.*s", (int)(n - (size_t)s->prefix), name);
        if (n > SEARCH_NAME_MAX + 1 || !text_ok(s->name, SEARCH_NAME_MAX))
            return "name: must be 1 to 256 bytes of UTF-8: a task's name, or a prefix of it followed by *";
    }
    s->text = evhttp_find_header(args, "q");
    if (s->text && !text_ok(s->text, SEARCH_NAME_MAX))
        return "q: must be 1 to 256 bytes of UTF-8: words of the task's spec or last error";
    if (s->tag && !text_ok(s->tag, SEARCH_TAG_MAX))
        return "tag: must be 1 to 128 bytes of UTF-8 (one of the task's tags)";
    long long since_us = 0, until_us = 0;
    if (since && !time_parse(since, &since_us))
        return "since: must be a time: RFC 3339 (2026-12-02T05:30:00Z), a date (2026-12-02) or epoch seconds";
    if (until && !time_parse(until, &until_us))
        return "until: must be a time: RFC 3339 (2026-12-02T05:30:00Z), a date (2026-12-02) or epoch seconds";
    if (since && until && until_us <= since_us)
        return "until: must be later than since";
    if (since)
        snprintf(s->since, sizeof s->since, "%lld", since_us);
    if (until)
        snprintf(s->until, sizeof s->until, "%lld", until_us);
    if (s->tag) {
        json_t *a = json_pack("[s]", s->tag);
        s->tag_json = json_dumps(a, JSON_COMPACT);
        json_decref(a);
    }
    return NULL;
}

/* ------------------------------------------------------------------- SQL */

struct sqlq {
    const char *params[12];
    int n;
};

/* Adds v as the next parameter; its reference ("$N") goes to ref. */
static const char *sqlq_param(struct sqlq *s, const char *v, char ref[8])
{
    s->params[s->n++] = v;
    snprintf(ref, 8, "$%u", (unsigned)s->n % 100u);
    return ref;
}

#define US_TIME(P) "('epoch'::timestamptz + " P "::bigint * interval '1 microsecond')"

/* Appends " AND <fmt>" to where. */
static void cond(char *where, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void cond(char *where, size_t cap, const char *fmt, ...)
{
    size_t n = strlen(where);
    snprintf(where + n, cap - n, " AND ");
    n = strlen(where);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(where + n, cap - n, fmt, ap);
    va_end(ap);
}

/* The statement for a filter: a condition is in the text only when its
 * filter is given, so each combination has its own plan (lists are prepared
 * once, searches planned for their values: tasks_list), and that plan reaches
 * rows through an index: tasks_final_other or tasks_live by the state's
 * group, tasks_created_at_id for succeeded, all, since/until and the cursor;
 * tasks_name (an exact name: its rows in order; a prefix: a range of it) and
 * tasks_tags (partial: their predicate is in the text). A live state reads
 * `tasks` only; else tasks_history too, merged by the cursor's order (since
 * also prunes its day partitions: a task finishes after it is created; the
 * day of slack covers clocks that disagree). The extra row (limit echoed)
 * keeps the answer non-empty so list_done can read the limit. */
static void search_sql(char *sql, size_t cap, struct search *f, struct sqlq *p, struct req *q)
{
    char r1[8], r2[8], where[1400] = "true", hist[200] = "";
    if (scope_sql_queues(q)) /* a scoped token's tasks: in the condition, so the cursor pages them alone */
        cond(where, sizeof where, "queue = ANY(%s::text[])", sqlq_param(p, scope_sql_queues(q), r1));
    if (scope_sql_apps(q))
        cond(where, sizeof where, "(spec->'deploy'->>'app' IS NULL OR spec->'deploy'->>'app' = ANY(%s::text[]))",
             sqlq_param(p, scope_sql_apps(q), r1));
    if (f->state)
        cond(where, sizeof where,
             f->live ? "state = %s AND state IN ('queued', 'running', 'retrying')"
             : !strcmp(f->state, "succeeded") ? "state = %s AND state = 'succeeded'"
                                              : "state = %s AND state IN ('failed', 'dead', 'cancelled')",
             sqlq_param(p, f->state, r1));
    if (f->queue)
        cond(where, sizeof where, "queue = %s", sqlq_param(p, f->queue, r1));
    if (f->name[0] && f->prefix) {
        sqlq_param(p, f->name, r1);
        cond(where, sizeof where,
             "spec ? 'name' AND (spec->>'name') ~>=~ %s AND (spec->>'name') ~<~ (%s || chr(1114111))", r1, r1);
    } else if (f->name[0]) { /* tasks_name gives its rows newest first */
        cond(where, sizeof where, "spec ? 'name' AND (spec->>'name') = %s", sqlq_param(p, f->name, r1));
    }
    if (f->tag_json)
        cond(where, sizeof where, "spec ? 'tags' AND spec->'tags' @> %s::jsonb", sqlq_param(p, f->tag_json, r1));
    if (f->text) /* tasks_text, tasks_history_text (migrations/016_task_text.sql) */
        cond(where, sizeof where, "devsys_task_text(spec, last_error) @@ websearch_to_tsquery('simple', %s)",
             sqlq_param(p, f->text, r1));
    if (f->since[0]) {
        sqlq_param(p, f->since, r1);
        cond(where, sizeof where, "created_at >= " US_TIME("%s"), r1);
        snprintf(hist, sizeof hist, " AND finished_at >= " US_TIME("%s") " - interval '1 day'", r1);
    }
    if (f->until[0])
        cond(where, sizeof where, "created_at < " US_TIME("%s"), sqlq_param(p, f->until, r1));
    if (f->after_us[0]) {
        sqlq_param(p, f->after_us, r1);
        cond(where, sizeof where, "(created_at, id) < (" US_TIME("%s") ", %s::uuid)", r1,
             sqlq_param(p, f->after_id, r2));
    }
    char lim[8];
    sqlq_param(p, f->limit, lim);
    char page[3400];
    if (f->live)
        snprintf(page, sizeof page, "SELECT * FROM tasks WHERE %s ORDER BY created_at DESC, id DESC LIMIT %s::int",
                 where, lim);
    else
        snprintf(page, sizeof page,
                 "(SELECT * FROM tasks WHERE %s ORDER BY created_at DESC, id DESC LIMIT %s::int)"
                 " UNION ALL (SELECT * FROM tasks_history WHERE %s%s ORDER BY created_at DESC, id DESC LIMIT %s::int)"
                 " ORDER BY created_at DESC, id DESC LIMIT %s::int",
                 where, lim, where, hist, lim, lim);
    snprintf(sql, cap,
             "WITH page AS (%s)"
             " SELECT jsonb_build_object(" TASK_JSON_FIELDS ", 'name', spec->>'name', 'tags', spec->'tags')::text,"
             "   (extract(epoch FROM created_at) * 1000000)::bigint || '_' || id, %s::int"
             " FROM (SELECT * FROM page ORDER BY created_at DESC, id DESC) p"
             " UNION ALL SELECT NULL, NULL, %s::int", page, lim, lim);
}

void tasks_list(struct req *q, const struct route_args *a)
{
    (void)a;
    struct evkeyvalq args;
    TAILQ_INIT(&args);
    if (q->query && evhttp_parse_query_str(q->query, &args) < 0) {
        reply_error(q, 400, "query string does not parse");
        return;
    }
    struct search f = {0};
    const char *bad = search_parse(&args, &f);
    if (bad) {
        free(f.tag_json);
        evhttp_clear_headers(&args);
        reply_error(q, 400, bad);
        return;
    }
    char sql[5000];
    struct sqlq p = {.n = 0};
    search_sql(sql, sizeof sql, &f, &p, q);
    /* A search by name, tag or time is planned for its values: the best plan
     * differs between a rare name (its index) and a common one (the newest
     * rows first), which a cached generic plan cannot tell apart. */
    if (f.name[0] || f.tag || f.text || f.since[0] || f.until[0])
        pgc_query_once(q->api->pg_search ? q->api->pg_search : q->api->pg, sql, p.n, p.params, list_done,
                       q); /* copies sql and params */
    else
        pgc_query(q->api->pg, sql, p.n, p.params, list_done, q);
    free(f.tag_json);
    evhttp_clear_headers(&args);
}

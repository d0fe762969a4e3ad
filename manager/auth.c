/* auth: bearer tokens and roles (see auth.h). The cache is a hash table keyed
 * by SHA-256(token) with one LRU list per kind of answer (valid, unknown). */
#include "auth.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sodium.h>
#include <time.h>

#include "metrics.h"
#include "xalloc.h"

#define AUTH_TOKEN_MAX 512
#define AUTH_BUCKETS 8192          /* power of two */
#define AUTH_VALID_MAX 1024        /* cached valid tokens (LRU) */
#define AUTH_UNKNOWN_MAX 4096      /* cached unknown tokens (LRU) */
#define AUTH_UNKNOWN_TTL_MS 5000   /* a token created after a failed try works within this */
#define AUTH_SAMPLE_SLOTS 1024     /* remote addresses remembered for audit sampling */
#define AUTH_SAMPLE_MAX_PER_MIN 120

enum kind { KIND_VALID, KIND_UNKNOWN };

struct entry {
    unsigned char hash[32];
    enum kind kind;
    enum role role;
    char actor[160];
    char *queues, *apps; /* owned; NULL: unscoped */
    long long expires_ms;
    struct entry *chain;               /* same bucket */
    struct entry *newer, *older;       /* LRU list of its kind */
};

struct lru {
    struct entry *newest, *oldest;
    int n;
};

struct waiter {
    auth_fn *fn;
    void *arg;
    struct waiter *next;
};

/* One PostgreSQL lookup in flight; requests for the same token wait on it. */
struct lookup {
    auth_t *auth; /* NULL once auth_free ran */
    unsigned char hash[32];
    struct waiter *waiters;
    struct lookup *next;
};

struct auth {
    pgc_t *pg;
    int has_admin;
    unsigned char admin_hash[32];
    long cache_ms;
    double rate, tokens;
    long long refill_ms;
    struct entry *buckets[AUTH_BUCKETS];
    struct lru lru[2];
    struct lookup *lookups;
    struct {
        uint64_t key;
        long long minute;
    } sample[AUTH_SAMPLE_SLOTS];
    long long sample_minute;
    int sampled;
    metric_t *m_queries, *m_limited;
};

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Constant time in the contents, so response timing does not leak how much of
 * a stored hash a guess matched. */
static int hash_equal(const unsigned char *a, const unsigned char *b)
{
    return sodium_memcmp(a, b, 32) == 0;
}

static unsigned bucket_of(const unsigned char *hash)
{
    return ((unsigned)hash[0] << 8 | hash[1]) & (AUTH_BUCKETS - 1);
}

auth_t *auth_new(pgc_t *pg, const struct auth_config *cfg)
{
    auth_t *a = xcalloc(1, sizeof *a);
    a->pg = pg;
    if (cfg->admin_token && *cfg->admin_token) {
        a->has_admin = 1;
        crypto_hash_sha256(a->admin_hash, (const unsigned char *)cfg->admin_token, strlen(cfg->admin_token));
    }
    a->cache_ms = cfg->cache_ms;
    a->rate = cfg->lookups_per_s;
    a->tokens = a->rate < 1 ? 1 : a->rate;
    a->refill_ms = now_ms();
    a->sample_minute = -1;
    a->m_queries = metric_counter("devsys_auth_lookups_total", NULL,
                                  "Token lookups sent to PostgreSQL (cache misses)");
    a->m_limited = metric_counter("devsys_auth_lookups_limited_total", NULL,
                                  "Unknown tokens refused without a lookup (lookup rate limit)");
    return a;
}

static void lru_unlink(struct lru *l, struct entry *e)
{
    if (e->newer)
        e->newer->older = e->older;
    else
        l->newest = e->older;
    if (e->older)
        e->older->newer = e->newer;
    else
        l->oldest = e->newer;
    e->newer = e->older = NULL;
    l->n--;
}

static void lru_push(struct lru *l, struct entry *e)
{
    e->older = l->newest;
    e->newer = NULL;
    if (l->newest)
        l->newest->newer = e;
    l->newest = e;
    if (!l->oldest)
        l->oldest = e;
    l->n++;
}

static struct entry *entry_find(auth_t *a, const unsigned char *hash)
{
    for (struct entry *e = a->buckets[bucket_of(hash)]; e; e = e->chain)
        if (hash_equal(e->hash, hash))
            return e;
    return NULL;
}

static void entry_remove(auth_t *a, struct entry *e)
{
    struct entry **p = &a->buckets[bucket_of(e->hash)];
    while (*p != e)
        p = &(*p)->chain;
    *p = e->chain;
    lru_unlink(&a->lru[e->kind], e);
    free(e->queues);
    free(e->apps);
    free(e);
}

/* Records an answer, evicting the least recently used entry of its kind when full. */
static void entry_put(auth_t *a, const unsigned char *hash, enum kind kind, enum role role, const char *actor,
                      const char *queues, const char *apps, long long expires_ms)
{
    struct entry *e = entry_find(a, hash);
    if (e && e->kind != kind) {
        entry_remove(a, e);
        e = NULL;
    }
    if (!e) {
        int cap = kind == KIND_VALID ? AUTH_VALID_MAX : AUTH_UNKNOWN_MAX;
        if (a->lru[kind].n >= cap)
            entry_remove(a, a->lru[kind].oldest);
        e = xcalloc(1, sizeof *e);
        memcpy(e->hash, hash, 32);
        e->kind = kind;
        unsigned b = bucket_of(hash);
        e->chain = a->buckets[b];
        a->buckets[b] = e;
    } else {
        lru_unlink(&a->lru[kind], e);
    }
    lru_push(&a->lru[kind], e);
    e->role = role;
    snprintf(e->actor, sizeof e->actor, "%s", actor);
    free(e->queues);
    free(e->apps);
    e->queues = queues ? xstrdup(queues) : NULL;
    e->apps = apps ? xstrdup(apps) : NULL;
    e->expires_ms = expires_ms;
}

void auth_free(auth_t *a)
{
    if (!a)
        return;
    for (int k = 0; k < 2; k++)
        while (a->lru[k].oldest)
            entry_remove(a, a->lru[k].oldest);
    /* pgc still owns these and calls lookup_done later (or at pgc_free) */
    for (struct lookup *l = a->lookups; l; l = l->next)
        l->auth = NULL;
    free(a);
}

const char *auth_role_name(enum role r)
{
    static const char *const names[] = {"none", "viewer", "operator", "admin"};
    return names[r];
}

const char *auth_outcome_name(enum auth_outcome o)
{
    static const char *const names[] = {"ok", "missing", "invalid", "rate_limited", "unavailable"};
    return names[o];
}

static void answer(auth_fn *fn, void *arg, enum auth_outcome o, enum role role, const char *actor)
{
    struct auth_result res = {o, o == AUTH_OK ? role : ROLE_NONE, o == AUTH_OK ? actor : "anonymous", NULL, NULL, 0};
    fn(&res, arg);
}

static void answer_entry(auth_fn *fn, void *arg, const struct entry *e)
{
    if (e->kind != KIND_VALID) {
        answer(fn, arg, AUTH_INVALID, ROLE_NONE, NULL);
        return;
    }
    struct auth_result res = {AUTH_OK, e->role, e->actor, e->queues, e->apps, 0};
    fn(&res, arg);
}

int auth_scope_has(const char *list, const char *item)
{
    size_t n = strlen(item);
    for (const char *p = list; p && *p;) {
        size_t m = strcspn(p, ",");
        if (m == n && memcmp(p, item, n) == 0)
            return 1;
        p += m + (p[m] == ',');
    }
    return 0;
}

/* Token bucket for lookups of tokens not known to be valid. */
static int lookup_allowed(auth_t *a, long long now)
{
    double burst = a->rate < 1 ? 1 : a->rate;
    a->tokens += (double)(now - a->refill_ms) * a->rate / 1000.0;
    a->refill_ms = now;
    if (a->tokens > burst)
        a->tokens = burst;
    if (a->tokens < 1)
        return 0;
    a->tokens -= 1;
    return 1;
}

enum role auth_role_parse(const char *r)
{
    return strcmp(r, "admin") == 0      ? ROLE_ADMIN
           : strcmp(r, "operator") == 0 ? ROLE_OPERATOR
           : strcmp(r, "viewer") == 0   ? ROLE_VIEWER
                                        : ROLE_NONE;
}

/* A text column that may be NULL, as NULL. */
static const char *col(const PGresult *res, const char *name)
{
    int c = PQfnumber(res, name);
    return c < 0 || PQgetisnull(res, 0, c) ? NULL : PQgetvalue(res, 0, c);
}

static void lookup_done(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct lookup *l = arg;
    auth_t *a = l->auth;
    enum auth_outcome o = AUTH_UNAVAILABLE;
    enum role role = ROLE_NONE;
    char actor[160] = "anonymous";
    if (a && res && !err[0]) {
        long long now = now_ms();
        if (PQntuples(res) == 1) {
            o = AUTH_OK;
            role = auth_role_parse(col(res, "role"));
            snprintf(actor, sizeof actor, "token:%s", col(res, "name"));
            /* an expiring token (or a rotated secret in its grace period) is
             * never answered from the cache past its end */
            const char *left = col(res, "valid_ms");
            long long until = now + a->cache_ms;
            if (left && now + atoll(left) < until)
                until = now + atoll(left);
            entry_put(a, l->hash, KIND_VALID, role, actor, col(res, "queues"), col(res, "apps"), until);
        } else {
            o = AUTH_INVALID;
            entry_put(a, l->hash, KIND_UNKNOWN, ROLE_NONE, actor, NULL, NULL, now + AUTH_UNKNOWN_TTL_MS);
        }
    }
    /* copies: a waiter's callback may evict the entry */
    struct entry *e = a && o == AUTH_OK ? entry_find(a, l->hash) : NULL;
    char *queues = e && e->queues ? xstrdup(e->queues) : NULL;
    char *apps = e && e->apps ? xstrdup(e->apps) : NULL;
    if (a) { /* off the list first: a waiter may call auth_check again */
        struct lookup **p = &a->lookups;
        while (*p != l)
            p = &(*p)->next;
        *p = l->next;
    }
    while (l->waiters) {
        struct waiter *w = l->waiters;
        l->waiters = w->next;
        if (a) {
            struct auth_result r = {o, o == AUTH_OK ? role : ROLE_NONE, o == AUTH_OK ? actor : "anonymous",
                                    queues, apps, 0};
            w->fn(&r, w->arg);
        }
        free(w);
    }
    free(queues);
    free(apps);
    free(l);
}

void auth_check(auth_t *a, const char *header, auth_fn *fn, void *arg)
{
    if (!header || strncasecmp(header, "Bearer ", 7) != 0) {
        answer(fn, arg, AUTH_MISSING, ROLE_NONE, NULL);
        return;
    }
    const char *token = header + 7;
    while (*token == ' ')
        token++;
    size_t len = strlen(token);
    while (len > 0 && (token[len - 1] == ' ' || token[len - 1] == '\t'))
        len--;
    if (len == 0 || len > AUTH_TOKEN_MAX) {
        answer(fn, arg, AUTH_INVALID, ROLE_NONE, NULL);
        return;
    }
    unsigned char hash[32];
    crypto_hash_sha256(hash, (const unsigned char *)token, len);
    if (a->has_admin && hash_equal(hash, a->admin_hash)) {
        struct auth_result res = {AUTH_OK, ROLE_ADMIN, "admin", NULL, NULL, 1};
        fn(&res, arg);
        return;
    }
    long long now = now_ms();
    struct entry *e = entry_find(a, hash);
    if (e && e->expires_ms > now) {
        lru_unlink(&a->lru[e->kind], e);
        lru_push(&a->lru[e->kind], e);
        answer_entry(fn, arg, e);
        return;
    }
    if (!pgc_ready(a->pg)) { /* fail fast: queued, the lookup would wait for the reconnect */
        answer(fn, arg, AUTH_UNAVAILABLE, ROLE_NONE, NULL);
        return;
    }
    struct waiter *w = xcalloc(1, sizeof *w);
    w->fn = fn;
    w->arg = arg;
    for (struct lookup *l = a->lookups; l; l = l->next)
        if (hash_equal(l->hash, hash)) {
            w->next = l->waiters;
            l->waiters = w;
            return;
        }
    /* A token that was valid is re-checked without limit (their number is
     * bounded by the cache); anything else spends the lookup budget. */
    if (!(e && e->kind == KIND_VALID) && !lookup_allowed(a, now)) {
        free(w);
        metric_add(a->m_limited, 1);
        answer(fn, arg, AUTH_LIMITED, ROLE_NONE, NULL);
        return;
    }
    struct lookup *l = xcalloc(1, sizeof *l);
    l->auth = a;
    memcpy(l->hash, hash, 32);
    l->waiters = w;
    l->next = a->lookups;
    a->lookups = l;
    char hex[65];
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", hash[i]);
    const char *params[1] = {hex};
    metric_add(a->m_queries, 1);
    /* The hash is compared by PostgreSQL's index, not in constant time: it is
     * the SHA-256 of a 256-bit random secret, so learning how much of a stored
     * hash a guess's hash matched does not help find a token. */
    pgc_query(a->pg,
              "SELECT role, name, array_to_string(queues, ',') AS queues, array_to_string(apps, ',') AS apps,"
              " floor(extract(epoch FROM least(expires_at,"
              "   CASE WHEN token_hash = $1 THEN NULL ELSE prev_valid_until END) - now()) * 1000)::bigint AS valid_ms"
              " FROM api_tokens WHERE (token_hash = $1 OR (prev_hash = $1 AND prev_valid_until > now()))"
              " AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())",
              1, params, lookup_done, l);
}

void auth_forget_valid(auth_t *a)
{
    while (a->lru[KIND_VALID].oldest)
        entry_remove(a, a->lru[KIND_VALID].oldest);
}

void auth_cancel(auth_t *a, void *arg)
{
    for (struct lookup *l = a->lookups; l; l = l->next) {
        struct waiter **p = &l->waiters;
        while (*p) {
            if ((*p)->arg == arg) {
                struct waiter *w = *p;
                *p = w->next;
                free(w);
            } else {
                p = &(*p)->next;
            }
        }
    }
}

int auth_sample_failure(auth_t *a, const char *remote)
{
    long long minute = now_ms() / 60000;
    if (minute != a->sample_minute) {
        a->sample_minute = minute;
        a->sampled = 0;
    }
    uint64_t k = 1469598103934665603ULL; /* FNV-1a */
    for (const char *s = remote ? remote : ""; *s; s++)
        k = (k ^ (unsigned char)*s) * 1099511628211ULL;
    unsigned slot = (unsigned)(k & (AUTH_SAMPLE_SLOTS - 1));
    if (a->sample[slot].key == k && a->sample[slot].minute == minute)
        return 0;
    a->sample[slot].key = k;
    a->sample[slot].minute = minute;
    if (a->sampled >= AUTH_SAMPLE_MAX_PER_MIN)
        return 0;
    a->sampled++;
    return 1;
}

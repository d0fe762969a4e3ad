/* auth: bearer tokens and roles. The admin token comes from DEVSYS_ADMIN_TOKEN;
 * other tokens live in api_tokens as SHA-256 hex digests. Answers are cached by
 * the token's SHA-256 (the raw token is never kept): a valid token for
 * cache_ms, so a revocation or a role change in api_tokens takes effect within
 * it on every manager; an unknown token for a few seconds, in a bounded LRU.
 * Lookups of tokens never seen valid are rate-limited, so random tokens cannot
 * turn into one PostgreSQL query each. A token from api_tokens may carry
 * queue and app scopes, an expiry (a cached answer never outlives it) and, after
 * a rotation, a previous hash valid until its grace period ends. */
#ifndef DEVSYS_AUTH_H
#define DEVSYS_AUTH_H

#include "pgc.h"

enum role { ROLE_NONE = 0, ROLE_VIEWER = 1, ROLE_OPERATOR = 2, ROLE_ADMIN = 3 };

enum auth_outcome {
    AUTH_OK,          /* role and actor are set */
    AUTH_MISSING,     /* no "Authorization: Bearer" header */
    AUTH_INVALID,     /* malformed, unknown or revoked token */
    AUTH_LIMITED,     /* unknown token and the lookup rate limit is spent: retry later */
    AUTH_UNAVAILABLE, /* PostgreSQL did not answer */
};

struct auth_result {
    enum auth_outcome outcome;
    enum role role;    /* ROLE_NONE unless AUTH_OK */
    const char *actor; /* "admin", "token:<name>", or "anonymous" */
    const char *queues; /* the token's queue scope as "a,b", NULL: every queue */
    const char *apps;   /* the token's app scope as "a1,a2", NULL: every app */
    int bootstrap;      /* the DEVSYS_ADMIN_TOKEN (not rate-limited) */
};

/* res and its strings are valid only during the call. */
typedef void auth_fn(const struct auth_result *res, void *arg);
typedef struct auth auth_t;

struct auth_config {
    const char *admin_token; /* may be NULL (then only api_tokens authenticate); hashed, not kept */
    long cache_ms;           /* how long a valid token's answer is reused */
    double lookups_per_s;    /* PostgreSQL lookups/s for tokens not known valid (burst: one second's worth) */
};

auth_t *auth_new(pgc_t *pg, const struct auth_config *cfg);
/* Lookups in flight are dropped: their callbacks are never called. */
void auth_free(auth_t *a);

/* header: the Authorization header value or NULL. Calls fn exactly once,
 * possibly before returning, unless auth_cancel(a, arg) runs first. */
void auth_check(auth_t *a, const char *header, auth_fn *fn, void *arg);
/* Forgets every pending callback with this arg (its owner is going away). */
void auth_cancel(auth_t *a, void *arg);

/* Drops every cached valid answer: after a token change this manager asks
 * PostgreSQL again at once (the others within cache_ms). */
void auth_forget_valid(auth_t *a);

/* Should this failed attempt from remote get an audit row? The first per
 * address per minute does, up to a global cap per minute. */
int auth_sample_failure(auth_t *a, const char *remote);

const char *auth_role_name(enum role r);
/* "viewer", "operator", "admin" -> the role; ROLE_NONE for anything else. */
enum role auth_role_parse(const char *name);
/* Is item one of the comma-separated list's entries? */
int auth_scope_has(const char *list, const char *item);
/* "ok", "missing", "invalid", "rate_limited", "unavailable" (metric labels). */
const char *auth_outcome_name(enum auth_outcome o);

#endif

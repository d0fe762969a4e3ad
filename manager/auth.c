/* auth: bearer tokens and roles (see auth.h). */
#include "auth.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "xalloc.h"

#define AUTH_CACHE_TTL_S 30
#define AUTH_CACHE_MAX 1024

struct cached {
    char *token;
    char *actor;
    enum role role;
    time_t expires;
    struct cached *next;
};

struct auth {
    pgc_t *pg;
    char *admin_token;
    struct cached *cache;
    int ncache;
};

struct lookup {
    auth_t *auth;
    char *token;
    auth_fn *fn;
    void *arg;
};

auth_t *auth_new(pgc_t *pg, const char *admin_token)
{
    auth_t *a = xcalloc(1, sizeof *a);
    a->pg = pg;
    a->admin_token = admin_token && *admin_token ? xstrdup(admin_token) : NULL;
    return a;
}

static void cache_clear(auth_t *a)
{
    while (a->cache) {
        struct cached *c = a->cache;
        a->cache = c->next;
        free(c->token);
        free(c->actor);
        free(c);
    }
    a->ncache = 0;
}

void auth_free(auth_t *a)
{
    if (!a)
        return;
    cache_clear(a);
    free(a->admin_token);
    free(a);
}

const char *auth_role_name(enum role r)
{
    static const char *const names[] = {"none", "viewer", "operator", "admin"};
    return names[r];
}

/* Constant-time comparison, so response timing does not leak the admin token. */
static int token_equal(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned char diff = (unsigned char)(la != lb);
    for (size_t i = 0; i < la; i++)
        diff |= (unsigned char)(a[i] ^ b[i % (lb ? lb : 1)]);
    return diff == 0;
}

static void lookup_done(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct lookup *l = arg;
    auth_t *a = l->auth;
    enum role role = ROLE_NONE;
    char actor[160] = "anonymous";
    if (res && !err[0] && PQntuples(res) == 1) {
        const char *r = PQgetvalue(res, 0, 0);
        role = strcmp(r, "admin") == 0 ? ROLE_ADMIN : strcmp(r, "operator") == 0 ? ROLE_OPERATOR
                                                                                 : ROLE_VIEWER;
        snprintf(actor, sizeof actor, "token:%s", PQgetvalue(res, 0, 1));
    }
    if (res && !err[0]) { /* cache answers, including "no such token"; not store errors */
        if (a->ncache >= AUTH_CACHE_MAX)
            cache_clear(a);
        struct cached *c = xcalloc(1, sizeof *c);
        c->token = l->token;
        l->token = NULL;
        c->actor = xstrdup(actor);
        c->role = role;
        c->expires = time(NULL) + AUTH_CACHE_TTL_S;
        c->next = a->cache;
        a->cache = c;
        a->ncache++;
    }
    l->fn(role, actor, l->arg);
    free(l->token);
    free(l);
}

void auth_check(auth_t *a, const char *header, auth_fn *fn, void *arg)
{
    if (!header || strncasecmp(header, "Bearer ", 7) != 0) {
        fn(ROLE_NONE, "anonymous", arg);
        return;
    }
    const char *token = header + 7;
    while (*token == ' ')
        token++;
    if (!*token || strlen(token) > 512) {
        fn(ROLE_NONE, "anonymous", arg);
        return;
    }
    if (a->admin_token && token_equal(token, a->admin_token)) {
        fn(ROLE_ADMIN, "admin", arg);
        return;
    }
    time_t now = time(NULL);
    for (struct cached *c = a->cache; c; c = c->next) {
        if (c->expires > now && strcmp(c->token, token) == 0) {
            fn(c->role, c->actor, arg);
            return;
        }
    }
    struct lookup *l = xcalloc(1, sizeof *l);
    l->auth = a;
    l->token = xstrdup(token);
    l->fn = fn;
    l->arg = arg;
    const char *params[1] = {token};
    pgc_query(a->pg,
              "SELECT role, name FROM api_tokens WHERE token_hash = "
              "encode(sha256(convert_to($1, 'UTF8')), 'hex') AND revoked_at IS NULL",
              1, params, lookup_done, l);
}

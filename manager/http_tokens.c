/* http_tokens: /v1/tokens (admin): create (the secret is answered once and
 * only its SHA-256 kept), list (never a secret), revoke and rotate (a new
 * secret; the old one stays valid for a grace period). Why SHA-256 and not a
 * slow KDF: the secret is 256 random bits, so no dictionary or brute force
 * applies to its hash, and a fast hash keeps the per-request check cheap. */
#include "http_internal.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"
#include <event2/buffer.h>

#define TOKEN_SCOPES_MAX 32
#define TOKEN_EXPIRES_MAX_S (10 * 366 * 86400.0)
#define TOKEN_GRACE_DEFAULT_S 3600
#define TOKEN_GRACE_MAX_S (30 * 86400.0)

/* What GET shows of a token; the secret and its hashes never. */
#define TOKEN_JSON                                                                                            \
    "json_build_object('name', name, 'role', role, 'queues', queues, 'apps', apps, 'created_at', created_at," \
    " 'created_by', created_by, 'expires_at', expires_at, 'revoked_at', revoked_at, 'rotated_at', rotated_at," \
    " 'previous_valid_until', prev_valid_until, 'state', CASE WHEN revoked_at IS NOT NULL THEN 'revoked'"   \
    " WHEN expires_at <= now() THEN 'expired' ELSE 'active' END)::text AS token"

/* A new secret and its SHA-256 in hex. */
static void token_new(char secret[64], char hash_hex[65])
{
    unsigned char raw[32], h[32];
    randombytes_buf(raw, sizeof raw);
    memcpy(secret, "dvs_", 4); /* NOLINT(bugprone-not-null-terminated-result): the base64 after it ends it */
    sodium_bin2base64(secret + 4, 60, raw, sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    crypto_hash_sha256(h, (const unsigned char *)secret, strlen(secret));
    sodium_bin2hex(hash_hex, 65, h, sizeof h);
    sodium_memzero(raw, sizeof raw);
}

/* The scope array of field as a PostgreSQL array literal (NULL when absent
 * or null: unscoped); -1 after answering 400. */
static int scope_param(struct op *o, json_t *body, const char *field, char **lit)
{
    json_t *v = json_object_get(body, field);
    *lit = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_array(v) || json_array_size(v) > TOKEN_SCOPES_MAX) {
        op_error(o, 400, "%s: must be an array of at most %d names", field, TOKEN_SCOPES_MAX);
        return -1;
    }
    pgarr_t *a = pgarr_new();
    size_t i;
    json_t *n;
    json_array_foreach(v, i, n)
    {
        if (!json_is_string(n) || !spec_queue_name_ok(json_string_value(n))) {
            free(pgarr_finish(a));
            op_error(o, 400, "%s[%zu]: must be 1 to 64 characters of [A-Za-z0-9_.-]", field, i);
            return -1;
        }
        pgarr_add(a, json_string_value(n));
    }
    *lit = pgarr_finish(a);
    return 0;
}

/* Answers with the token's JSON and, for create and rotate, the secret. */
static void token_answer(struct op *o, const PGresult *res, int status, const char *secret)
{
    json_t *t = json_loads(PQgetvalue(res, 0, PQfnumber(res, "token")), 0, NULL);
    if (t && secret)
        json_object_set_new(t, "token", json_string(secret));
    op_reply(o, status, t);
}

static void created(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct op *o = arg;
    if (!op_have_row(o, res, err, "a token named \"%s\" exists (revoke it to reuse the name)", o->arg))
        return;
    auth_forget_valid(o->q->api->auth);
    token_answer(o, res, 201, o->secret);
}

void tokens_create(struct req *q, const struct route_args *a)
{
    (void)a;
    json_t *body = req_body_json(q);
    if (!body)
        return;
    struct op *o = op_new(q, NULL);
    const char *name = json_string_value(json_object_get(body, "name"));
    const char *role = json_string_value(json_object_get(body, "role"));
    json_t *exp = json_object_get(body, "expires_s");
    char *queues = NULL, *apps = NULL;
    if (!name || !secret_name_ok(name)) {
        op_error(o, 400, "name: must be 1 to 64 characters of [A-Za-z0-9_.-]");
    } else if (!role || auth_role_parse(role) == ROLE_NONE) {
        op_error(o, 400, "role: must be viewer, operator or admin");
    } else if (exp && !json_is_null(exp) &&
               (!json_is_number(exp) || json_number_value(exp) <= 0 || json_number_value(exp) > TOKEN_EXPIRES_MAX_S)) {
        op_error(o, 400, "expires_s: must be a number of seconds from 1 to 10 years, or null");
    } else if (scope_param(o, body, "queues", &queues) == 0 && scope_param(o, body, "apps", &apps) == 0) {
        char hash[65], expires[32] = "";
        token_new(o->secret, hash);
        snprintf(o->arg, sizeof o->arg, "%s", name);
        if (exp && json_is_number(exp))
            snprintf(expires, sizeof expires, "%.0f", json_number_value(exp));
        const char *p[7] = {name, role, hash, queues, apps, expires[0] ? expires : NULL, q->actor};
        req_audit_note(q, name, json_pack("{s:s,s:s?,s:s?,s:s?}", "role", role, "queues", queues, "apps", apps,
                                          "expires_s", expires[0] ? expires : NULL));
        pgc_query(q->api->pg,
                  "INSERT INTO api_tokens AS t (name, role, token_hash, queues, apps, expires_at, created_by)"
                  " VALUES ($1, $2, $3, $4::text[], $5::text[], now() + make_interval(secs => $6::double precision),"
                  " $7) ON CONFLICT (name) DO UPDATE SET role = EXCLUDED.role, token_hash = EXCLUDED.token_hash,"
                  " queues = EXCLUDED.queues, apps = EXCLUDED.apps, expires_at = EXCLUDED.expires_at,"
                  " created_by = EXCLUDED.created_by, created_at = now(), revoked_at = NULL, prev_hash = NULL,"
                  " prev_valid_until = NULL, rotated_at = NULL WHERE t.revoked_at IS NOT NULL"
                  " RETURNING " TOKEN_JSON,
                  7, p, created, o);
    }
    free(queues);
    free(apps);
    json_decref(body);
}

static void listed(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct op *o = arg;
    if (!op_have_row(o, res, err, "no tokens"))
        return;
    op_reply(o, 200, json_pack("{s:o}", "tokens", json_loads(PQgetvalue(res, 0, 0), 0, NULL)));
}

void tokens_list(struct req *q, const struct route_args *a)
{
    (void)a;
    struct op *o = op_new(q, NULL);
    pgc_query(q->api->pg, "SELECT coalesce(json_agg(t.token::json ORDER BY t.id), '[]')::text FROM"
                          " (SELECT id, " TOKEN_JSON " FROM api_tokens) t",
              0, NULL, listed, o);
}

static void changed(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct op *o = arg;
    if (!op_have_row(o, res, err, "no active token named \"%s\"", o->arg))
        return;
    auth_forget_valid(o->q->api->auth);
    token_answer(o, res, 200, o->secret[0] ? o->secret : NULL);
}

void tokens_revoke(struct req *q, const struct route_args *a)
{
    struct op *o = op_new(q, NULL);
    snprintf(o->arg, sizeof o->arg, "%.63s", a->name);
    const char *p[1] = {a->name};
    pgc_query(q->api->pg,
              "UPDATE api_tokens SET revoked_at = now() WHERE name = $1 AND revoked_at IS NULL RETURNING " TOKEN_JSON,
              1, p, changed, o);
}

void tokens_rotate(struct req *q, const struct route_args *a)
{
    double grace = TOKEN_GRACE_DEFAULT_S;
    struct evbuffer *in = evhttp_request_get_input_buffer(q->r);
    if (evbuffer_get_length(in) > 0) {
        json_t *body = req_body_json(q);
        if (!body)
            return;
        json_t *g = json_object_get(body, "grace_s");
        if (g && (!json_is_number(g) || json_number_value(g) < 0 || json_number_value(g) > TOKEN_GRACE_MAX_S)) {
            json_decref(body);
            reply_error(q, 400, "grace_s: must be a number of seconds from 0 to 30 days");
            return;
        }
        if (g)
            grace = json_number_value(g);
        json_decref(body);
    }
    struct op *o = op_new(q, NULL);
    snprintf(o->arg, sizeof o->arg, "%.63s", a->name);
    char hash[65], gs[32];
    token_new(o->secret, hash);
    snprintf(gs, sizeof gs, "%.0f", grace);
    req_audit_note(q, a->name, json_pack("{s:s}", "grace_s", gs));
    const char *p[3] = {a->name, hash, gs};
    pgc_query(q->api->pg,
              "UPDATE api_tokens SET prev_hash = token_hash, token_hash = $2, rotated_at = now(),"
              " prev_valid_until = now() + make_interval(secs => $3::double precision)"
              " WHERE name = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())"
              " RETURNING " TOKEN_JSON,
              3, p, changed, o);
}

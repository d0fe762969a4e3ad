/* http_secrets: /v1/secrets (admin): set a secret (encrypted here with the
 * current DEVSYS_SECRET_KEY before it reaches PostgreSQL), list names and key
 * ids, remove. No route returns a value: agents read and decrypt them
 * themselves just before a task runs (common/secretdb.h). */
#include "http_internal.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

static void secret_done(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct op *o = arg;
    if (!op_have_row(o, res, err, "no secret named \"%s\"", o->arg))
        return;
    op_reply(o, 200, json_loads(PQgetvalue(res, 0, 0), 0, NULL));
}

#define SECRET_JSON "json_build_object('name', name, 'key_id', key_id, 'created_at', created_at," \
                    " 'updated_at', updated_at, 'updated_by', updated_by)::text"

void secrets_set(struct req *q, const struct route_args *a)
{
    (void)a;
    if (!q->api->secrets) {
        reply_error(q, 503, "secrets: the manager has no DEVSYS_SECRET_KEY (or DEVSYS_SECRET_KEY_FILE)");
        return;
    }
    json_t *body = req_body_json(q);
    if (!body)
        return;
    const char *name = json_string_value(json_object_get(body, "name"));
    json_t *v = json_object_get(body, "value");
    if (!name || !secret_name_ok(name)) {
        reply_error(q, 400, "name: must be 1 to 64 characters of [A-Za-z0-9_.-]");
    } else if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > SECRET_VALUE_MAX ||
               memchr(json_string_value(v), '\0', json_string_length(v))) {
        reply_error(q, 400, "value: must be a string of 1 to 65536 bytes without NUL");
    } else {
        struct op *o = op_new(q, NULL);
        snprintf(o->arg, sizeof o->arg, "%s", name);
        char nonce[49];
        char *ct = secretbox_seal(q->api->secrets, name, json_string_value(v), json_string_length(v), nonce);
        char *ctx = xasprintf("\\x%s", ct), *nx = xasprintf("\\x%s", nonce);
        const char *p[5] = {name, secretbox_key_id(q->api->secrets), nx, ctx, q->actor};
        req_audit_note(q, name, json_pack("{s:s}", "key_id", secretbox_key_id(q->api->secrets)));
        pgc_query(q->api->pg,
                  "INSERT INTO secrets (name, key_id, nonce, ciphertext, updated_by) VALUES ($1, $2, $3, $4, $5)"
                  " ON CONFLICT (name) DO UPDATE SET key_id = EXCLUDED.key_id, nonce = EXCLUDED.nonce,"
                  " ciphertext = EXCLUDED.ciphertext, updated_by = EXCLUDED.updated_by, updated_at = now()"
                  " RETURNING " SECRET_JSON,
                  5, p, secret_done, o);
        free(ct);
        free(ctx);
        free(nx);
    }
    /* the value leaves memory with the body */
    if (json_is_string(v))
        sodium_memzero((void *)json_string_value(v), json_string_length(v));
    json_decref(body);
}

void secrets_list(struct req *q, const struct route_args *a)
{
    (void)a;
    struct op *o = op_new(q, NULL);
    pgc_query(q->api->pg,
              "SELECT json_build_object('secrets', coalesce(json_agg(" SECRET_JSON "::json ORDER BY name), '[]'),"
              " 'key_id', $1::text)::text FROM secrets",
              1, (const char *[]){q->api->secrets ? secretbox_key_id(q->api->secrets) : NULL}, secret_done, o);
}

void secrets_delete(struct req *q, const struct route_args *a)
{
    struct op *o = op_new(q, NULL);
    snprintf(o->arg, sizeof o->arg, "%.63s", a->name);
    const char *p[1] = {a->name};
    pgc_query(q->api->pg, "DELETE FROM secrets WHERE name = $1 RETURNING " SECRET_JSON, 1, p, secret_done, o);
}

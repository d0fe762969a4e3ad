/* http_secrets: /v1/secrets (admin): set a secret (encrypted here with the
 * current DEVSYS_SECRET_KEY before it reaches PostgreSQL), list names and key
 * ids, remove. No route returns a value: agents read and decrypt them
 * themselves just before a task runs (common/secretdb.h). Rekey re-encrypts
 * the values still under an old key (DEVSYS_SECRET_KEYS_OLD) with the current one. */
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

/* ------------------------------------------------------------------ rekey */

static void rekeyed(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct op *o = arg;
    if (!op_have_row(o, res, err, "no row"))
        return;
    req_audit_note(o->q, NULL, json_pack("{s:I,s:s}", "rekeyed", (json_int_t)o->count, "key_id",
                                         secretbox_key_id(o->q->api->secrets)));
    op_reply(o, 200, json_pack("{s:I,s:s}", "rekeyed", (json_int_t)o->count, "key_id",
                               secretbox_key_id(o->q->api->secrets)));
}

/* Every row not under the current key: opened with its (old) key, sealed
 * again under the current one, written in one statement. */
static void rekey_read(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct op *o = arg;
    if (!res || err[0]) {
        op_db_error(o, err);
        return;
    }
    const secretbox_t *box = o->q->api->secrets;
    pgarr_t *names = pgarr_new(), *nonces = pgarr_new(), *cts = pgarr_new();
    char why[300] = "";
    for (int i = 0; i < PQntuples(res) && !why[0]; i++) {
        const char *name = PQgetvalue(res, i, PQfnumber(res, "name"));
        size_t vlen;
        char *v = secretbox_open(box, name, PQgetvalue(res, i, PQfnumber(res, "key_id")),
                                 PQgetvalue(res, i, PQfnumber(res, "nonce")),
                                 PQgetvalue(res, i, PQfnumber(res, "ciphertext")), &vlen, why, sizeof why);
        if (!v)
            break;
        char nonce[49];
        char *ct = secretbox_seal(box, name, v, vlen, nonce);
        sodium_memzero(v, vlen);
        free(v);
        char *ctx = xasprintf("\\x%s", ct), *nx = xasprintf("\\x%s", nonce);
        pgarr_add(names, name);
        pgarr_add(nonces, nx);
        pgarr_add(cts, ctx);
        free(ct);
        free(ctx);
        free(nx);
        o->count++;
    }
    char *ln = pgarr_finish(names), *lnon = pgarr_finish(nonces), *lct = pgarr_finish(cts);
    if (why[0]) {
        op_error(o, 409, "%s; nothing was re-encrypted", why);
    } else {
        const char *p[4] = {ln, secretbox_key_id(box), lnon, lct};
        pgc_query(o->q->api->pg,
                  "WITH u AS (UPDATE secrets s SET key_id = $2, nonce = n.nonce::bytea, ciphertext = n.ct::bytea,"
                  " updated_at = now() FROM unnest($1::text[], $3::text[], $4::text[]) AS n(name, nonce, ct)"
                  " WHERE s.name = n.name RETURNING 1) SELECT count(*) FROM u",
                  4, p, rekeyed, o);
    }
    free(ln);
    free(lnon);
    free(lct);
}

void secrets_rekey(struct req *q, const struct route_args *a)
{
    (void)a;
    if (!q->api->secrets) {
        reply_error(q, 503, "secrets: the manager has no DEVSYS_SECRET_KEY (or DEVSYS_SECRET_KEY_FILE)");
        return;
    }
    struct op *o = op_new(q, NULL);
    const char *p[1] = {secretbox_key_id(q->api->secrets)};
    pgc_query(q->api->pg,
              "SELECT name, key_id, encode(nonce, 'hex') AS nonce, encode(ciphertext, 'hex') AS ciphertext"
              " FROM secrets WHERE key_id <> $1 ORDER BY name",
              1, p, rekey_read, o);
}

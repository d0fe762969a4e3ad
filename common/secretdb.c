/* secretdb: secrets at rest (see secretdb.h). The box holds "<name>\0<value>",
 * so a row copied under another name fails to open. */
#include "secretdb.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "pgarr.h"
#include "xalloc.h"

#define KEYS_MAX 8

struct key {
    unsigned char k[crypto_secretbox_KEYBYTES];
    char id[17];
};

struct secretbox {
    struct key keys[KEYS_MAX]; /* [0] is the current key */
    int n;
};

int secret_name_ok(const char *name)
{
    size_t n = strlen(name);
    return n >= 1 && n <= 64 &&
           strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") == n;
}

static int key_parse(struct key *k, const char *hex, size_t len)
{
    size_t bin_len;
    if (len != 2 * crypto_secretbox_KEYBYTES ||
        sodium_hex2bin(k->k, sizeof k->k, hex, len, NULL, &bin_len, NULL) != 0 || bin_len != sizeof k->k)
        return -1;
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(h, k->k, sizeof k->k);
    sodium_bin2hex(k->id, sizeof k->id, h, 8);
    return 0;
}

int secretbox_from_env(secretbox_t **out, char *err, size_t errlen)
{
    *out = NULL;
    if (sodium_init() < 0) {
        snprintf(err, errlen, "libsodium: cannot initialize");
        return -1;
    }
    const char *cur = cfg_secret("DEVSYS_SECRET_KEY", NULL);
    if (!cur || !*cur)
        return 0;
    secretbox_t *b = xcalloc(1, sizeof *b);
    if (key_parse(&b->keys[0], cur, strlen(cur)) != 0) {
        snprintf(err, errlen, "DEVSYS_SECRET_KEY: must be 64 hex digits (32 bytes; openssl rand -hex 32)");
        goto fail;
    }
    b->n = 1;
    const char *old = cfg_str("DEVSYS_SECRET_KEYS_OLD", "");
    for (const char *p = old; *p;) {
        size_t m = strcspn(p, ", ");
        if (m) {
            if (b->n == KEYS_MAX || key_parse(&b->keys[b->n], p, m) != 0) {
                snprintf(err, errlen, "DEVSYS_SECRET_KEYS_OLD: a comma list of at most %d keys of 64 hex digits",
                         KEYS_MAX - 1);
                goto fail;
            }
            b->n++;
        }
        p += m + (p[m] != '\0');
    }
    *out = b;
    return 0;
fail:
    secretbox_free(b);
    return -1;
}

void secretbox_free(secretbox_t *b)
{
    if (!b)
        return;
    sodium_memzero(b, sizeof *b);
    free(b);
}

const char *secretbox_key_id(const secretbox_t *b)
{
    return b->keys[0].id;
}

char *secretbox_seal(const secretbox_t *b, const char *name, const char *value, size_t vlen, char nonce_hex[49])
{
    size_t nlen = strlen(name), plen = nlen + 1 + vlen;
    unsigned char *plain = xmalloc(plen), *ct = xmalloc(plen + crypto_secretbox_MACBYTES);
    memcpy(plain, name, nlen + 1);
    memcpy(plain + nlen + 1, value, vlen);
    unsigned char nonce[crypto_secretbox_NONCEBYTES];
    randombytes_buf(nonce, sizeof nonce);
    crypto_secretbox_easy(ct, plain, plen, nonce, b->keys[0].k);
    sodium_memzero(plain, plen);
    free(plain);
    sodium_bin2hex(nonce_hex, 49, nonce, sizeof nonce);
    size_t ctlen = plen + crypto_secretbox_MACBYTES;
    char *hex = xmalloc(2 * ctlen + 1);
    sodium_bin2hex(hex, 2 * ctlen + 1, ct, ctlen);
    free(ct);
    return hex;
}

char *secretbox_open(const secretbox_t *b, const char *name, const char *key_id, const char *nonce_hex,
                     const char *ct_hex, size_t *vlen, char *err, size_t errlen)
{
    const struct key *k = NULL;
    for (int i = 0; i < b->n && !k; i++)
        if (strcmp(b->keys[i].id, key_id) == 0)
            k = &b->keys[i];
    if (!k) {
        snprintf(err, errlen, "secret \"%s\": written under key %s, which is neither DEVSYS_SECRET_KEY nor in"
                 " DEVSYS_SECRET_KEYS_OLD", name, key_id);
        return NULL;
    }
    unsigned char nonce[crypto_secretbox_NONCEBYTES];
    size_t nl = 0, cl = 0, hl = strlen(ct_hex);
    unsigned char *ct = xmalloc(hl / 2 + 1);
    size_t nlen = strlen(name);
    char *out = NULL;
    if (sodium_hex2bin(nonce, sizeof nonce, nonce_hex, strlen(nonce_hex), NULL, &nl, NULL) != 0 ||
        nl != sizeof nonce || sodium_hex2bin(ct, hl / 2 + 1, ct_hex, hl, NULL, &cl, NULL) != 0 ||
        cl < crypto_secretbox_MACBYTES + nlen + 1) {
        snprintf(err, errlen, "secret \"%s\": malformed row", name);
        goto out;
    }
    size_t plen = cl - crypto_secretbox_MACBYTES;
    unsigned char *plain = xmalloc(plen + 1);
    if (crypto_secretbox_open_easy(plain, ct, cl, nonce, k->k) != 0 || memcmp(plain, name, nlen + 1) != 0) {
        snprintf(err, errlen, "secret \"%s\": does not decrypt with key %s (altered or moved)", name, key_id);
        sodium_memzero(plain, plen);
        free(plain);
        goto out;
    }
    *vlen = plen - nlen - 1;
    out = xmalloc(*vlen + 1);
    memcpy(out, plain + nlen + 1, *vlen);
    out[*vlen] = '\0';
    sodium_memzero(plain, plen);
    free(plain);
out:
    free(ct);
    return out;
}

/* ------------------------------------------------------------------ fetch */

struct fetch {
    const secretbox_t *box;
    json_t *names;
    secretdb_fetch_fn *fn;
    void *arg;
};

static void fetched(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct fetch *f = arg;
    char why[300] = "";
    json_t *values = json_object();
    if (err[0])
        snprintf(why, sizeof why, "secrets: database: %s", err);
    int c_name = res ? PQfnumber(res, "name") : -1, c_key = res ? PQfnumber(res, "key_id") : -1;
    int c_nonce = res ? PQfnumber(res, "nonce") : -1, c_ct = res ? PQfnumber(res, "ciphertext") : -1;
    for (int i = 0; !why[0] && i < PQntuples(res); i++) {
        size_t vlen;
        char *v = secretbox_open(f->box, PQgetvalue(res, i, c_name), PQgetvalue(res, i, c_key),
                                 PQgetvalue(res, i, c_nonce), PQgetvalue(res, i, c_ct), &vlen, why, sizeof why);
        if (v) {
            json_object_set_new(values, PQgetvalue(res, i, c_name), json_stringn_nocheck(v, vlen));
            sodium_memzero(v, vlen);
            free(v);
        }
    }
    size_t i;
    json_t *n;
    json_array_foreach(f->names, i, n)
    {
        if (!why[0] && !json_object_get(values, json_string_value(n)))
            snprintf(why, sizeof why, "secret \"%s\": no such secret", json_string_value(n));
    }
    if (why[0]) {
        json_decref(values);
        f->fn(NULL, why, f->arg);
    } else {
        f->fn(values, "", f->arg);
    }
    json_decref(f->names);
    free(f);
}

void secretdb_fetch(pgc_t *pg, const secretbox_t *b, const json_t *names, const char *actor, const char *task_id,
                    secretdb_fetch_fn *fn, void *arg)
{
    if (!b) {
        fn(NULL, "secrets: this agent has no DEVSYS_SECRET_KEY", arg);
        return;
    }
    struct fetch *f = xcalloc(1, sizeof *f);
    f->box = b;
    f->names = json_deep_copy(names);
    f->fn = fn;
    f->arg = arg;
    pgarr_t *a = pgarr_new();
    size_t i;
    json_t *n;
    json_array_foreach(names, i, n) pgarr_add(a, json_string_value(n));
    char *lit = pgarr_finish(a);
    const char *params[3] = {lit, actor, task_id};
    pgc_query(pg,
              "WITH used AS (INSERT INTO audit_log (actor, role, action, target, outcome, detail)"
              " VALUES ($2, 'agent', 'secret.use', array_to_string($1::text[], ','), 0,"
              " jsonb_build_object('task', $3::text)))"
              " SELECT name, key_id, encode(nonce, 'hex') AS nonce, encode(ciphertext, 'hex') AS ciphertext"
              " FROM secrets WHERE name = ANY($1::text[])",
              3, params, fetched, f);
    free(lit);
}

/* ui_session: sealed console session cookies and their CSRF tokens (see ui_session.h). */
#include "ui_session.h"

#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "xalloc.h"

#define SID_LEN 16
#define TOKEN_MAX 480
#define REVOKED_MAX 4096 /* signed-out sessions remembered; past it the one nearest its expiry goes */

struct revoked {
    unsigned char sid[SID_LEN];
    long long expires;
};

struct uisess {
    unsigned char key[crypto_secretbox_KEYBYTES];
    long ttl_s;
    int secure;
    struct revoked *rv;
    int nrv;
};

uisess_t *uisess_new(char *err, size_t errlen)
{
    if (sodium_init() < 0) {
        snprintf(err, errlen, "libsodium failed to initialise");
        return NULL;
    }
    uisess_t *s = xcalloc(1, sizeof *s);
    s->ttl_s = cfg_long("DEVSYS_UI_SESSION_TTL_S", 28800, 60, 30L * 86400);
    s->secure = (int)cfg_long("DEVSYS_UI_COOKIE_SECURE", 0, 0, 1);
    s->rv = xcalloc(REVOKED_MAX, sizeof *s->rv);
    const char *hex = cfg_secret("DEVSYS_UI_SESSION_KEY", NULL);
    size_t n = 0;
    if (!hex) {
        randombytes_buf(s->key, sizeof s->key);
    } else if (strlen(hex) != 2 * sizeof s->key ||
               sodium_hex2bin(s->key, sizeof s->key, hex, strlen(hex), NULL, &n, NULL) != 0 || n != sizeof s->key) {
        snprintf(err, errlen, "DEVSYS_UI_SESSION_KEY: must be 64 hex digits");
        uisess_free(s);
        return NULL;
    }
    return s;
}

void uisess_free(uisess_t *s)
{
    if (!s)
        return;
    sodium_memzero(s->key, sizeof s->key);
    free(s->rv);
    free(s);
}

long uisess_ttl_s(const uisess_t *s)
{
    return s->ttl_s;
}

int uisess_secure(const uisess_t *s)
{
    return s->secure;
}

static void csrf_of(const uisess_t *s, const unsigned char sid[SID_LEN], char csrf[UISESS_CSRF_LEN + 1])
{
    unsigned char mac[UISESS_CSRF_LEN / 2];
    crypto_generichash_state st;
    crypto_generichash_init(&st, s->key, sizeof s->key, sizeof mac);
    crypto_generichash_update(&st, (const unsigned char *)"csrf", 4);
    crypto_generichash_update(&st, sid, SID_LEN);
    crypto_generichash_final(&st, mac, sizeof mac);
    sodium_bin2hex(csrf, UISESS_CSRF_LEN + 1, mac, sizeof mac);
}

/* Plain text: expiry (8 bytes, big endian), session id, token. */
char *uisess_seal(const uisess_t *s, const char *token, char csrf[UISESS_CSRF_LEN + 1], long long *expires)
{
    size_t tlen = strlen(token);
    if (tlen == 0 || tlen > TOKEN_MAX)
        return NULL;
    unsigned char plain[8 + SID_LEN + TOKEN_MAX];
    long long exp = (long long)time(NULL) + s->ttl_s;
    for (int i = 0; i < 8; i++)
        plain[i] = (unsigned char)((uint64_t)exp >> (56 - 8 * i));
    randombytes_buf(plain + 8, SID_LEN);
    memcpy(plain + 8 + SID_LEN, token, tlen); /* NOLINT(bugprone-not-null-terminated-result): bytes, not a string */
    size_t plen = 8 + SID_LEN + tlen;
    unsigned char box[crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + sizeof plain];
    randombytes_buf(box, crypto_secretbox_NONCEBYTES);
    crypto_secretbox_easy(box + crypto_secretbox_NONCEBYTES, plain, plen, box, s->key);
    size_t blen = crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + plen;
    size_t cap = sodium_base64_ENCODED_LEN(blen, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    char *out = xmalloc(cap);
    sodium_bin2base64(out, cap, box, blen, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    csrf_of(s, plain + 8, csrf);
    *expires = exp;
    sodium_memzero(plain, sizeof plain);
    return out;
}

/* The plain text of value into plain (cap bytes); its length or -1. */
static long unseal(const uisess_t *s, const char *value, unsigned char *plain, size_t cap)
{
    unsigned char box[UISESS_VALUE_MAX];
    size_t blen = 0;
    if (strlen(value) >= UISESS_VALUE_MAX ||
        sodium_base642bin(box, sizeof box, value, strlen(value), NULL, &blen, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
        blen < crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + 8 + SID_LEN + 1)
        return -1;
    size_t plen = blen - crypto_secretbox_NONCEBYTES - crypto_secretbox_MACBYTES;
    if (plen > cap || crypto_secretbox_open_easy(plain, box + crypto_secretbox_NONCEBYTES,
                                                 blen - crypto_secretbox_NONCEBYTES, box, s->key) != 0)
        return -1;
    return (long)plen;
}

static long long expiry_of(const unsigned char *plain)
{
    uint64_t e = 0;
    for (int i = 0; i < 8; i++)
        e = e << 8 | plain[i];
    return (long long)e;
}

static int revoked(const uisess_t *s, const unsigned char *sid)
{
    for (int i = 0; i < s->nrv; i++)
        if (sodium_memcmp(s->rv[i].sid, sid, SID_LEN) == 0)
            return 1;
    return 0;
}

int uisess_open(const uisess_t *s, const char *value, struct uisess_open *out)
{
    unsigned char plain[8 + SID_LEN + TOKEN_MAX + 1];
    long plen = unseal(s, value, plain, sizeof plain - 1);
    if (plen < 0)
        return -1;
    long long exp = expiry_of(plain);
    int ok = exp > (long long)time(NULL) && !revoked(s, plain + 8);
    if (ok) {
        snprintf(out->bearer, sizeof out->bearer, "Bearer %.*s", (int)(plen - 8 - SID_LEN),
                 (const char *)plain + 8 + SID_LEN);
        csrf_of(s, plain + 8, out->csrf);
        out->expires = exp;
    }
    sodium_memzero(plain, sizeof plain);
    return ok ? 0 : -1;
}

void uisess_revoke(uisess_t *s, const char *value)
{
    unsigned char plain[8 + SID_LEN + TOKEN_MAX + 1];
    long plen = unseal(s, value, plain, sizeof plain - 1);
    if (plen < 0 || revoked(s, plain + 8))
        return;
    long long now = (long long)time(NULL);
    int j = 0; /* forget the expired ones first */
    for (int i = 0; i < s->nrv; i++)
        if (s->rv[i].expires > now)
            s->rv[j++] = s->rv[i];
    s->nrv = j;
    int slot = s->nrv;
    if (slot == REVOKED_MAX) {
        slot = 0;
        for (int i = 1; i < s->nrv; i++)
            if (s->rv[i].expires < s->rv[slot].expires)
                slot = i;
    } else {
        s->nrv++;
    }
    memcpy(s->rv[slot].sid, plain + 8, SID_LEN);
    s->rv[slot].expires = expiry_of(plain);
    sodium_memzero(plain, sizeof plain);
}

int uisess_cookie_value(const char *h, char *out, size_t cap)
{
    const size_t nlen = strlen(UISESS_COOKIE);
    for (const char *p = h; p && *p;) {
        while (*p == ' ' || *p == '\t' || *p == ';')
            p++;
        size_t n = strcspn(p, ";");
        if (n > nlen && strncmp(p, UISESS_COOKIE "=", nlen + 1) == 0) {
            size_t vlen = n - nlen - 1;
            while (vlen > 0 && (p[nlen + 1 + vlen - 1] == ' ' || p[nlen + 1 + vlen - 1] == '\t'))
                vlen--;
            if (vlen == 0 || vlen >= cap)
                return -1;
            memcpy(out, p + nlen + 1, vlen);
            out[vlen] = '\0';
            return 0;
        }
        p += n;
    }
    return -1;
}

int uisess_equal(const char *a, const char *b)
{
    size_t n = strlen(a);
    return n == strlen(b) && sodium_memcmp(a, b, n) == 0;
}

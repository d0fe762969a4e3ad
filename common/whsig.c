/* whsig: Standard Webhooks signing with libsodium's HMAC-SHA256 (see whsig.h).
 * The key bytes live on the stack only and are wiped after use. */
#include "whsig.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "xalloc.h"

#define KEY_MAX 64

/* Decodes the key of secret into key; its length, or -1. */
static int key_decode(const char *secret, unsigned char key[KEY_MAX])
{
    if (!secret)
        return -1;
    if (strncmp(secret, "whsec_", 6) == 0)
        secret += 6;
    size_t n = 0;
    if (sodium_base642bin(key, KEY_MAX, secret, strlen(secret), NULL, &n, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        n == 0)
        return -1;
    return (int)n;
}

int whsig_secret_ok(const char *secret)
{
    unsigned char key[KEY_MAX];
    int n = key_decode(secret, key);
    sodium_memzero(key, sizeof key);
    return n > 0;
}

int whsig_sign(const char *secret, const char *id, long long timestamp, const char *body, size_t len,
               char out[WHSIG_ONE_LEN])
{
    out[0] = '\0';
    unsigned char key[KEY_MAX], mac[crypto_auth_hmacsha256_BYTES];
    int n = key_decode(secret, key);
    if (n < 0) {
        sodium_memzero(key, sizeof key);
        return -1;
    }
    char ts[32];
    int tn = snprintf(ts, sizeof ts, ".%lld.", timestamp);
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, key, (size_t)n);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)id, strlen(id));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)ts, (unsigned long long)tn);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)body, len);
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_memzero(key, sizeof key);
    sodium_memzero(&st, sizeof st);
    memcpy(out, "v1,", 3);
    sodium_bin2base64(out + 3, WHSIG_ONE_LEN - 3, mac, sizeof mac, sodium_base64_VARIANT_ORIGINAL);
    return 0;
}

char *whsig_header(const char *const *secrets, size_t nsecrets, const char *id, long long timestamp,
                   const char *body, size_t len)
{
    char *h = xmalloc(nsecrets * WHSIG_ONE_LEN + 1);
    size_t used = 0;
    h[0] = '\0';
    for (size_t i = 0; i < nsecrets; i++) {
        char one[WHSIG_ONE_LEN];
        if (whsig_sign(secrets[i], id, timestamp, body, len, one) != 0)
            continue;
        used += (size_t)sprintf(h + used, "%s%s", used ? " " : "", one);
    }
    return h;
}

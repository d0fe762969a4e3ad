/* whsig: Standard Webhooks signatures (https://www.standardwebhooks.com):
 * webhook-signature "v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<body>")>",
 * the key being the base64 after "whsec_"; one signature per secret, space
 * separated, so a receiver that knows any of them (rotation) verifies. */
#ifndef DEVSYS_WHSIG_H
#define DEVSYS_WHSIG_H

#include <stddef.h>

#define WHSIG_ONE_LEN 48 /* "v1," + 44 base64 chars + NUL */

/* Is secret a usable "whsec_<base64>" (or bare base64) key of 1 to 64 bytes? */
int whsig_secret_ok(const char *secret);

/* Writes "v1,<base64>" for one secret into out. 0, or -1 when the secret
 * does not decode (out is then ""). */
int whsig_sign(const char *secret, const char *id, long long timestamp, const char *body, size_t len,
               char out[WHSIG_ONE_LEN]);

/* The header value for nsecrets secrets: their signatures, space separated.
 * Returns a malloc'd string (caller frees); secrets that do not decode are
 * skipped ("" when none does). */
char *whsig_header(const char *const *secrets, size_t nsecrets, const char *id, long long timestamp,
                   const char *body, size_t len);

#endif

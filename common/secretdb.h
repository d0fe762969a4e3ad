/* secretdb: secrets for tasks, encrypted at rest in the `secrets` table with
 * libsodium crypto_secretbox under a key from DEVSYS_SECRET_KEY (or
 * DEVSYS_SECRET_KEY_FILE), 64 hex digits; DEVSYS_SECRET_KEYS_OLD (comma list)
 * holds keys being rotated out, used to read only. Each row names its key's
 * id, so values written under an old key stay readable during a rotation. */
#ifndef DEVSYS_SECRETDB_H
#define DEVSYS_SECRETDB_H

#include <jansson.h>
#include <stddef.h>

#include "pgc.h"

#define SECRET_VALUE_MAX (64 * 1024)
#define SECRETS_PER_TASK_MAX 32

typedef struct secretbox secretbox_t;

/* Reads the keys from the environment. *out is NULL when no key is set
 * (secrets are then refused where they are needed). -1 with a message naming
 * the variable when a key is malformed. */
int secretbox_from_env(secretbox_t **out, char *err, size_t errlen);
void secretbox_free(secretbox_t *b);
/* The current key's id (16 hex digits; static storage of b). */
const char *secretbox_key_id(const secretbox_t *b);

/* Encrypts value (vlen bytes) for the secret name under the current key:
 * fills nonce_hex (49 bytes) and returns the ciphertext as hex (caller frees). */
char *secretbox_seal(const secretbox_t *b, const char *name, const char *value, size_t vlen, char nonce_hex[49]);
/* Decrypts a row; the value (NUL-terminated, *vlen bytes) or NULL with a
 * message. Caller frees (with sodium_free not needed: plain free). */
char *secretbox_open(const secretbox_t *b, const char *name, const char *key_id, const char *nonce_hex,
                     const char *ct_hex, size_t *vlen, char *err, size_t errlen);

/* Is name a valid secret name (1..64 of [A-Za-z0-9_.-])? */
int secret_name_ok(const char *name);

/* values: {"<secret name>": "<value>"} (a new reference) or NULL with err
 * naming what failed (no key, a missing secret, a value that does not
 * decrypt, PostgreSQL). Called once, from the loop. */
typedef void secretdb_fetch_fn(json_t *values, const char *err, void *arg);
/* Fetches and decrypts the secrets named in names (a JSON array of strings),
 * and records the read in audit_log in the same statement (actor, e.g.
 * "agent:a1", action secret.use, target the names, detail the task id). */
void secretdb_fetch(pgc_t *pg, const secretbox_t *b, const json_t *names, const char *actor, const char *task_id,
                    secretdb_fetch_fn *fn, void *arg);

#endif

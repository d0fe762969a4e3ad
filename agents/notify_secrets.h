/* notify_secrets: the webhook signing secrets an agent holds, by name, read
 * from the JSON file DEVSYS_NOTIFY_SECRETS_FILE ({"ops": ["whsec_new",
 * "whsec_old"], "team": "whsec_..."}: several per name while rotating).
 * Specs and PostgreSQL carry only the name. The file is read at each
 * delivery (a small local file), so a rotation needs no restart. */
#ifndef DEVSYS_NOTIFY_SECRETS_H
#define DEVSYS_NOTIFY_SECRETS_H

#include <stddef.h>

#define NOTIFY_SECRETS_FILE_MAX (64 * 1024)
#define NOTIFY_SECRETS_PER_NAME 8

typedef struct notify_secrets notify_secrets_t;

/* The secrets named name, or NULL with why (never quoting a secret): no
 * file configured, unreadable, not JSON, name absent, a value that is not
 * whsec_<base64>. Caller frees with notify_secrets_free (which wipes them). */
notify_secrets_t *notify_secrets_get(const char *name, char *why, size_t cap);
const char *const *notify_secrets_values(const notify_secrets_t *s);
size_t notify_secrets_count(const notify_secrets_t *s);
void notify_secrets_free(notify_secrets_t *s);

#endif

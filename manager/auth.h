/* auth: bearer tokens and roles. The admin token comes from DEVSYS_ADMIN_TOKEN;
 * other tokens live in api_tokens as SHA-256 hex digests. Lookups are async
 * (pgc) and cached for a short while so the request path stays cheap. */
#ifndef DEVSYS_AUTH_H
#define DEVSYS_AUTH_H

#include "pgc.h"

enum role { ROLE_NONE = 0, ROLE_VIEWER = 1, ROLE_OPERATOR = 2, ROLE_ADMIN = 3 };

/* actor names the caller for the audit log ("admin", "token:<name>"); valid
 * only during the call. role ROLE_NONE = not authenticated. */
typedef void auth_fn(enum role role, const char *actor, void *arg);
typedef struct auth auth_t;

/* admin_token may be NULL (then only api_tokens authenticate). Copied. */
auth_t *auth_new(pgc_t *pg, const char *admin_token);
void auth_free(auth_t *a);

/* header: the Authorization header value or NULL. Calls fn exactly once,
 * possibly before returning. */
void auth_check(auth_t *a, const char *header, auth_fn *fn, void *arg);

const char *auth_role_name(enum role r);

#endif

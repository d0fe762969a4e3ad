/* ui_session: the web console's sign-in sessions. A session is a cookie
 * holding the bearer token it was opened with, sealed (libsodium secretbox)
 * under a key of the manager, with its expiry and a random session id; each
 * request with it is checked as that token (same roles, scopes, audit actor).
 * Its CSRF token is derived from the session id, so the manager checks the
 * X-CSRF-Token of a mutating request without storing anything. */
#ifndef DEVSYS_UI_SESSION_H
#define DEVSYS_UI_SESSION_H

#include <stddef.h>

#define UISESS_COOKIE "devsys_session"
#define UISESS_VALUE_MAX 640 /* longest cookie value opened */
#define UISESS_CSRF_LEN 32   /* hex digits */
#define UISESS_BEARER_MAX 520

typedef struct uisess uisess_t;

/* What an open cookie says. */
struct uisess_open {
    char bearer[UISESS_BEARER_MAX];   /* "Bearer <token>" */
    char csrf[UISESS_CSRF_LEN + 1];
    long long expires;                /* epoch seconds */
};

/* Configured from the environment: DEVSYS_UI_SESSION_KEY (64 hex digits; when
 * unset a random key, so sessions end with the process and belong to one
 * manager), DEVSYS_UI_SESSION_TTL_S (28800), DEVSYS_UI_COOKIE_SECURE (0). NULL with err on a bad key. */
uisess_t *uisess_new(char *err, size_t errlen);
void uisess_free(uisess_t *s);
long uisess_ttl_s(const uisess_t *s);
/* DEVSYS_UI_COOKIE_SECURE=1: the cookie is always Secure (TLS in front of the
 * manager); else only for requests a proxy says came over https. */
int uisess_secure(const uisess_t *s);

/* Seals token (without "Bearer ") into a cookie value (caller frees) and
 * fills csrf and *expires. NULL for a token too long to seal. */
char *uisess_seal(const uisess_t *s, const char *token, char csrf[UISESS_CSRF_LEN + 1], long long *expires);
/* Opens the value of a session cookie: 0 and out filled when it is sealed by
 * this key, unexpired and not signed out; -1 otherwise. */
int uisess_open(const uisess_t *s, const char *value, struct uisess_open *out);
/* Signs the session of value out (until its expiry, on this manager). */
void uisess_revoke(uisess_t *s, const char *value);

/* The value of the devsys_session cookie in a Cookie header (or NULL) into
 * out; 0 when found and shorter than cap, else -1. */
int uisess_cookie_value(const char *cookie_header, char *out, size_t cap);
/* Is a equal to b (NUL-terminated) in time independent of where they differ? */
int uisess_equal(const char *a, const char *b);

#endif

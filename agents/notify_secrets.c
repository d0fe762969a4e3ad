/* notify_secrets: reads DEVSYS_NOTIFY_SECRETS_FILE (see notify_secrets.h).
 * Every buffer that held secret bytes is wiped before it is freed. */
#include "notify_secrets.h"

#include <errno.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "whsig.h"
#include "xalloc.h"

struct notify_secrets {
    size_t n;
    char *v[NOTIFY_SECRETS_PER_NAME];
};

static void wipe_free(char *s)
{
    if (!s)
        return;
    sodium_memzero(s, strlen(s));
    free(s);
}

/* The file's text (caller wipes and frees), or NULL with why. */
static char *file_read(const char *path, char *why, size_t cap)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(why, cap, "DEVSYS_NOTIFY_SECRETS_FILE %s: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = xmalloc(NOTIFY_SECRETS_FILE_MAX + 1);
    size_t n = fread(buf, 1, NOTIFY_SECRETS_FILE_MAX + 1, f);
    fclose(f);
    if (n > NOTIFY_SECRETS_FILE_MAX) {
        snprintf(why, cap, "DEVSYS_NOTIFY_SECRETS_FILE %s: over %d bytes", path, NOTIFY_SECRETS_FILE_MAX);
        sodium_memzero(buf, n);
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    return buf;
}

static int take(notify_secrets_t *s, const json_t *v)
{
    if (!json_is_string(v) || s->n >= NOTIFY_SECRETS_PER_NAME || !whsig_secret_ok(json_string_value(v)))
        return -1;
    s->v[s->n++] = xstrdup(json_string_value(v));
    return 0;
}

notify_secrets_t *notify_secrets_get(const char *name, char *why, size_t cap)
{
    const char *path = getenv("DEVSYS_NOTIFY_SECRETS_FILE");
    if (!path || !*path) {
        snprintf(why, cap, "secret \"%s\": this agent has no DEVSYS_NOTIFY_SECRETS_FILE", name);
        return NULL;
    }
    char *text = file_read(path, why, cap);
    if (!text)
        return NULL;
    json_error_t jerr;
    json_t *root = json_loads(text, 0, &jerr);
    sodium_memzero(text, strlen(text));
    free(text);
    notify_secrets_t *s = NULL;
    const json_t *v = json_is_object(root) ? json_object_get(root, name) : NULL;
    if (!json_is_object(root)) {
        /* jerr.text may quote the file: give the position only */
        snprintf(why, cap, "DEVSYS_NOTIFY_SECRETS_FILE %s: not a JSON object (line %d)", path, jerr.line);
    } else if (!v) {
        snprintf(why, cap, "secret \"%s\": not in DEVSYS_NOTIFY_SECRETS_FILE %s", name, path);
    } else {
        s = xcalloc(1, sizeof *s);
        int bad = 0;
        if (json_is_array(v) && json_array_size(v) > 0) {
            size_t i;
            const json_t *e;
            json_array_foreach(v, i, e) bad |= take(s, e);
        } else {
            bad = take(s, v);
        }
        if (bad) {
            snprintf(why, cap, "secret \"%s\" in %s: must be \"whsec_<base64>\" or an array of 1 to %d of them",
                     name, path, NOTIFY_SECRETS_PER_NAME);
            notify_secrets_free(s);
            s = NULL;
        }
    }
    json_decref(root); /* jansson's copies of the strings are not wiped: the loader owns them briefly */
    return s;
}

const char *const *notify_secrets_values(const notify_secrets_t *s)
{
    return (const char *const *)s->v;
}

size_t notify_secrets_count(const notify_secrets_t *s)
{
    return s->n;
}

void notify_secrets_free(notify_secrets_t *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        wipe_free(s->v[i]);
    free(s);
}

/* config: environment first, flags override (see config.h). */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "version.h"
#include "xalloc.h"

static void usage_exit(const struct cfg_flag *flags, const char *usage, int status)
{
    FILE *out = status ? stderr : stdout;
    fprintf(out, "%s\n\nflags (each overrides its environment variable):\n", usage);
    for (const struct cfg_flag *f = flags; f->name; f++)
        fprintf(out, "  --%-18s %-26s %s\n", f->name, f->env, f->help);
    fprintf(out, "  --%-18s %-26s %s\n", "version", "", "print the release this binary was built from");
    exit(status);
}

int cfg_flags(int argc, char **argv, const struct cfg_flag *flags, const char *usage)
{
    int i = 1;
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)
            usage_exit(flags, usage, 0);
        if (strcmp(a, "--version") == 0) {
            const char *slash = strrchr(argv[0], '/');
            printf("%s %s\n", slash ? slash + 1 : argv[0], devsys_version());
            exit(0);
        }
        if (strncmp(a, "--", 2) != 0)
            break;
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        const struct cfg_flag *f = flags;
        for (; f->name; f++)
            if (strlen(f->name) == nlen && strncmp(f->name, name, nlen) == 0)
                break;
        if (!f->name) {
            fprintf(stderr, "unknown flag: %s (see --help)\n", a);
            exit(2);
        }
        const char *val = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (!val) {
            fprintf(stderr, "flag --%s needs a value\n", f->name);
            exit(2);
        }
        setenv(f->env, val, 1);
        /* the flag overrides the credential file form too (cfg_secret) */
        char file_env[128];
        if (snprintf(file_env, sizeof file_env, "%s_FILE", f->env) < (int)sizeof file_env)
            unsetenv(file_env);
    }
    return i;
}

const char *cfg_str(const char *env, const char *def)
{
    const char *v = getenv(env);
    return v && *v ? v : def;
}

#define SECRET_FILE_MAX (64 * 1024)

/* Read values are kept for the process lifetime (callers hold the pointers). */
static char *secrets[8];

const char *cfg_secret(const char *env, const char *def)
{
    char file_env[128];
    snprintf(file_env, sizeof file_env, "%s_FILE", env);
    const char *v = getenv(env), *path = getenv(file_env);
    if (v && *v && path && *path) {
        fprintf(stderr, "%s and %s are both set: use one\n", env, file_env);
        exit(2);
    }
    if (!path || !*path)
        return v && *v ? v : def;
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "%s: cannot read %s: %s\n", file_env, path, strerror(errno));
        exit(2);
    }
    char *buf = xmalloc(SECRET_FILE_MAX + 2);
    size_t n = fread(buf, 1, SECRET_FILE_MAX + 1, f);
    int failed = ferror(f);
    fclose(f);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    const char *why = failed ? "read error" : n > SECRET_FILE_MAX ? "over 64 KiB" : n == 0 ? "empty" : NULL;
    if (why || memchr(buf, '\0', n)) {
        fprintf(stderr, "%s: %s: %s\n", file_env, path, why ? why : "contains a NUL byte");
        exit(2);
    }
    buf[n] = '\0';
    for (size_t i = 0; i < sizeof secrets / sizeof *secrets; i++) {
        if (!secrets[i]) {
            secrets[i] = buf;
            return buf;
        }
    }
    fprintf(stderr, "cfg_secret: too many credentials\n");
    abort();
}

long cfg_long(const char *env, long def, long min, long max)
{
    const char *v = getenv(env);
    if (!v || !*v)
        return def;
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || *end || n < min || n > max) {
        fprintf(stderr, "%s: must be an integer from %ld to %ld (got \"%s\")\n", env, min, max, v);
        exit(2);
    }
    return n;
}

double cfg_double(const char *env, double def, double min, double max)
{
    const char *v = getenv(env);
    if (!v || !*v)
        return def;
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (errno || *end || !isfinite(d) || d < min || d > max) {
        fprintf(stderr, "%s: must be a number from %g to %g (got \"%s\")\n", env, min, max, v);
        exit(2);
    }
    return d;
}

/* cron: parse cron expressions and intervals, and walk their ticks in a time
 * zone (see cron.h). Matching runs on wall-clock seconds (UTC arithmetic on
 * local times); a wall time is then mapped to an instant with the zone's
 * offsets, which is where DST gaps and repeats are decided. */
#include "cron.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "xalloc.h"

struct cron {
    uint64_t sec, min, hour, dom, mon, dow; /* bit i: value i matches */
    int dom_star, dow_star;                 /* the field starts with '*' (Vixie) */
    long every;                             /* > 0: a fixed interval in seconds */
    char tz[CRON_TZ_MAX];
};

/* ------------------------------------------------------------------ parse */

struct field {
    const char *name;
    int lo, hi;
    const char *const *names; /* names of lo, lo+1, ... (NULL: numbers only) */
};

static const char *const month_names[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                          "JUL", "AUG", "SEP", "OCT", "NOV", "DEC", NULL};
static const char *const day_names[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT", NULL};

enum { F_SEC, F_MIN, F_HOUR, F_DOM, F_MON, F_DOW };
static const struct field fields[] = {
    {"second", 0, 59, NULL},       {"minute", 0, 59, NULL},         {"hour", 0, 23, NULL},
    {"day-of-month", 1, 31, NULL}, {"month", 1, 12, month_names},   {"day-of-week", 0, 7, day_names},
};

/* One value of field f at *p (a number or a name); advances *p. */
static int parse_value(const struct field *f, const char **p, int *v, char *err, size_t errlen)
{
    const char *s = *p;
    if (isdigit((unsigned char)*s)) {
        long n = 0;
        while (isdigit((unsigned char)*s) && n < 1000)
            n = n * 10 + (*s++ - '0');
        if (n < f->lo || n > f->hi || isdigit((unsigned char)*s)) {
            snprintf(err, errlen, "%s: %.*s is out of range %d-%d", f->name, (int)strspn(*p, "0123456789"), *p,
                     f->lo, f->hi);
            return -1;
        }
        *v = (int)n;
        *p = s;
        return 0;
    }
    size_t n = 0;
    while (isalpha((unsigned char)s[n]))
        n++;
    if (n == 0) {
        snprintf(err, errlen, "%s: expected a number%s at \"%.20s\"", f->name, f->names ? " or a name" : "", s);
        return -1;
    }
    for (int i = 0; f->names && f->names[i]; i++)
        if (n == 3 && strncasecmp(s, f->names[i], 3) == 0) {
            *v = f->lo + i;
            *p = s + 3;
            return 0;
        }
    if (f->names)
        snprintf(err, errlen, "%s: unknown name \"%.*s\" (%s)", f->name, (int)(n > 20 ? 20 : n), s,
                 f->names == month_names ? "JAN..DEC" : "SUN..SAT");
    else
        snprintf(err, errlen, "%s: \"%.*s\" is not a number", f->name, (int)(n > 20 ? 20 : n), s);
    return -1;
}

/* One field's text (n bytes at s) into a bit set. */
static int parse_field(const struct field *f, const char *s, size_t n, uint64_t *bits, char *err, size_t errlen)
{
    char buf[CRON_EXPR_MAX];
    memcpy(buf, s, n);
    buf[n] = '\0';
    *bits = 0;
    char *save = NULL;
    if (buf[0] == ',' || buf[n - 1] == ',' || strstr(buf, ",,")) {
        snprintf(err, errlen, "%s: empty item in the list \"%s\"", f->name, buf);
        return -1;
    }
    for (char *item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        const char *p = item;
        int lo, hi, step = 1;
        if (*p == '*') {
            lo = f->lo;
            hi = f->hi;
            p++;
        } else {
            if (parse_value(f, &p, &lo, err, errlen) < 0)
                return -1;
            hi = lo;
            if (*p == '-') {
                p++;
                if (parse_value(f, &p, &hi, err, errlen) < 0)
                    return -1;
                if (hi < lo) {
                    snprintf(err, errlen, "%s: range %s starts after it ends", f->name, item);
                    return -1;
                }
            } else if (*p == '/') {
                hi = f->hi; /* "A/S": from A to the field's end */
            }
        }
        if (*p == '/') {
            p++;
            long st = 0;
            const char *d = p;
            while (isdigit((unsigned char)*p) && st < 1000)
                st = st * 10 + (*p++ - '0');
            if (p == d || st < 1 || st > f->hi - f->lo + 1 || isdigit((unsigned char)*p)) {
                snprintf(err, errlen, "%s: step \"%.10s\" must be from 1 to %d", f->name, d, f->hi - f->lo + 1);
                return -1;
            }
            step = (int)st;
        }
        if (*p) {
            snprintf(err, errlen, "%s: unexpected \"%.20s\" in \"%s\"", f->name, p, item);
            return -1;
        }
        for (int v = lo; v <= hi; v += step)
            *bits |= 1ULL << v;
    }
    return 0;
}

/* The days of each month in a leap year: a day-of-month no selected month
 * has would never fire. */
static const int month_days[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

static int check_reachable(const cron_t *c, char *err, size_t errlen)
{
    if (!c->dom_star && !c->dow_star)
        return 0; /* either matches: any day of the week fires */
    for (int m = 1; m <= 12; m++)
        if (c->mon & (1ULL << m))
            for (int d = 1; d <= month_days[m - 1]; d++)
                if (c->dom & (1ULL << d))
                    return 0;
    snprintf(err, errlen, "day-of-month: no selected month has any of the selected days, so it never fires");
    return -1;
}

static const struct {
    const char *name, *expr;
} macros[] = {
    {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"}, {"@weekly", "0 0 * * 0"},
    {"@daily", "0 0 * * *"},  {"@midnight", "0 0 * * *"}, {"@hourly", "0 * * * *"},
};

long cron_parse_every(const char *s, char *err, size_t errlen)
{
    long total = 0;
    const char *p = s;
    if (!*p) {
        snprintf(err, errlen, "every: empty interval (e.g. \"30s\", \"5m\", \"1h30m\")");
        return -1;
    }
    while (*p) {
        if (!isdigit((unsigned char)*p)) {
            snprintf(err, errlen, "every: expected a number at \"%.20s\" (e.g. \"30s\", \"5m\", \"1h30m\")", p);
            return -1;
        }
        long n = 0;
        while (isdigit((unsigned char)*p) && n <= CRON_EVERY_MAX)
            n = n * 10 + (*p++ - '0');
        long unit = *p == 's' ? 1 : *p == 'm' ? 60 : *p == 'h' ? 3600 : *p == 'd' ? 86400 : 0;
        if (!unit) {
            snprintf(err, errlen, "every: \"%.20s\": a number needs a unit s, m, h or d", s);
            return -1;
        }
        p++;
        if (n > CRON_EVERY_MAX || (total += n * unit) > CRON_EVERY_MAX) {
            snprintf(err, errlen, "every: \"%.20s\" is longer than 366 days", s);
            return -1;
        }
    }
    if (total < 1) {
        snprintf(err, errlen, "every: the interval must be at least 1s");
        return -1;
    }
    return total;
}

cron_t *cron_parse(const char *expr, const char *tz, char *err, size_t errlen)
{
    err[0] = '\0';
    if (!tz || !*tz)
        tz = "UTC";
    if (!cron_tz_valid(tz, err, errlen))
        return NULL;
    size_t len = strlen(expr);
    if (len == 0 || len >= CRON_EXPR_MAX) {
        snprintf(err, errlen, "cron: must be 1 to %d bytes", CRON_EXPR_MAX - 1);
        return NULL;
    }
    while (*expr == ' ' || *expr == '\t')
        expr++;
    cron_t *c = xcalloc(1, sizeof *c);
    snprintf(c->tz, sizeof c->tz, "%s", tz);
    if (strncmp(expr, "@every", 6) == 0 && (expr[6] == ' ' || expr[6] == '\t')) {
        const char *d = expr + 6;
        while (*d == ' ' || *d == '\t')
            d++;
        char buf[CRON_EXPR_MAX];
        snprintf(buf, sizeof buf, "%s", d);
        for (size_t n = strlen(buf); n && (buf[n - 1] == ' ' || buf[n - 1] == '\t'); n--)
            buf[n - 1] = '\0';
        if ((c->every = cron_parse_every(buf, err, errlen)) < 0)
            goto fail;
        return c;
    }
    if (expr[0] == '@') {
        size_t n = strcspn(expr, " \t");
        for (size_t i = 0; i < sizeof macros / sizeof *macros; i++)
            if (strlen(macros[i].name) == n && strncasecmp(expr, macros[i].name, n) == 0 && !expr[n + strspn(expr + n, " \t")]) {
                cron_free(c);
                return cron_parse(macros[i].expr, tz, err, errlen);
            }
        snprintf(err, errlen, "cron: unknown macro \"%.*s\" (@yearly, @monthly, @weekly, @daily, @hourly or "
                              "@every <interval>)", (int)(n > 20 ? 20 : n), expr);
        goto fail;
    }
    const char *start[7];
    size_t flen[7];
    int nf = 0;
    for (const char *p = expr; *p;) {
        p += strspn(p, " \t");
        if (!*p)
            break;
        size_t n = strcspn(p, " \t");
        if (nf < 7) {
            start[nf] = p;
            flen[nf] = n;
        }
        nf++;
        p += n;
    }
    if (nf != 5 && nf != 6) {
        snprintf(err, errlen, "cron: expected 5 fields (minute hour day-of-month month day-of-week) or 6 "
                              "(second first), got %d", nf);
        goto fail;
    }
    int first = nf == 5 ? F_MIN : F_SEC;
    uint64_t *dst[] = {&c->sec, &c->min, &c->hour, &c->dom, &c->mon, &c->dow};
    c->sec = 1; /* 5 fields: second 0 */
    for (int i = 0; i < nf; i++) {
        int f = first + i;
        if (parse_field(&fields[f], start[i], flen[i], dst[f], err, errlen) < 0)
            goto fail;
    }
    if (c->dow & (1ULL << 7))
        c->dow = (c->dow | 1) & 0x7f; /* 7 is Sunday too */
    c->dom_star = start[F_DOM - first][0] == '*';
    c->dow_star = start[F_DOW - first][0] == '*';
    if (check_reachable(c, err, errlen) < 0)
        goto fail;
    return c;
fail:
    cron_free(c);
    return NULL;
}

void cron_free(cron_t *c)
{
    free(c);
}

long cron_interval(const cron_t *c)
{
    return c->every;
}

int cron_tz_valid(const char *tz, char *err, size_t errlen)
{
    size_t n = strlen(tz);
    if (n == 0 || n >= CRON_TZ_MAX || tz[0] == '/' || tz[0] == '.' || strstr(tz, "..") ||
        strspn(tz, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/_+-") != n) {
        snprintf(err, errlen, "tz: \"%.64s\" is not a time zone name (like \"UTC\" or \"Europe/Berlin\")", tz);
        return 0;
    }
    const char *dir = getenv("TZDIR");
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir && *dir ? dir : "/usr/share/zoneinfo", tz);
    FILE *f = fopen(path, "rb");
    char magic[4] = {0};
    int ok = f && fread(magic, 1, 4, f) == 4 && memcmp(magic, "TZif", 4) == 0;
    if (f)
        fclose(f);
    if (!ok && strcmp(tz, "UTC") != 0) {
        snprintf(err, errlen, "tz: unknown time zone \"%s\" (not in the system tzdata)", tz);
        return 0;
    }
    return 1;
}

/* ------------------------------------------------------------ time zones */

/* The zone is process-global state (TZ + tzset): applied for one public
 * call and restored after it, so logs and other callers see the old one. */
struct tz_saved {
    char *old;
    int had;
};

static void tz_enter(const char *tz, struct tz_saved *s)
{
    const char *o = getenv("TZ");
    s->had = o != NULL;
    s->old = o ? xstrdup(o) : NULL;
    char v[CRON_TZ_MAX + 1];
    snprintf(v, sizeof v, ":%s", tz);
    setenv("TZ", v, 1);
    tzset();
}

static void tz_leave(struct tz_saved *s)
{
    if (s->had)
        setenv("TZ", s->old, 1);
    else
        unsetenv("TZ");
    tzset();
    free(s->old);
}

static long offset_at(time_t t)
{
    struct tm tm;
    if (!localtime_r(&t, &tm))
        return 0;
    return tm.tm_gmtoff;
}

/* The instant of wall time w (seconds, as if UTC) in the current zone: the
 * first of two when w happens twice, the jump itself when w is skipped. */
static time_t wall_to_utc(time_t w)
{
    long before = offset_at(w - 86400), after = offset_at(w + 86400);
    time_t best = -1;
    long cand[2] = {before, after};
    for (int i = 0; i < 2; i++) {
        time_t t = w - cand[i];
        if (offset_at(t) == cand[i] && (best < 0 || t < best))
            best = t;
    }
    if (best >= 0 || before >= after)
        return best >= 0 ? best : w - before;
    /* in a gap: the jump lies in (w - after, w - before]; find it */
    time_t lo = w - after, hi = w - before;
    while (hi - lo > 1) {
        time_t mid = lo + (hi - lo) / 2;
        if (offset_at(mid) == before)
            lo = mid;
        else
            hi = mid;
    }
    return hi;
}

/* ------------------------------------------------------------------ ticks */

static int day_matches(const cron_t *c, const struct tm *t)
{
    int dom = (c->dom >> t->tm_mday) & 1, dow = (c->dow >> t->tm_wday) & 1;
    if (c->dom_star || c->dow_star)
        return dom && dow;
    return dom || dow;
}

/* Sets t to the normalized time of its fields. */
static void tm_norm(struct tm *t)
{
    time_t x = timegm(t);
    gmtime_r(&x, t);
}

/* The first matching wall time after w, or -1 within 10 years. */
static time_t next_wall(const cron_t *c, time_t w)
{
    struct tm t;
    time_t x = w + 1;
    gmtime_r(&x, &t);
    int limit = t.tm_year + 10;
    while (t.tm_year <= limit) {
        if (!((c->mon >> (t.tm_mon + 1)) & 1)) {
            t.tm_mon++;
            t.tm_mday = 1;
            t.tm_hour = t.tm_min = t.tm_sec = 0;
        } else if (!day_matches(c, &t)) {
            t.tm_mday++;
            t.tm_hour = t.tm_min = t.tm_sec = 0;
        } else if (!((c->hour >> t.tm_hour) & 1)) {
            t.tm_hour++;
            t.tm_min = t.tm_sec = 0;
        } else if (!((c->min >> t.tm_min) & 1)) {
            t.tm_min++;
            t.tm_sec = 0;
        } else if (!((c->sec >> t.tm_sec) & 1)) {
            t.tm_sec++;
        } else {
            return timegm(&t);
        }
        tm_norm(&t);
    }
    return -1;
}

static time_t floor_div(time_t a, long b)
{
    return a >= 0 ? a / b : -((-a + b - 1) / b);
}

/* cron_next with the zone already applied. */
static time_t next_in_zone(const cron_t *c, time_t after)
{
    if (c->every)
        return (floor_div(after, c->every) + 1) * c->every;
    time_t w = after + offset_at(after);
    /* wall times of a repeated hour map to their first occurrence, at or
     * before `after` when we are in the second pass: walk past them */
    for (int i = 0; i < 200000; i++) {
        w = next_wall(c, w);
        if (w < 0)
            return -1;
        time_t t = wall_to_utc(w);
        if (t > after)
            return t;
    }
    return -1;
}

time_t cron_next(const cron_t *c, time_t after)
{
    if (c->every)
        return next_in_zone(c, after);
    struct tz_saved s;
    tz_enter(c->tz, &s);
    time_t t = next_in_zone(c, after);
    tz_leave(&s);
    return t;
}

int cron_walk(const cron_t *c, time_t from, time_t until, time_t *out, int cap, long *count, int *truncated,
              time_t *next)
{
    struct tz_saved s;
    if (!c->every)
        tz_enter(c->tz, &s);
    *count = 0;
    *truncated = 0;
    int n = 0, jumped = 0;
    long steps = 0;
    time_t t = from;
    while (t >= 0 && t <= until) {
        (*count)++;
        if (cap > 0) {
            if (n == cap) {
                memmove(out, out + 1, (size_t)(cap - 1) * sizeof *out);
                n--;
            }
            out[n++] = t;
        }
        if (++steps >= CRON_WALK_MAX && !jumped) {
            /* a dense schedule over a long span: go on from the last
             * CRON_WALK_MAX seconds (at most that many ticks), if it has one */
            jumped = *truncated = 1;
            time_t j = next_in_zone(c, until - CRON_WALK_MAX);
            if (j > t && j <= until) {
                t = j;
                continue;
            }
        } else if (steps >= 3L * CRON_WALK_MAX) {
            t = next_in_zone(c, until);
            break;
        }
        t = next_in_zone(c, t);
    }
    *next = t;
    if (!c->every)
        tz_leave(&s);
    return n;
}

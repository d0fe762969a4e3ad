/* regex_bound: the cost of an ERE from a spec, bounded (see regex_bound.h). */
#include "regex_bound.h"

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t sat_add(size_t a, size_t b, size_t cap)
{
    return a > cap || b > cap - a ? cap + 1 : a + b;
}

static size_t sat_mul(size_t a, size_t b, size_t cap)
{
    return a && b > cap / a ? cap + 1 : (a * b > cap ? cap + 1 : a * b);
}

/* One open group: the alternatives closed so far, the sequence before the
 * last element, and the last element (what a following repetition copies). */
struct frame {
    size_t alts, seq, last;
};

/* The index just past the bracket expression starting at p[i] == '[', or i+1
 * when it is not closed (regcomp refuses it later). */
static size_t bracket_end(const char *p, size_t i)
{
    size_t j = i + 1;
    if (p[j] == '^')
        j++;
    if (p[j] == ']')
        j++;
    for (; p[j]; j++) {
        if (p[j] == '[' && (p[j + 1] == ':' || p[j + 1] == '=' || p[j + 1] == '.')) {
            const char *close = strchr(p + j + 2, p[j + 1]);
            while (close && close[1] != ']')
                close = strchr(close + 1, p[j + 1]);
            if (!close)
                return i + 1;
            j = (size_t)(close - p) + 1;
        } else if (p[j] == ']') {
            return j + 1;
        }
    }
    return i + 1;
}

/* "{m}", "{m,}", "{m,n}" or "{,n}" at p[i]: how many copies regcomp makes of the
 * element before it (at least 1), and *end past the '}'; 0 when it is not an
 * interval (then '{' is an ordinary character or an error for regcomp). */
static size_t interval_copies(const char *p, size_t i, size_t *end)
{
    const char *s = p + i + 1;
    char *e;
    if (*s != ',' && (*s < '0' || *s > '9')) /* glibc takes "{,n}" as "{0,n}" */
        return 0;
    unsigned long m = strtoul(s, &e, 10), n = m; /* "{,": 0, e at the ',' */
    if (*e == ',') {
        if (e[1] >= '0' && e[1] <= '9')
            n = strtoul(e + 1, &e, 10);
        else {
            n = m + 1; /* {m,}: m copies and a star */
            e++;
        }
    }
    if (*e != '}')
        return 0;
    *end = (size_t)(e - p) + 1;
    unsigned long k = m > n ? m : n;
    return k ? k : 1;
}

size_t regex_nodes(const char *p, size_t cap)
{
    size_t len = strlen(p), depth = 0;
    struct frame *st = calloc(len + 2, sizeof *st); /* depth <= the number of '(' */
    if (!st)
        return cap + 1;
    struct frame *f = st;
    for (size_t i = 0; i < len;) {
        char c = p[i];
        size_t copies = 0, next = i + 1;
        if (c == '(') {
            f->seq = sat_add(f->seq, f->last, cap);
            f->last = 0;
            f = &st[++depth];
            *f = (struct frame){0, 0, 0};
        } else if (c == ')' && depth > 0) {
            size_t v = sat_add(f->alts, sat_add(f->seq, f->last, cap), cap);
            f = &st[--depth];
            f->last = sat_add(v, 1, cap);
        } else if (c == '|') {
            f->alts = sat_add(f->alts, sat_add(f->seq, f->last, cap), cap);
            f->seq = f->last = 0;
        } else if (c == '*' || c == '?') {
            f->last = sat_add(f->last, 1, cap);
        } else if (c == '+') {
            copies = 2;
        } else if (c == '{' && (copies = interval_copies(p, i, &next)) != 0) {
            /* counted repetition: copies set */
        } else {
            if (c == '[')
                next = bracket_end(p, i);
            else if (c == '\\' && p[i + 1])
                next = i + 2;
            f->seq = sat_add(f->seq, f->last, cap);
            f->last = 1;
        }
        if (copies)
            f->last = sat_add(sat_mul(f->last ? f->last : 1, copies, cap), 1, cap);
        i = next;
    }
    size_t total = 0;
    for (;;) { /* groups left open fold into their parent (regcomp refuses them) */
        total = sat_add(total, sat_add(f->alts, sat_add(f->seq, f->last, cap), cap), cap);
        if (depth == 0)
            break;
        f = &st[--depth];
    }
    free(st);
    return total;
}

int regex_check_ere(const char *p, char *why, size_t whylen)
{
    if (regex_nodes(p, REGEX_NODES_MAX) > REGEX_NODES_MAX) {
        snprintf(why, whylen, "repeats too much (stacked or nested repetitions expand past %d nodes)",
                 REGEX_NODES_MAX);
        return -1;
    }
    regex_t re;
    int rc = regcomp(&re, p, REG_EXTENDED | REG_NOSUB);
    if (rc != 0) {
        regerror(rc, &re, why, whylen);
        return -1;
    }
    regfree(&re);
    return 0;
}

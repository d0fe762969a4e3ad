/* entry_check: delayed members and dead letters (see entry_check.h). */
#include "entry_check.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (err && errlen)
        vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

static uint64_t read_be(const unsigned char *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* Reads one msgpack string (str or bin) header at p[*off] and returns its
 * body; -1 for any other type or a length past the end. */
static int read_string(const unsigned char *p, size_t len, size_t *off, const char **s, size_t *slen,
                       char *err, size_t errlen)
{
    size_t o = *off, hdr, n;
    unsigned char b = p[o];
    if ((b & 0xe0) == 0xa0) {
        hdr = 1;
        n = b & 0x1f;
    } else if (b == 0xd9 || b == 0xc4 || b == 0xda || b == 0xc5 || b == 0xdb || b == 0xc6) {
        hdr = b == 0xd9 || b == 0xc4 ? 2 : b == 0xda || b == 0xc5 ? 3 : 5;
        if (len - o < hdr)
            return fail(err, errlen, "delayed member: truncated string header at offset %zu", o);
        n = (size_t)read_be(p + o + 1, hdr - 1);
    } else {
        return fail(err, errlen, "delayed member: byte 0x%02x at offset %zu is not a string", b, o);
    }
    if (n > len - o - hdr)
        return fail(err, errlen, "delayed member: string length %zu at offset %zu exceeds the %zu bytes left", n,
                    o, len - o - hdr);
    *s = (const char *)p + o + hdr;
    *slen = n;
    *off = o + hdr + n;
    return 0;
}

int entry_check_delayed(const char *buf, size_t len, envelope_field_t *fields, size_t *nfields, char *err,
                        size_t errlen)
{
    const unsigned char *p = (const unsigned char *)buf;
    size_t n, off;
    *nfields = 0;
    if (len == 0)
        return fail(err, errlen, "delayed member: empty");
    if ((p[0] & 0xf0) == 0x90) {
        n = p[0] & 0x0f;
        off = 1;
    } else if (p[0] == 0xdc || p[0] == 0xdd) {
        off = p[0] == 0xdc ? 3 : 5;
        if (len < off)
            return fail(err, errlen, "delayed member: truncated array header");
        n = (size_t)read_be(p + 1, off - 1);
    } else {
        return fail(err, errlen, "delayed member: not a msgpack array (first byte 0x%02x)", p[0]);
    }
    if (n < 2 || n > ENTRY_MAX_STRINGS || n % 2)
        return fail(err, errlen, "delayed member: %zu strings, expected an even number from 2 to %d", n,
                    ENTRY_MAX_STRINGS);
    for (size_t i = 0; i < n; i++) {
        if (off >= len)
            return fail(err, errlen, "delayed member: %zu of %zu strings present", i, n);
        envelope_field_t *f = &fields[i / 2];
        if (i % 2 == 0 ? read_string(p, len, &off, &f->name, &f->name_len, err, errlen)
                       : read_string(p, len, &off, &f->val, &f->val_len, err, errlen))
            return -1;
    }
    if (off != len)
        return fail(err, errlen, "delayed member: %zu trailing bytes after the array", len - off);
    int have_id = 0, have_spec = 0;
    for (size_t i = 0; i < n / 2; i++) {
        have_id |= fields[i].name_len == 2 && memcmp(fields[i].name, "id", 2) == 0;
        have_spec |= fields[i].name_len == 4 && memcmp(fields[i].name, "spec", 4) == 0;
    }
    if (!have_id)
        return fail(err, errlen, "delayed member: no id field");
    if (!have_spec)
        return fail(err, errlen, "delayed member: no spec field");
    *nfields = n / 2;
    return 0;
}

json_t *entry_dlq_json(const queue_entry_t *e)
{
    if (!e || e->deleted)
        return NULL;
    char *id = utf8_sanitize(e->id, e->id_len);
    json_t *j = json_pack("{s:s}", "entry_id", id);
    free(id);
    for (size_t i = 0; i < e->nfields; i++) {
        const envelope_field_t *f = &e->fields[i];
        char *ks = utf8_sanitize(f->name, f->name_len), *vs = utf8_sanitize(f->val, f->val_len);
        if (strcmp(ks, "entry_id") != 0)
            json_object_set_new(j, ks, json_string(vs));
        free(ks);
        free(vs);
    }
    return j;
}

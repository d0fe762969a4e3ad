/* mpack: JSON <-> msgpack for task specs (see mpack.h). Decoding is two
 * passes: a walk that checks every header against the bytes left and the
 * limits without allocating, then a conversion that can trust the structure. */
#include "mpack.h"

#include <math.h>
#include <msgpack.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t errlen, const char *fmt,
                                                      ...)
{
    if (!err || errlen == 0)
        return -1;
    int n = snprintf(err, errlen, "msgpack: ");
    if (n >= 0 && (size_t)n < errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* ---- encoding --------------------------------------------------------------- */

/* depth counts the containers enclosing j plus one, as in the decoder. */
static int pack_json(msgpack_packer *pk, const json_t *j, int depth)
{
    int rc = 0;
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        if (depth > MPACK_MAX_DEPTH)
            return -1;
        const char *k;
        size_t klen;
        json_t *v;
        rc |= msgpack_pack_map(pk, json_object_size(j));
        json_object_keylen_foreach((json_t *)j, k, klen, v)
        {
            rc |= msgpack_pack_str(pk, klen);
            rc |= msgpack_pack_str_body(pk, k, klen);
            if (pack_json(pk, v, depth + 1) < 0)
                return -1;
        }
        break;
    }
    case JSON_ARRAY: {
        if (depth > MPACK_MAX_DEPTH)
            return -1;
        size_t i;
        json_t *v;
        rc |= msgpack_pack_array(pk, json_array_size(j));
        json_array_foreach(j, i, v)
        {
            if (pack_json(pk, v, depth + 1) < 0)
                return -1;
        }
        break;
    }
    case JSON_STRING:
        rc |= msgpack_pack_str(pk, json_string_length(j));
        rc |= msgpack_pack_str_body(pk, json_string_value(j), json_string_length(j));
        break;
    case JSON_INTEGER:
        rc |= msgpack_pack_int64(pk, (int64_t)json_integer_value(j));
        break;
    case JSON_REAL:
        rc |= msgpack_pack_double(pk, json_real_value(j));
        break;
    case JSON_TRUE:
        rc |= msgpack_pack_true(pk);
        break;
    case JSON_FALSE:
        rc |= msgpack_pack_false(pk);
        break;
    case JSON_NULL:
        rc |= msgpack_pack_nil(pk);
        break;
    }
    /* The sbuffer only fails when realloc does: out of memory aborts, as
     * everywhere in devsys. */
    if (rc != 0)
        abort();
    return 0;
}

char *mpack_from_json(const json_t *j, size_t *len)
{
    if (!j)
        return NULL;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    if (pack_json(&pk, j, 1) < 0) {
        msgpack_sbuffer_destroy(&sb);
        return NULL;
    }
    *len = sb.size;
    return msgpack_sbuffer_release(&sb);
}

/* Header sizes as msgpack-c writes them (smallest form, str8 included). */
static size_t str_header(size_t n)
{
    return n <= 31 ? 1 : n <= 0xff ? 2 : n <= 0xffff ? 3 : 5;
}

static size_t container_header(size_t n)
{
    return n <= 15 ? 1 : n <= 0xffff ? 3 : 5;
}

static size_t int_size(json_int_t v)
{
    if (v >= -32 && v <= 127)
        return 1;
    if (v >= INT8_MIN && v <= UINT8_MAX)
        return 2;
    if (v >= INT16_MIN && v <= UINT16_MAX)
        return 3;
    if (v >= INT32_MIN && v <= (json_int_t)UINT32_MAX)
        return 5;
    return 9;
}

static int measure(const json_t *j, int depth, size_t *bytes, size_t *items)
{
    (*items)++;
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        if (depth > MPACK_MAX_DEPTH)
            return -1;
        const char *k;
        size_t klen;
        json_t *v;
        *bytes += container_header(json_object_size(j));
        json_object_keylen_foreach((json_t *)j, k, klen, v)
        {
            (void)k;
            (*items)++;
            *bytes += str_header(klen) + klen;
            if (measure(v, depth + 1, bytes, items) < 0)
                return -1;
        }
        return 0;
    }
    case JSON_ARRAY: {
        if (depth > MPACK_MAX_DEPTH)
            return -1;
        size_t i;
        json_t *v;
        *bytes += container_header(json_array_size(j));
        json_array_foreach(j, i, v)
        {
            if (measure(v, depth + 1, bytes, items) < 0)
                return -1;
        }
        return 0;
    }
    case JSON_STRING:
        *bytes += str_header(json_string_length(j)) + json_string_length(j);
        return 0;
    case JSON_INTEGER:
        *bytes += int_size(json_integer_value(j));
        return 0;
    case JSON_REAL:
        *bytes += 9;
        return 0;
    default:
        *bytes += 1;
        return 0;
    }
}

int mpack_measure(const json_t *j, size_t *bytes, size_t *items)
{
    *bytes = 0;
    *items = 0;
    return j ? measure(j, 1, bytes, items) : -1;
}

/* ---- validating walk -------------------------------------------------------- */

static uint64_t read_be(const unsigned char *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

static double read_float(const unsigned char *p, int is_double)
{
    if (is_double) {
        uint64_t u = read_be(p, 8);
        double d;
        memcpy(&d, &u, sizeof d);
        return d;
    }
    uint32_t u = (uint32_t)read_be(p, 4);
    float f;
    memcpy(&f, &u, sizeof f);
    return (double)f;
}

enum hdr_kind { H_SCALAR, H_STR, H_ARRAY, H_MAP };

/* Decodes the header of the value at p[off] (bounds already checked for the
 * type byte). Sets *kind, *n (string bytes or element count) and *hlen (header
 * bytes, including the payload of fixed-size scalars). Returns -1 with a
 * message for types JSON cannot carry or a header cut short. */
static int read_header(const unsigned char *p, size_t len, size_t off, enum hdr_kind *kind,
                       uint64_t *n, size_t *hlen, char *err, size_t errlen)
{
    unsigned t = p[off];
    size_t extra = 0; /* bytes after the type byte that belong to the header */
    *kind = H_SCALAR;
    *n = 0;
    *hlen = 0;
    if (t <= 0x7f || t >= 0xe0) {
        extra = 0;
    } else if (t <= 0x8f) {
        *kind = H_MAP;
        *n = t & 0x0f;
    } else if (t <= 0x9f) {
        *kind = H_ARRAY;
        *n = t & 0x0f;
    } else if (t <= 0xbf) {
        *kind = H_STR;
        *n = t & 0x1f;
    } else {
        switch (t) {
        case 0xc0: case 0xc2: case 0xc3: break;
        case 0xc1: return fail(err, errlen, "invalid type byte 0xc1 at offset %zu", off);
        case 0xc4: case 0xc5: case 0xc6:
            return fail(err, errlen, "bin type 0x%02x at offset %zu is not supported", t, off);
        case 0xc7: case 0xc8: case 0xc9: case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8:
            return fail(err, errlen, "ext type 0x%02x at offset %zu is not supported", t, off);
        case 0xca: extra = 4; break;
        case 0xcb: extra = 8; break;
        case 0xcc: case 0xd0: extra = 1; break;
        case 0xcd: case 0xd1: extra = 2; break;
        case 0xce: case 0xd2: extra = 4; break;
        case 0xcf: case 0xd3: extra = 8; break;
        case 0xd9: *kind = H_STR; extra = 1; break;
        case 0xda: *kind = H_STR; extra = 2; break;
        case 0xdb: *kind = H_STR; extra = 4; break;
        case 0xdc: *kind = H_ARRAY; extra = 2; break;
        case 0xdd: *kind = H_ARRAY; extra = 4; break;
        case 0xde: *kind = H_MAP; extra = 2; break;
        case 0xdf: *kind = H_MAP; extra = 4; break;
        }
    }
    if (extra > len - off - 1)
        return fail(err, errlen, "truncated at offset %zu: type 0x%02x needs %zu more bytes, %zu left",
                    off, t, extra, len - off - 1);
    *hlen = 1 + extra;
    if (*kind != H_SCALAR && extra > 0)
        *n = read_be(p + off + 1, extra);
    if (t == 0xcf && read_be(p + off + 1, 8) > INT64_MAX)
        return fail(err, errlen, "unsigned integer at offset %zu exceeds the signed 64-bit range", off);
    if ((t == 0xca || t == 0xcb) && !isfinite(read_float(p + off + 1, t == 0xcb)))
        return fail(err, errlen, "float at offset %zu is NaN or infinite (not representable in JSON)",
                    off);
    return 0;
}

/* Walks one value from p[0] with an explicit stack (no recursion on untrusted
 * depth) and checks every limit; allocates nothing. */
static int walk(const unsigned char *p, size_t len, char *err, size_t errlen)
{
    uint64_t left[MPACK_MAX_DEPTH + 1]; /* values still expected at each level */
    unsigned char in_map[MPACK_MAX_DEPTH + 1];
    int depth = 0;
    size_t off = 0, items = 0;
    left[0] = 1; /* level 0 is the single root slot */
    in_map[0] = 0;
    for (;;) {
        while (depth > 0 && left[depth] == 0)
            depth--;
        if (left[depth] == 0)
            break;
        int want_key = in_map[depth] && left[depth] % 2 == 0;
        left[depth]--;
        if (off >= len)
            return fail(err, errlen, "truncated at offset %zu: a value is missing", off);
        if (++items > MPACK_MAX_ITEMS)
            return fail(err, errlen, "more than %d values (at offset %zu)", MPACK_MAX_ITEMS, off);

        enum hdr_kind kind;
        uint64_t n;
        size_t hlen, at = off;
        if (read_header(p, len, off, &kind, &n, &hlen, err, errlen) < 0)
            return -1;
        if (want_key && kind != H_STR)
            return fail(err, errlen, "map key at offset %zu is not a string", at);
        off += hlen;
        size_t rest = len - off;
        switch (kind) {
        case H_SCALAR:
            break;
        case H_STR:
            if (n > rest)
                return fail(err, errlen,
                            "string length %llu at offset %zu exceeds the %zu bytes left",
                            (unsigned long long)n, at, rest);
            off += (size_t)n;
            break;
        case H_ARRAY:
        case H_MAP:
            /* Every element takes at least one byte: a count larger than
             * what is left is a lie, caught before anything trusts it. */
            if (kind == H_ARRAY ? n > rest : n > rest / 2)
                return fail(err, errlen, "%s of %llu %s at offset %zu needs at least %llu bytes, %zu left",
                            kind == H_ARRAY ? "array" : "map", (unsigned long long)n,
                            kind == H_ARRAY ? "elements" : "pairs", at,
                            (unsigned long long)(kind == H_ARRAY ? n : 2 * n), rest);
            if (depth + 1 > MPACK_MAX_DEPTH)
                return fail(err, errlen, "nesting deeper than %d levels at offset %zu",
                            MPACK_MAX_DEPTH, at);
            if (n > 0) {
                depth++;
                left[depth] = kind == H_MAP ? 2 * n : n;
                in_map[depth] = kind == H_MAP;
            }
            break;
        }
    }
    if (off != len)
        return fail(err, errlen, "%zu trailing bytes after the value, at offset %zu", len - off, off);
    return 0;
}

/* ---- conversion of a walked message ----------------------------------------- */

/* Only called on bytes that walk() accepted, so headers and lengths are in
 * bounds and the depth is at most MPACK_MAX_DEPTH. What is left to reject is
 * content: UTF-8, NUL bytes, duplicate keys. */
static json_t *convert(const unsigned char *p, size_t len, size_t *off, char *err, size_t errlen)
{
    enum hdr_kind kind;
    uint64_t n;
    size_t hlen, at = *off;
    if (read_header(p, len, at, &kind, &n, &hlen, err, errlen) < 0)
        return NULL;
    *off += hlen;
    unsigned t = p[at];
    const unsigned char *q = p + at + 1;

    if (kind == H_STR) {
        const char *s = (const char *)p + *off;
        *off += (size_t)n;
        if (memchr(s, 0, (size_t)n)) {
            fail(err, errlen, "string at offset %zu contains a NUL byte", at);
            return NULL;
        }
        json_t *j = json_stringn(s, (size_t)n);
        if (!j)
            fail(err, errlen, "string at offset %zu is not valid UTF-8", at);
        return j;
    }
    if (kind == H_ARRAY) {
        json_t *a = json_array();
        for (uint64_t i = 0; i < n; i++) {
            json_t *v = convert(p, len, off, err, errlen);
            if (!v || json_array_append_new(a, v) < 0)
                goto fail_container;
        }
        return a;
fail_container:
        json_decref(a);
        return NULL;
    }
    if (kind == H_MAP) {
        json_t *o = json_object();
        for (uint64_t i = 0; i < n; i++) {
            size_t kat = *off;
            enum hdr_kind kk;
            uint64_t klen;
            size_t khlen;
            if (read_header(p, len, kat, &kk, &klen, &khlen, err, errlen) < 0)
                goto fail_map;
            const char *k = (const char *)p + kat + khlen;
            *off = kat + khlen + (size_t)klen;
            if (memchr(k, 0, (size_t)klen)) {
                fail(err, errlen, "map key at offset %zu contains a NUL byte", kat);
                goto fail_map;
            }
            if (json_object_getn(o, k, (size_t)klen)) {
                fail(err, errlen, "duplicate map key \"%.*s\" at offset %zu",
                     klen > 40 ? 40 : (int)klen, k, kat);
                goto fail_map;
            }
            json_t *v = convert(p, len, off, err, errlen);
            if (!v)
                goto fail_map;
            if (json_object_setn_new(o, k, (size_t)klen, v) < 0) { /* steals v even on error */
                fail(err, errlen, "map key at offset %zu is not valid UTF-8", kat);
                goto fail_map;
            }
        }
        return o;
fail_map:
        json_decref(o);
        return NULL;
    }

    if (t <= 0x7f)
        return json_integer((json_int_t)t);
    if (t >= 0xe0)
        return json_integer((json_int_t)(int8_t)t);
    switch (t) {
    case 0xc0: return json_null();
    case 0xc2: return json_false();
    case 0xc3: return json_true();
    case 0xca: return json_real(read_float(q, 0));
    case 0xcb: return json_real(read_float(q, 1));
    case 0xcc: case 0xcd: case 0xce: case 0xcf:
        return json_integer((json_int_t)read_be(q, hlen - 1));
    case 0xd0: return json_integer((int8_t)read_be(q, 1));
    case 0xd1: return json_integer((int16_t)read_be(q, 2));
    case 0xd2: return json_integer((int32_t)read_be(q, 4));
    case 0xd3: return json_integer((json_int_t)(int64_t)read_be(q, 8));
    }
    fail(err, errlen, "unexpected type byte 0x%02x at offset %zu", t, at);
    return NULL;
}

json_t *mpack_to_json(const char *buf, size_t len, char *err, size_t errlen)
{
    if (!buf || len == 0) {
        fail(err, errlen, "empty input");
        return NULL;
    }
    if (len > MPACK_MAX_BYTES) {
        fail(err, errlen, "%zu bytes exceeds the limit of %d", len, MPACK_MAX_BYTES);
        return NULL;
    }
    const unsigned char *p = (const unsigned char *)buf;
    if (walk(p, len, err, errlen) < 0)
        return NULL;
    size_t off = 0;
    return convert(p, len, &off, err, errlen);
}

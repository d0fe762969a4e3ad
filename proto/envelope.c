/* envelope: decode and encode the task envelope on a queue stream (see
 * envelope.h), plus task ids: random UUIDv7 for new tasks and a derived,
 * deterministic UUIDv8 for entries pushed by hand without an id. */
#include "envelope.h"

#include "mpack.h"
#include "spec.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define ENVELOPE_MAX_ENTRY_FIELDS 64 /* unknown fields are skipped, up to this many */
#define ENVELOPE_MAX_NAME 256

__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t errlen, const char *fmt,
                                                      ...)
{
    if (err && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* ---- UUIDs --------------------------------------------------------------------- */

static void uuid_format(const unsigned char b[16], char out[37])
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 0x0f];
    }
    out[o] = '\0';
}

int uuid_valid(const char *s, size_t len)
{
    if (!s || len != 36)
        return 0;
    for (size_t i = 0; i < 36; i++) {
        char c = s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-')
                return 0;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
            return 0;
        }
    }
    return 1;
}

void uuid_v7(char out[37])
{
    unsigned char b[16];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
    for (int i = 0; i < 6; i++)
        b[i] = (unsigned char)(ms >> (40 - 8 * i));
    size_t got = 0;
    while (got < 10) {
        ssize_t n = getrandom(b + 6 + got, 10 - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        /* Without the kernel's generator ids could collide across agents:
         * better to stop than to corrupt task identity. */
        if (n <= 0)
            abort();
        got += (size_t)n;
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x70);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    uuid_format(b, out);
}

/* SHA-256 (FIPS 180-4), used only to derive ids: a standard hash keeps the
 * derived id reproducible by any tool (see envelope_derive_id). */
struct sha256 {
    uint32_t h[8];
    unsigned char buf[64];
    size_t nbuf;
    uint64_t total;
};

static const uint32_t sha256_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

static uint32_t ror(uint32_t x, int n)
{
    return (x >> n) | (x << (32 - n));
}

static void sha256_block(struct sha256 *c, const unsigned char *p)
{
    uint32_t w[64], s[8];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ror(w[i - 15], 7) ^ ror(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ror(w[i - 2], 17) ^ ror(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    memcpy(s, c->h, sizeof s);
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = s[7] + (ror(s[4], 6) ^ ror(s[4], 11) ^ ror(s[4], 25)) +
                      ((s[4] & s[5]) ^ (~s[4] & s[6])) + sha256_k[i] + w[i];
        uint32_t t2 = (ror(s[0], 2) ^ ror(s[0], 13) ^ ror(s[0], 22)) +
                      ((s[0] & s[1]) ^ (s[0] & s[2]) ^ (s[1] & s[2]));
        memmove(s + 1, s, 7 * sizeof s[0]);
        s[4] += t1;
        s[0] = t1 + t2;
    }
    for (int i = 0; i < 8; i++)
        c->h[i] += s[i];
}

static void sha256_init(struct sha256 *c)
{
    static const uint32_t h0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(c->h, h0, sizeof h0);
    c->nbuf = 0;
    c->total = 0;
}

static void sha256_update(struct sha256 *c, const void *data, size_t n)
{
    const unsigned char *p = data;
    c->total += n;
    while (n > 0) {
        size_t take = 64 - c->nbuf < n ? 64 - c->nbuf : n;
        memcpy(c->buf + c->nbuf, p, take);
        c->nbuf += take;
        p += take;
        n -= take;
        if (c->nbuf == 64) {
            sha256_block(c, c->buf);
            c->nbuf = 0;
        }
    }
}

static void sha256_final(struct sha256 *c, unsigned char out[32])
{
    uint64_t bits = c->total * 8;
    unsigned char pad = 0x80, zero = 0, len[8];
    sha256_update(c, &pad, 1);
    while (c->nbuf != 56)
        sha256_update(c, &zero, 1);
    for (int i = 0; i < 8; i++)
        len[i] = (unsigned char)(bits >> (56 - 8 * i));
    sha256_update(c, len, 8);
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (unsigned char)(c->h[i] >> 24);
        out[4 * i + 1] = (unsigned char)(c->h[i] >> 16);
        out[4 * i + 2] = (unsigned char)(c->h[i] >> 8);
        out[4 * i + 3] = (unsigned char)c->h[i];
    }
}

/* SHA-256 of n bytes, for other modules (the manager keys its token cache by it). */
void envelope_sha256(const void *data, size_t n, unsigned char out[32])
{
    struct sha256 c;
    sha256_init(&c);
    sha256_update(&c, data, n);
    sha256_final(&c, out);
}

/* id = first 128 bits of SHA-256("devsys-entry-v1\0" queue "\0" entry_id),
 * with version 8 and the RFC 4122 variant. The NUL separators make the
 * (queue, entry id) split unambiguous. Reproducible from a shell:
 *   printf 'devsys-entry-v1\0%s\0%s' "$Q" "$ID" | sha256sum */
void envelope_derive_id(const char *queue, const char *entry_id, char out[37])
{
    static const char tag[] = "devsys-entry-v1";
    struct sha256 c;
    unsigned char d[32];
    sha256_init(&c);
    sha256_update(&c, tag, sizeof tag); /* includes the NUL */
    sha256_update(&c, queue ? queue : "", strlen(queue ? queue : "") + 1);
    sha256_update(&c, entry_id ? entry_id : "", strlen(entry_id ? entry_id : ""));
    sha256_final(&c, d);
    d[6] = (unsigned char)((d[6] & 0x0f) | 0x80);
    d[8] = (unsigned char)((d[8] & 0x3f) | 0x80);
    uuid_format(d, out);
}

/* ---- decoding ------------------------------------------------------------------- */

static int field_is(const envelope_field_t *f, const char *name)
{
    size_t n = strlen(name);
    return f->name_len == n && memcmp(f->name, name, n) == 0;
}

/* Strict decimal: digits only, no sign, no spaces, fits in a long long. */
static int parse_decimal(const char *s, size_t len, long long max, long long *out)
{
    if (len == 0 || len > 19)
        return -1;
    long long v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        if (v > (max - (s[i] - '0')) / 10)
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

/* Copies at most 63 bytes of s into kind, stopping at a NUL and never
 * cutting a UTF-8 sequence in half (the kind ends up in logs and JSON). */
static void copy_kind(char kind[64], const char *s, size_t len)
{
    size_t n = 0;
    while (n < len && n < 63 && s[n] != '\0')
        n++;
    /* A continuation byte right after the cut means a sequence was split:
     * back up to its lead byte and drop it too. */
    if (n == 63 && n < len)
        while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
            n--;
    memcpy(kind, s, n);
    kind[n] = '\0';
}

/* Quotes an untrusted value for a message: printable ASCII only, 24 bytes. */
static const char *printable(const char *s, size_t len, char out[32])
{
    size_t n = 0;
    for (size_t i = 0; i < len && n < 24; i++) {
        unsigned char c = (unsigned char)s[i];
        out[n++] = (c < 0x20 || c >= 0x7f) ? '?' : (char)c;
    }
    if (len > 24) {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
    return out;
}

static json_t *decode_spec(const char *val, size_t len, char *err, size_t errlen)
{
    size_t i = 0;
    while (i < len && (val[i] == ' ' || val[i] == '\t' || val[i] == '\n' || val[i] == '\r'))
        i++;
    if (i < len && val[i] == '{')
        return spec_json_load(val, len, err, errlen); /* hand-pushed JSON text */

    /* A msgpack map never starts with a whitespace byte, so anything else is
     * taken as msgpack as a whole. */
    char merr[160];
    json_t *j = mpack_to_json(val, len, merr, sizeof merr);
    if (!j) {
        fail(err, errlen, "spec: %s", merr);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        fail(err, errlen, "spec: must be a msgpack map");
        return NULL;
    }
    return j;
}

int envelope_decode(const char *queue, const char *entry_id, const envelope_field_t *fields,
                    size_t nfields, envelope_t *out, char *err, size_t errlen)
{
    const envelope_field_t *f_v = NULL, *f_id = NULL, *f_kind = NULL, *f_attempt = NULL,
                           *f_enq = NULL, *f_spec = NULL;
    const envelope_field_t **slot;
    char buf[32];
    int rc = 0;

    memset(out, 0, sizeof *out);
    if (err && errlen)
        err[0] = '\0';

    /* Pass 1: find the known fields and check the sizes of all of them. The
     * first error is kept, but the id is still filled in below. */
    if (nfields > ENVELOPE_MAX_ENTRY_FIELDS)
        rc = fail(err, errlen, "entry: %zu fields exceeds the limit of %d", nfields,
                  ENVELOPE_MAX_ENTRY_FIELDS);
    for (size_t i = 0; i < nfields; i++) {
        const envelope_field_t *f = &fields[i];
        slot = NULL;
        if (field_is(f, "v"))
            slot = &f_v;
        else if (field_is(f, "id"))
            slot = &f_id;
        else if (field_is(f, "kind"))
            slot = &f_kind;
        else if (field_is(f, "attempt"))
            slot = &f_attempt;
        else if (field_is(f, "enqueued_at"))
            slot = &f_enq;
        else if (field_is(f, "spec"))
            slot = &f_spec;
        if (rc < 0) {
            if (slot && !*slot)
                *slot = f;
        } else if (f->name_len > ENVELOPE_MAX_NAME)
            rc = fail(err, errlen, "entry: field name of %zu bytes exceeds the limit of %d",
                      f->name_len, ENVELOPE_MAX_NAME);
        else if (f->val_len > SPEC_MAX_BYTES)
            rc = fail(err, errlen, "%s: %zu bytes exceeds the limit of %d",
                      printable(f->name, f->name_len, buf), f->val_len, SPEC_MAX_BYTES);
        else if (slot && *slot)
            rc = fail(err, errlen, "%s: duplicate field", printable(f->name, f->name_len, buf));
        else if (slot)
            *slot = f;
    }

    if (f_id && uuid_valid(f_id->val, f_id->val_len)) {
        for (size_t i = 0; i < 36; i++) {
            char c = f_id->val[i];
            out->id[i] = (c >= 'A' && c <= 'F') ? (char)(c - 'A' + 'a') : c;
        }
        out->id[36] = '\0';
    } else {
        envelope_derive_id(queue, entry_id, out->id);
        out->hand_pushed = 1;
    }
    if (f_kind)
        copy_kind(out->kind, f_kind->val, f_kind->val_len);
    if (rc < 0)
        return -1;

    long long n;
    if (f_v && (f_v->val_len != 1 || f_v->val[0] != '0' + ENVELOPE_VERSION))
        return fail(err, errlen, "v: unsupported envelope version %s",
                    printable(f_v->val, f_v->val_len, buf));
    if (f_attempt) {
        if (parse_decimal(f_attempt->val, f_attempt->val_len, 1000000000LL, &n) < 0)
            return fail(err, errlen, "attempt: must be a decimal integer, got \"%s\"",
                        printable(f_attempt->val, f_attempt->val_len, buf));
        out->attempt = (long)n;
    }
    if (f_enq) {
        if (parse_decimal(f_enq->val, f_enq->val_len, INT64_MAX, &n) < 0)
            return fail(err, errlen, "enqueued_at: must be a decimal integer, got \"%s\"",
                        printable(f_enq->val, f_enq->val_len, buf));
        out->enqueued_at = n;
    }
    if (!f_spec)
        return fail(err, errlen, "spec: field missing");
    out->spec = decode_spec(f_spec->val, f_spec->val_len, err, errlen);
    if (!out->spec)
        return -1;
    if (!out->kind[0]) {
        json_t *k = json_object_get(out->spec, "kind");
        if (json_is_string(k))
            copy_kind(out->kind, json_string_value(k), json_string_length(k));
    }
    return 0;
}

void envelope_clear(envelope_t *env)
{
    if (!env)
        return;
    json_decref(env->spec);
    env->spec = NULL;
}

/* ---- encoding ------------------------------------------------------------------- */

int envelope_encode(const char *id, const char *kind, long attempt, long long enqueued_at,
                    const json_t *spec, const char **argv, size_t *argvlen, char **storage)
{
    size_t mlen;
    char *mp = mpack_from_json(spec, &mlen);
    *storage = NULL;
    if (!mp)
        return -1;
    if (!kind) {
        const json_t *k = json_object_get(spec, "kind");
        kind = json_is_string(k) ? json_string_value(k) : "";
    }
    /* One block: "1\0" id "\0" kind "\0" attempt "\0" enqueued_at "\0" msgpack. */
    char num_a[24], num_e[24];
    int la = snprintf(num_a, sizeof num_a, "%ld", attempt);
    int le = snprintf(num_e, sizeof num_e, "%lld", enqueued_at);
    size_t lid = strlen(id), lkind = strlen(kind);
    size_t total = 2 + lid + 1 + lkind + 1 + (size_t)la + 1 + (size_t)le + 1 + mlen;
    char *b = malloc(total);
    if (!b)
        abort();
    const char *names[ENVELOPE_MAX_FIELDS] = {"v", "id", "kind", "attempt", "enqueued_at", "spec"};
    const char *vals[ENVELOPE_MAX_FIELDS] = {"1", id, kind, num_a, num_e, mp};
    size_t lens[ENVELOPE_MAX_FIELDS] = {1, lid, lkind, (size_t)la, (size_t)le, mlen};
    size_t o = 0;
    for (int i = 0; i < ENVELOPE_MAX_FIELDS; i++) {
        memcpy(b + o, vals[i], lens[i]);
        argv[2 * i] = names[i];
        argvlen[2 * i] = strlen(names[i]);
        argv[2 * i + 1] = b + o;
        argvlen[2 * i + 1] = lens[i];
        o += lens[i];
        if (i + 1 < ENVELOPE_MAX_FIELDS)
            b[o++] = '\0';
    }
    free(mp);
    *storage = b;
    return 2 * ENVELOPE_MAX_FIELDS;
}

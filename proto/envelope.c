/* envelope: decode and encode the task envelope on a queue stream (see
 * envelope.h), and the deterministic UUIDv8 of an entry pushed by hand
 * without an id (SHA-256 from libsodium). */
#include "envelope.h"

#include <sodium.h>

#include "mpack.h"
#include "spec.h"
#include "uuid.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* ---- derived ids --------------------------------------------------------------- */

/* id = first 128 bits of SHA-256("devsys-entry-v1\0" queue "\0" entry_id),
 * with version 8 and the RFC 4122 variant. The NUL separators make the
 * (queue, entry id) split unambiguous. Reproducible from a shell:
 *   printf 'devsys-entry-v1\0%s\0%s' "$Q" "$ID" | sha256sum */
void envelope_derive_id(const char *queue, const char *entry_id, char out[37])
{
    static const char tag[] = "devsys-entry-v1";
    crypto_hash_sha256_state c;
    unsigned char d[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_init(&c);
    crypto_hash_sha256_update(&c, (const unsigned char *)tag, sizeof tag); /* includes the NUL */
    const char *qs = queue ? queue : "", *es = entry_id ? entry_id : "";
    crypto_hash_sha256_update(&c, (const unsigned char *)qs, strlen(qs) + 1);
    crypto_hash_sha256_update(&c, (const unsigned char *)es, strlen(es));
    crypto_hash_sha256_final(&c, d);
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

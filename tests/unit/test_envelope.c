/* test_envelope: encode/decode of stream entries, hand-pushed JSON entries,
 * derived and random task ids, and rejection of malformed entries. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "envelope.h"
#include "uuid.h"
#include "mpack.h"
#include "spec.h"

static char err[256];

/* Builds fields from NULL-terminated name/value C strings. */
static size_t fields_of(envelope_field_t *f, const char *const *kv)
{
    size_t n = 0;
    for (; kv[2 * n]; n++) {
        f[n].name = kv[2 * n];
        f[n].name_len = strlen(kv[2 * n]);
        f[n].val = kv[2 * n + 1];
        f[n].val_len = strlen(kv[2 * n + 1]);
    }
    return n;
}

static int decode_kv(const char *const *kv, envelope_t *env)
{
    envelope_field_t f[16];
    size_t n = fields_of(f, kv);
    err[0] = '\0';
    return envelope_decode("exec", "1700000000000-0", f, n, env, err, sizeof err);
}

static void expect_decode_error(const char *const *kv, const char *msg)
{
    envelope_t env;
    assert_int_equal(decode_kv(kv, &env), -1);
    assert_null(env.spec);
    assert_true(uuid_valid(env.id, strlen(env.id))); /* always a usable id */
    assert_string_equal(err, msg);
    envelope_clear(&env);
}

static void test_encode_decode_roundtrip(void **state)
{
    (void)state;
    json_t *spec = json_pack("{s:s,s:[s,s],s:{s:i}}", "kind", "exec", "command", "echo", "hi",
                             "retry_policy", "max_attempts", 5);
    char id[37];
    uuid_v7(id);
    const char *argv[12];
    size_t argvlen[12];
    char *storage = NULL;
    assert_int_equal(envelope_encode(id, "exec", 2, 1700000000123LL, spec, argv, argvlen, &storage), 12);
    assert_non_null(storage);
    const char *names[] = {"v", "id", "kind", "attempt", "enqueued_at", "spec"};
    for (int i = 0; i < 6; i++) {
        assert_string_equal(argv[2 * i], names[i]);
        assert_int_equal(argvlen[2 * i], strlen(names[i]));
    }
    assert_memory_equal(argv[1], "1", 1);
    assert_int_equal(argvlen[1], 1);
    assert_memory_equal(argv[3], id, 36);
    assert_memory_equal(argv[7], "2", argvlen[7]);
    assert_memory_equal(argv[9], "1700000000123", argvlen[9]);
    assert_int_equal((unsigned char)argv[11][0], 0x83); /* msgpack fixmap of 3 */

    envelope_field_t f[6];
    for (int i = 0; i < 6; i++)
        f[i] = (envelope_field_t){argv[2 * i], argvlen[2 * i], argv[2 * i + 1], argvlen[2 * i + 1]};
    envelope_t env;
    assert_int_equal(envelope_decode("exec", "1-0", f, 6, &env, err, sizeof err), 0);
    assert_string_equal(env.id, id);
    assert_int_equal(env.hand_pushed, 0);
    assert_string_equal(env.kind, "exec");
    assert_int_equal(env.attempt, 2);
    assert_int_equal(env.enqueued_at, 1700000000123LL);
    assert_true(json_equal(env.spec, spec));
    /* the decoded spec validates */
    spec_t *s = spec_from_json(env.spec, err, sizeof err);
    assert_non_null(s);
    assert_int_equal(s->retry.max_attempts, 5);
    spec_free(s);
    envelope_clear(&env);
    envelope_clear(&env); /* idempotent */
    free(storage);

    /* kind NULL: taken from the spec */
    assert_int_equal(envelope_encode(id, NULL, 0, 0, spec, argv, argvlen, &storage), 12);
    assert_memory_equal(argv[5], "exec", 4);
    assert_int_equal(argvlen[5], 4);
    free(storage);
    json_decref(spec);
}

static void test_encode_too_deep(void **state)
{
    (void)state;
    json_t *spec = json_pack("{s:s}", "kind", "noop"), *cur = spec;
    for (int i = 0; i < 40; i++) {
        json_t *n = json_object();
        json_object_set_new(cur, "x", n);
        cur = n;
    }
    const char *argv[12];
    size_t argvlen[12];
    char *storage = (char *)"sentinel";
    assert_int_equal(envelope_encode("x", "noop", 0, 0, spec, argv, argvlen, &storage), -1);
    assert_null(storage);
    json_decref(spec);
}

static void test_hand_pushed_json(void **state)
{
    (void)state;
    const char *kv[] = {"spec", "  \n{\"kind\":\"exec\",\"command\":[\"true\"]}", NULL};
    envelope_t env;
    assert_int_equal(decode_kv(kv, &env), 0);
    assert_int_equal(env.hand_pushed, 1);
    char want[37];
    envelope_derive_id("exec", "1700000000000-0", want);
    assert_string_equal(env.id, want);
    assert_string_equal(env.kind, "exec"); /* from the spec */
    assert_int_equal(env.attempt, 0);
    assert_int_equal(env.enqueued_at, 0);
    assert_string_equal(json_string_value(json_object_get(env.spec, "kind")), "exec");
    envelope_clear(&env);

    /* a redelivery of the same entry is the same task */
    envelope_t again;
    assert_int_equal(decode_kv(kv, &again), 0);
    assert_string_equal(again.id, want);
    envelope_clear(&again);

    /* an id that is not a UUID is treated as absent */
    const char *bad_id[] = {"id", "task-1", "spec", "{\"kind\":\"noop\"}", NULL};
    assert_int_equal(decode_kv(bad_id, &env), 0);
    assert_int_equal(env.hand_pushed, 1);
    assert_string_equal(env.id, want);
    envelope_clear(&env);

    /* a valid id is kept, lower-cased */
    const char *upper[] = {"id", "0190A5E4-7A3B-7C2D-8E4F-0123456789AB", "spec", "{\"kind\":\"noop\"}", NULL};
    assert_int_equal(decode_kv(upper, &env), 0);
    assert_int_equal(env.hand_pushed, 0);
    assert_string_equal(env.id, "0190a5e4-7a3b-7c2d-8e4f-0123456789ab");
    envelope_clear(&env);
}

static void test_spec_errors(void **state)
{
    (void)state;
    const char *bad_json[] = {"spec", "{\"kind\":\"exec\",", NULL};
    envelope_t env;
    assert_int_equal(decode_kv(bad_json, &env), -1);
    assert_null(env.spec);
    assert_int_equal(env.hand_pushed, 1);
    if (strncmp(err, "spec: invalid JSON at line 1 column ", 36) != 0)
        fail_msg("%s", err);
    envelope_clear(&env);

    const char *dup[] = {"spec", "{\"kind\":\"exec\",\"kind\":\"noop\"}", NULL};
    assert_int_equal(decode_kv(dup, &env), -1);
    assert_non_null(strstr(err, "duplicate object key"));
    envelope_clear(&env);

    const char *arr[] = {"spec", "[1]", NULL};
    expect_decode_error(arr, "spec: msgpack: 2 trailing bytes after the value, at offset 1");
    const char *empty[] = {"spec", "", NULL};
    expect_decode_error(empty, "spec: msgpack: empty input");
    const char *fixint[] = {"spec", "\x05", NULL};
    expect_decode_error(fixint, "spec: must be a msgpack map");
    const char *lie[] = {"spec", "\xdf\xff\xff\xff\xff\xa1" "a", NULL};
    expect_decode_error(lie, "spec: msgpack: map of 4294967295 pairs at offset 0 needs at least 8589934590 bytes, 2 left");
    const char *missing[] = {"v", "1", "kind", "exec", NULL};
    expect_decode_error(missing, "spec: field missing");
    const char *nested_deep[] = {"spec", "{\"a\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}", NULL};
    expect_decode_error(nested_deep, "spec: nesting deeper than 32 levels");

    /* the kind field still comes through on a rejected entry */
    const char *kind_bad[] = {"kind", "deploy", "spec", "{", NULL};
    assert_int_equal(decode_kv(kind_bad, &env), -1);
    assert_string_equal(env.kind, "deploy");
    envelope_clear(&env);
}

static void test_fields(void **state)
{
    (void)state;
    const char *v7[] = {"v", "7", "spec", "{\"kind\":\"noop\"}", NULL};
    expect_decode_error(v7, "v: unsupported envelope version 7");
    const char *v_junk[] = {"v", "1\n2", "spec", "{\"kind\":\"noop\"}", NULL};
    expect_decode_error(v_junk, "v: unsupported envelope version 1?2");
    const char *att[] = {"attempt", "-1", "spec", "{\"kind\":\"noop\"}", NULL};
    expect_decode_error(att, "attempt: must be a decimal integer, got \"-1\"");
    const char *att2[] = {"attempt", "3 ", "spec", "{\"kind\":\"noop\"}", NULL};
    expect_decode_error(att2, "attempt: must be a decimal integer, got \"3 \"");
    const char *att3[] = {"attempt", "99999999999", "spec", "{\"kind\":\"noop\"}", NULL};
    expect_decode_error(att3, "attempt: must be a decimal integer, got \"99999999999\"");
    const char *enq[] = {"enqueued_at", "1.5", "spec", "{\"kind\":\"noop\"}", NULL};
    expect_decode_error(enq, "enqueued_at: must be a decimal integer, got \"1.5\"");
    const char *enq2[] = {"enqueued_at", "", "spec", "{\"kind\":\"noop\"}", NULL};
    expect_decode_error(enq2, "enqueued_at: must be a decimal integer, got \"\"");
    const char *enq3[] = {"enqueued_at", "99999999999999999999", "spec", "{\"kind\":\"noop\"}", NULL};
    expect_decode_error(enq3, "enqueued_at: must be a decimal integer, got \"99999999999999999999\"");
    const char *dupf[] = {"spec", "{\"kind\":\"noop\"}", "spec", "{\"kind\":\"exec\"}", NULL};
    expect_decode_error(dupf, "spec: duplicate field");

    /* unknown fields are ignored (forward compatible) */
    const char *extra[] = {"v", "1", "trace", "abc", "attempt", "9223", "enqueued_at", "9223372036854775807",
                           "spec", "{\"kind\":\"noop\"}", NULL};
    envelope_t env;
    assert_int_equal(decode_kv(extra, &env), 0);
    assert_int_equal(env.attempt, 9223);
    assert_int_equal(env.enqueued_at, INT64_MAX);
    envelope_clear(&env);

    /* but not without bound */
    envelope_field_t f[65];
    for (int i = 0; i < 65; i++)
        f[i] = (envelope_field_t){"x", 1, "y", 1};
    f[0] = (envelope_field_t){"spec", 4, "{\"kind\":\"noop\"}", 15};
    assert_int_equal(envelope_decode("q", "1-1", f, 64, &env, err, sizeof err), 0);
    envelope_clear(&env);
    assert_int_equal(envelope_decode("q", "1-1", f, 65, &env, err, sizeof err), -1);
    assert_string_equal(err, "entry: 65 fields exceeds the limit of 64");
    assert_null(env.spec);
    assert_true(uuid_valid(env.id, 36));

    size_t big = SPEC_MAX_BYTES + 1;
    char *junk = malloc(big);
    memset(junk, 'j', big);
    f[1] = (envelope_field_t){"junk", 4, junk, big};
    assert_int_equal(envelope_decode("q", "1-1", f, 2, &env, err, sizeof err), -1);
    assert_string_equal(err, "junk: 1048577 bytes exceeds the limit of 1048576");
    f[1] = (envelope_field_t){junk, 300, "y", 1};
    assert_int_equal(envelope_decode("q", "1-1", f, 2, &env, err, sizeof err), -1);
    assert_string_equal(err, "entry: field name of 300 bytes exceeds the limit of 256");
    free(junk);
}

static void test_kind_truncation(void **state)
{
    (void)state;
    char kind[128];
    memset(kind, 'k', 100);
    kind[100] = '\0';
    const char *kv[] = {"kind", kind, "spec", "{\"kind\":\"noop\"}", NULL};
    envelope_t env;
    assert_int_equal(decode_kv(kv, &env), 0);
    assert_int_equal(strlen(env.kind), 63);
    envelope_clear(&env);

    /* 62 ASCII bytes then a 2-byte character: it would be cut, so it is dropped */
    memset(kind, 'a', 62);
    strcpy(kind + 62, "\xc3\xa9zz");
    assert_int_equal(decode_kv(kv, &env), 0);
    assert_int_equal(strlen(env.kind), 62);
    envelope_clear(&env);
    /* 61 + the 2-byte character fits exactly */
    memset(kind, 'a', 61);
    strcpy(kind + 61, "\xc3\xa9zz");
    assert_int_equal(decode_kv(kv, &env), 0);
    assert_int_equal(strlen(env.kind), 63);
    assert_memory_equal(env.kind + 61, "\xc3\xa9", 2);
    envelope_clear(&env);

    /* fallback to the spec's kind, truncated the same way */
    char spec[256];
    snprintf(spec, sizeof spec, "{\"kind\":\"%s\"}", kind);
    const char *kv2[] = {"spec", spec, NULL};
    assert_int_equal(decode_kv(kv2, &env), 0);
    assert_int_equal(strlen(env.kind), 63);
    envelope_clear(&env);
    const char *kv3[] = {"spec", "{\"kind\":5}", NULL};
    assert_int_equal(decode_kv(kv3, &env), 0);
    assert_string_equal(env.kind, "");
    envelope_clear(&env);
}

static void test_derive_id(void **state)
{
    (void)state;
    char a[37], b[37];
    /* pinned: sha256("devsys-entry-v1\0exec\0" "1700000000000-0"), version 8, variant */
    envelope_derive_id("exec", "1700000000000-0", a);
    assert_string_equal(a, "80d16b17-416d-8e85-b341-f45e42286a5b");
    envelope_derive_id("exec", "1700000000000-0", b);
    assert_string_equal(a, b);
    envelope_derive_id("exec", "1700000000000-1", b);
    assert_string_not_equal(a, b);
    envelope_derive_id("noop", "1700000000000-0", b);
    assert_string_not_equal(a, b);
    /* the split between queue and entry id matters */
    envelope_derive_id("ab", "c", a);
    envelope_derive_id("a", "bc", b);
    assert_string_not_equal(a, b);
    /* many entries, no collisions, all version 8 / RFC 4122 variant */
    enum { N = 2000 };
    static char ids[N][37];
    for (int i = 0; i < N; i++) {
        char e[32];
        snprintf(e, sizeof e, "1700000000000-%d", i);
        envelope_derive_id("exec", e, ids[i]);
        assert_true(uuid_valid(ids[i], 36));
        assert_int_equal(ids[i][14], '8');
        assert_non_null(strchr("89ab", ids[i][19]));
        for (int k = 0; k < i; k++)
            assert_string_not_equal(ids[i], ids[k]);
    }
    /* long inputs cross SHA-256 block boundaries */
    char longq[200];
    memset(longq, 'q', sizeof longq - 1);
    longq[sizeof longq - 1] = '\0';
    envelope_derive_id(longq, "1-0", a);
    assert_true(uuid_valid(a, 36));
}

static void test_uuid(void **state)
{
    (void)state;
    assert_true(uuid_valid("01234567-89ab-cdef-0123-456789abcdef", 36));
    assert_true(uuid_valid("01234567-89AB-CDEF-0123-456789ABCDEF", 36));
    assert_false(uuid_valid("01234567-89ab-cdef-0123-456789abcdef", 35));
    assert_false(uuid_valid("01234567-89ab-cdef-0123-456789abcdeff", 37));
    assert_false(uuid_valid("01234567_89ab-cdef-0123-456789abcdef", 36));
    assert_false(uuid_valid("0123456789ab-cdef-0123-456789abcdef-", 36));
    assert_false(uuid_valid("g1234567-89ab-cdef-0123-456789abcdef", 36));
    assert_false(uuid_valid(NULL, 36));

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    unsigned long long before = (unsigned long long)ts.tv_sec * 1000 + (unsigned long long)ts.tv_nsec / 1000000;
    enum { N = 1000 };
    static char ids[N][37];
    for (int i = 0; i < N; i++) {
        uuid_v7(ids[i]);
        assert_true(uuid_valid(ids[i], 36));
        assert_int_equal(ids[i][14], '7');
        assert_non_null(strchr("89ab", ids[i][19]));
        for (int k = 0; k < i; k++)
            assert_string_not_equal(ids[i], ids[k]);
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    unsigned long long after = (unsigned long long)ts.tv_sec * 1000 + (unsigned long long)ts.tv_nsec / 1000000;
    /* the first 48 bits are the creation time in ms */
    char hex[13];
    memcpy(hex, ids[0], 8);
    memcpy(hex + 8, ids[0] + 9, 4);
    hex[12] = '\0';
    unsigned long long ms = strtoull(hex, NULL, 16);
    assert_true(ms >= before && ms <= after);
    /* time-ordered across milliseconds */
    assert_true(strncmp(ids[0], ids[N - 1], 13) <= 0);
}

static void test_truncated_msgpack_spec(void **state)
{
    (void)state;
    json_t *spec = json_pack("{s:s,s:[s,s],s:{s:s},s:f}", "kind", "exec", "command", "sh", "-c", "env",
                             "A", "b", "timeout_s", 1.5);
    size_t len;
    char *mp = mpack_from_json(spec, &len);
    for (size_t i = 0; i <= len; i++) {
        char *copy = malloc(i ? i : 1);
        memcpy(copy, mp, i);
        envelope_field_t f[1] = {{"spec", 4, copy, i}};
        envelope_t env;
        int rc = envelope_decode("q", "1-0", f, 1, &env, err, sizeof err);
        if (i < len) {
            assert_int_equal(rc, -1);
            assert_null(env.spec);
            assert_int_equal(strncmp(err, "spec: msgpack: ", 15), 0);
        } else {
            assert_int_equal(rc, 0);
            assert_true(json_equal(env.spec, spec));
        }
        envelope_clear(&env);
        free(copy);
    }
    free(mp);
    json_decref(spec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_decode_roundtrip),
        cmocka_unit_test(test_encode_too_deep),
        cmocka_unit_test(test_hand_pushed_json),
        cmocka_unit_test(test_spec_errors),
        cmocka_unit_test(test_fields),
        cmocka_unit_test(test_kind_truncation),
        cmocka_unit_test(test_derive_id),
        cmocka_unit_test(test_uuid),
        cmocka_unit_test(test_truncated_msgpack_spec),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

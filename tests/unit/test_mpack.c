/* test_mpack: JSON <-> msgpack round trips, interoperability with msgpack-c,
 * and the hostile inputs the decoder exists for (lying lengths, truncation,
 * depth, types JSON cannot carry). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <msgpack.h>

#include "mpack.h"

static char err[256];

/* Counts jansson allocations, to prove hostile input is refused before
 * anything is built. */
static size_t json_allocs;
static void *count_malloc(size_t n)
{
    json_allocs++;
    return malloc(n);
}

/* Decodes exactly len bytes from a heap copy of that size, so ASan sees any
 * read past the end. */
static json_t *decode(const void *bytes, size_t len)
{
    char *copy = malloc(len ? len : 1);
    memcpy(copy, bytes, len);
    err[0] = '\0';
    json_t *j = mpack_to_json(copy, len, err, sizeof err);
    free(copy);
    if (!j && err[0] == '\0')
        fail_msg("rejected without a message");
    return j;
}

static void expect_reject(const void *bytes, size_t len, const char *msg)
{
    json_t *j = decode(bytes, len);
    if (j) {
        json_decref(j);
        fail_msg("accepted %zu bytes", len);
    }
    if (msg)
        assert_string_equal(err, msg);
}

static json_t *roundtrip(const json_t *in)
{
    size_t len = 0;
    char *mp = mpack_from_json(in, &len);
    assert_non_null(mp);
    size_t bytes, items;
    assert_int_equal(mpack_measure(in, &bytes, &items), 0);
    assert_int_equal(bytes, len); /* the measure is exact */
    json_t *out = decode(mp, len);
    if (!out)
        fail_msg("decode of own encoding failed: %s", err);
    free(mp);
    return out;
}

static void test_roundtrip_scalars(void **state)
{
    (void)state;
    const json_int_t ints[] = {0,     1,          127,        128,        255,      256,
                               65535, 65536,      4294967295LL, 4294967296LL, INT64_MAX, -1,
                               -32,   -33,        -128,       -129,       -32768,   -32769,
                               -2147483648LL,     -2147483649LL,          INT64_MIN};
    json_t *a = json_array();
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        json_array_append_new(a, json_integer(ints[i]));
    json_array_append_new(a, json_real(1.5));
    json_array_append_new(a, json_real(-0.25));
    json_array_append_new(a, json_real(1e300));
    json_array_append_new(a, json_real(3.0)); /* stays a real, not an integer */
    json_array_append_new(a, json_true());
    json_array_append_new(a, json_false());
    json_array_append_new(a, json_null());
    json_array_append_new(a, json_string("h\xc3\xa9llo \xe2\x82\xac"));
    json_t *b = roundtrip(a);
    assert_true(json_equal(a, b));
    for (size_t i = 0; i < json_array_size(a); i++)
        assert_int_equal(json_typeof(json_array_get(a, i)), json_typeof(json_array_get(b, i)));
    json_decref(a);
    json_decref(b);
}

static void test_roundtrip_sizes(void **state)
{
    (void)state;
    /* string and array lengths on both sides of each header size; maps up
     * to 256 pairs (a map32 would exceed MPACK_MAX_ITEMS, see below) */
    const size_t lens[] = {0, 15, 16, 31, 32, 255, 256, 65535, 65536};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        size_t n = lens[i];
        char *s = malloc(n + 1);
        memset(s, 'x', n);
        json_t *str = json_stringn(s, n);
        json_t *arr = json_array();
        json_t *obj = json_object();
        for (size_t k = 0; k < n; k++) {
            char key[32];
            snprintf(key, sizeof key, "k%zu", k);
            json_array_append_new(arr, json_integer((json_int_t)k));
            if (n <= 256)
                json_object_set_new(obj, key, json_null());
        }
        json_t *all = json_pack("{s:o,s:o,s:o}", "s", str, "a", arr, "o", obj);
        json_t *back = roundtrip(all);
        assert_true(json_equal(all, back));
        json_decref(all);
        json_decref(back);
        free(s);
    }
    /* wider headers than needed are still valid msgpack */
    const unsigned char wide[] = {0xdf, 0, 0, 0, 2,                /* map32 of 2 */
                                  0xd9, 1, 'a', 0xdd, 0, 0, 0, 1, 0xc0, /* str8 "a": array32 [nil] */
                                  0xda, 0, 1, 'b', 0xde, 0, 1,          /* str16 "b": map16 of 1 */
                                  0xdb, 0, 0, 0, 1, 'c', 0xdc, 0, 0};   /* str32 "c": array16 [] */
    json_t *j = decode(wide, sizeof wide);
    if (!j)
        fail_msg("%s", err);
    char *d = json_dumps(j, JSON_COMPACT);
    assert_string_equal(d, "{\"a\":[null],\"b\":{\"c\":[]}}");
    free(d);
    json_decref(j);
}

static void test_key_order_and_spec(void **state)
{
    (void)state;
    const char *text = "{\"kind\":\"exec\",\"command\":[\"sh\",\"-c\",\"echo hi\"],\"env\":{\"Z\":\"1\",\"A\":\"2\"},"
                       "\"timeout_s\":2.5,\"priority\":-3,\"retry_policy\":{\"max_attempts\":4,\"jitter\":false},"
                       "\"next\":[{\"kind\":\"noop\"}],\"name\":null}";
    json_t *j = json_loads(text, 0, NULL);
    assert_non_null(j);
    size_t bytes, items;
    assert_int_equal(mpack_measure(j, &bytes, &items), 0);
    assert_int_equal(items, 31); /* containers, keys and values */
    json_t *back = roundtrip(j);
    char *d = json_dumps(back, JSON_COMPACT);
    /* jansson keeps insertion order, and so does the round trip */
    assert_string_equal(d, "{\"kind\":\"exec\",\"command\":[\"sh\",\"-c\",\"echo hi\"],\"env\":{\"Z\":\"1\",\"A\":\"2\"},"
                           "\"timeout_s\":2.5,\"priority\":-3,\"retry_policy\":{\"max_attempts\":4,\"jitter\":false},"
                           "\"next\":[{\"kind\":\"noop\"}],\"name\":null}");
    free(d);
    json_decref(back);
    json_decref(j);
}

/* Our encoding is plain msgpack: msgpack-c reads it back with the types we
 * meant (smallest int encodings, float64 for reals, str for strings). */
static void test_interop_with_msgpack_c(void **state)
{
    (void)state;
    json_t *j = json_pack("{s:i,s:I,s:f,s:s,s:b,s:n}", "small", 5, "neg", (json_int_t)-70000, "real", 0.5,
                          "str", "v", "t", 1, "nil");
    size_t len;
    char *mp = mpack_from_json(j, &len);
    assert_non_null(mp);
    assert_int_equal((unsigned char)mp[0], 0x86); /* fixmap of 6 */
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    assert_int_equal(msgpack_unpack_next(&u, mp, len, &off), MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(off, len);
    msgpack_object_map *m = &u.data.via.map;
    assert_int_equal(m->size, 6);
    assert_int_equal(m->ptr[0].val.type, MSGPACK_OBJECT_POSITIVE_INTEGER);
    assert_int_equal(m->ptr[0].val.via.u64, 5);
    assert_int_equal(m->ptr[1].val.type, MSGPACK_OBJECT_NEGATIVE_INTEGER);
    assert_int_equal(m->ptr[1].val.via.i64, -70000);
    assert_int_equal(m->ptr[2].val.type, MSGPACK_OBJECT_FLOAT64);
    assert_int_equal(m->ptr[3].val.type, MSGPACK_OBJECT_STR);
    assert_int_equal(m->ptr[4].val.type, MSGPACK_OBJECT_BOOLEAN);
    assert_int_equal(m->ptr[5].val.type, MSGPACK_OBJECT_NIL);
    msgpack_unpacked_destroy(&u);
    free(mp);
    json_decref(j);

    /* and we read what msgpack-c writes, float32 included */
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 3);
    msgpack_pack_str_with_body(&pk, "f", 1);
    msgpack_pack_float(&pk, 1.5f);
    msgpack_pack_str_with_body(&pk, "u", 1);
    msgpack_pack_uint64(&pk, 4000000000ULL);
    msgpack_pack_str_with_body(&pk, "a", 1);
    msgpack_pack_array(&pk, 1);
    msgpack_pack_int8(&pk, -5);
    json_t *back = decode(sb.data, sb.size);
    assert_non_null(back);
    assert_true(json_real_value(json_object_get(back, "f")) == 1.5);
    assert_int_equal(json_integer_value(json_object_get(back, "u")), 4000000000LL);
    assert_int_equal(json_integer_value(json_array_get(json_object_get(back, "a"), 0)), -5);
    json_decref(back);

    /* bin written by msgpack-c is refused (JSON has no bytes type) */
    msgpack_sbuffer_clear(&sb);
    msgpack_pack_map(&pk, 1);
    msgpack_pack_str_with_body(&pk, "b", 1);
    msgpack_pack_bin_with_body(&pk, "xy", 2);
    expect_reject(sb.data, sb.size, "msgpack: bin type 0xc4 at offset 3 is not supported");
    msgpack_sbuffer_destroy(&sb);
}

static void test_huge_length_attack(void **state)
{
    (void)state;
    json_set_alloc_funcs(count_malloc, free);
    json_allocs = 0;
    clock_t t0 = clock();
    const unsigned char arr32[] = {0xdd, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00};
    expect_reject(arr32, sizeof arr32,
                  "msgpack: array of 4294967295 elements at offset 0 needs at least 4294967295 bytes, 3 left");
    const unsigned char str32[] = {0xdb, 0xff, 0xff, 0xff, 0xff, 0x61, 0x62, 0x63};
    expect_reject(str32, sizeof str32, "msgpack: string length 4294967295 at offset 0 exceeds the 3 bytes left");
    const unsigned char map32[] = {0xdf, 0xff, 0xff, 0xff, 0xff, 0xa1, 0x61, 0xc0};
    expect_reject(map32, sizeof map32,
                  "msgpack: map of 4294967295 pairs at offset 0 needs at least 8589934590 bytes, 3 left");
    /* the lie nested inside an honest container */
    const unsigned char nested[] = {0x92, 0x01, 0xdb, 0xff, 0xff, 0xff, 0xff, 0x00};
    expect_reject(nested, sizeof nested, "msgpack: string length 4294967295 at offset 2 exceeds the 1 bytes left");
    const unsigned char arr16[] = {0xdc, 0xff, 0xff, 0xc0, 0xc0};
    expect_reject(arr16, sizeof arr16,
                  "msgpack: array of 65535 elements at offset 0 needs at least 65535 bytes, 2 left");
    /* a map needs two bytes per pair: 2 pairs in 3 bytes is a lie */
    const unsigned char map2[] = {0x82, 0xa0, 0xc0, 0xa0};
    expect_reject(map2, sizeof map2, "msgpack: map of 2 pairs at offset 0 needs at least 4 bytes, 3 left");
    double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    assert_int_equal(json_allocs, 0);
    assert_true(secs < 0.5);
    json_set_alloc_funcs(malloc, free);
}

static void test_every_prefix_rejected(void **state)
{
    (void)state;
    const char *text = "{\"kind\":\"exec\",\"command\":[\"sh\",\"-c\",\"echo \\u00e9\"],\"n\":-70000,"
                       "\"big\":9007199254740993,\"r\":0.1,\"t\":true,\"o\":{\"a\":[null,{}]},"
                       "\"s\":\"0123456789012345678901234567890123456789\"}";
    json_t *j = json_loads(text, 0, NULL);
    size_t len;
    char *mp = mpack_from_json(j, &len);
    assert_non_null(mp);
    for (size_t i = 0; i < len; i++)
        expect_reject(mp, i, NULL);
    expect_reject(mp, 0, "msgpack: empty input");
    json_t *whole = decode(mp, len);
    assert_non_null(whole);
    assert_true(json_equal(j, whole));
    json_decref(whole);

    /* one byte too many */
    char *more = malloc(len + 1);
    memcpy(more, mp, len);
    more[len] = (char)0xc0;
    char want[128];
    snprintf(want, sizeof want, "msgpack: 1 trailing bytes after the value, at offset %zu", len);
    expect_reject(more, len + 1, want);
    free(more);
    free(mp);
    json_decref(j);
}

static void test_types_json_cannot_carry(void **state)
{
    (void)state;
    const unsigned char bin[] = {0x81, 0xa1, 'b', 0xc5, 0x00, 0x01, 'x'};
    expect_reject(bin, sizeof bin, "msgpack: bin type 0xc5 at offset 3 is not supported");
    const unsigned char fixext[] = {0xd4, 0x01, 0x02};
    expect_reject(fixext, sizeof fixext, "msgpack: ext type 0xd4 at offset 0 is not supported");
    const unsigned char ext8[] = {0x91, 0xc7, 0x01, 0x05, 0x00};
    expect_reject(ext8, sizeof ext8, "msgpack: ext type 0xc7 at offset 1 is not supported");
    const unsigned char never[] = {0xc1};
    expect_reject(never, sizeof never, "msgpack: invalid type byte 0xc1 at offset 0");
    const unsigned char intkey[] = {0x81, 0x01, 0xc0};
    expect_reject(intkey, sizeof intkey, "msgpack: map key at offset 1 is not a string");
    const unsigned char mapkey[] = {0x82, 0xa1, 'a', 0x01, 0x80, 0xc0};
    expect_reject(mapkey, sizeof mapkey, "msgpack: map key at offset 4 is not a string");
    const unsigned char nan64[] = {0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0};
    expect_reject(nan64, sizeof nan64, "msgpack: float at offset 0 is NaN or infinite (not representable in JSON)");
    const unsigned char inf32[] = {0x91, 0xca, 0x7f, 0x80, 0x00, 0x00};
    expect_reject(inf32, sizeof inf32, "msgpack: float at offset 1 is NaN or infinite (not representable in JSON)");
    const unsigned char ninf64[] = {0xcb, 0xff, 0xf0, 0, 0, 0, 0, 0, 0};
    expect_reject(ninf64, sizeof ninf64, NULL);
    const unsigned char u64big[] = {0xcf, 0x80, 0, 0, 0, 0, 0, 0, 0};
    expect_reject(u64big, sizeof u64big, "msgpack: unsigned integer at offset 0 exceeds the signed 64-bit range");
    const unsigned char u64max[] = {0xcf, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    json_t *j = decode(u64max, sizeof u64max);
    assert_non_null(j);
    assert_int_equal(json_integer_value(j), INT64_MAX);
    json_decref(j);
    const unsigned char cut_header[] = {0x91, 0xcd, 0x01};
    expect_reject(cut_header, sizeof cut_header,
                  "msgpack: truncated at offset 1: type 0xcd needs 2 more bytes, 1 left");
    const unsigned char short_arr[] = {0x92, 0xc0};
    expect_reject(short_arr, sizeof short_arr,
                  "msgpack: array of 2 elements at offset 0 needs at least 2 bytes, 1 left");
    /* enough bytes for each count alone, but not for all of them */
    const unsigned char missing[] = {0x92, 0x91, 0x91, 0xc0};
    expect_reject(missing, sizeof missing, "msgpack: truncated at offset 4: a value is missing");
}

static void test_string_content(void **state)
{
    (void)state;
    const unsigned char bad_utf8[] = {0x91, 0xa2, 0xff, 0xfe};
    expect_reject(bad_utf8, sizeof bad_utf8, "msgpack: string at offset 1 is not valid UTF-8");
    const unsigned char overlong[] = {0xa2, 0xc0, 0x80};
    expect_reject(overlong, sizeof overlong, "msgpack: string at offset 0 is not valid UTF-8");
    const unsigned char bad_key[] = {0x81, 0xa1, 0x80, 0xc0};
    expect_reject(bad_key, sizeof bad_key, "msgpack: map key at offset 1 is not valid UTF-8");
    const unsigned char nul[] = {0xa3, 'a', 0x00, 'b'};
    expect_reject(nul, sizeof nul, "msgpack: string at offset 0 contains a NUL byte");
    const unsigned char nul_key[] = {0x81, 0xa2, 'k', 0x00, 0xc0};
    expect_reject(nul_key, sizeof nul_key, "msgpack: map key at offset 1 contains a NUL byte");
    const unsigned char dup[] = {0x82, 0xa1, 'k', 0x01, 0xa1, 'k', 0x02};
    expect_reject(dup, sizeof dup, "msgpack: duplicate map key \"k\" at offset 4");
    const unsigned char ok[] = {0x82, 0xa1, 'k', 0x01, 0xa2, 'k', 'k', 0x02};
    json_t *j = decode(ok, sizeof ok);
    assert_non_null(j);
    assert_int_equal(json_object_size(j), 2);
    json_decref(j);
}

static void test_depth(void **state)
{
    (void)state;
    unsigned char buf[64];
    /* 32 nested one-element arrays around nil decode; 33 do not */
    memset(buf, 0x91, 32);
    buf[32] = 0xc0;
    json_t *j = decode(buf, 33);
    assert_non_null(j);
    json_decref(j);
    memset(buf, 0x91, 33);
    buf[33] = 0xc0;
    expect_reject(buf, 34, "msgpack: nesting deeper than 32 levels at offset 32");
    /* an empty container is a level too */
    memset(buf, 0x91, 32);
    buf[32] = 0x90;
    expect_reject(buf, 33, "msgpack: nesting deeper than 32 levels at offset 32");

    /* the encoder refuses what the decoder would */
    json_t *root = json_array(), *cur = root;
    for (int i = 1; i < 32; i++) {
        json_t *n = json_array();
        json_array_append_new(cur, n);
        cur = n;
    }
    size_t len;
    char *mp = mpack_from_json(root, &len);
    assert_non_null(mp);
    free(mp);
    json_array_append_new(cur, json_object());
    assert_null(mpack_from_json(root, &len));
    size_t bytes, items;
    assert_int_equal(mpack_measure(root, &bytes, &items), -1);
    json_decref(root);
    assert_null(mpack_from_json(NULL, &len));
}

static void test_limits(void **state)
{
    (void)state;
    /* MPACK_MAX_ITEMS counts every value, the container included */
    size_t n = MPACK_MAX_ITEMS; /* array + n nils = n + 1 values */
    unsigned char *b = malloc(n + 5);
    b[0] = 0xdd;
    b[1] = (unsigned char)(n >> 24);
    b[2] = (unsigned char)(n >> 16);
    b[3] = (unsigned char)(n >> 8);
    b[4] = (unsigned char)n;
    memset(b + 5, 0xc0, n);
    char want[128];
    snprintf(want, sizeof want, "msgpack: more than 100000 values (at offset %zu)", n + 4);
    expect_reject(b, n + 5, want);
    n--;
    b[4] = (unsigned char)n;
    json_t *j = decode(b, n + 5);
    assert_non_null(j);
    assert_int_equal(json_array_size(j), n);
    json_decref(j);
    free(b);

    /* MPACK_MAX_BYTES: one string just over the limit */
    size_t big = MPACK_MAX_BYTES + 1;
    b = malloc(big);
    memset(b, 'a', big);
    b[0] = 0xdb;
    b[1] = 0;
    b[2] = (unsigned char)((big - 5) >> 16);
    b[3] = (unsigned char)((big - 5) >> 8);
    b[4] = (unsigned char)(big - 5);
    expect_reject(b, big, "msgpack: 1048577 bytes exceeds the limit of 1048576");
    /* and one that fits exactly */
    size_t fit = MPACK_MAX_BYTES;
    b[2] = (unsigned char)((fit - 5) >> 16);
    b[3] = (unsigned char)((fit - 5) >> 8);
    b[4] = (unsigned char)(fit - 5);
    j = decode(b, fit);
    assert_non_null(j);
    assert_int_equal(json_string_length(j), fit - 5);
    json_decref(j);
    free(b);
}

static void test_small_error_buffer(void **state)
{
    (void)state;
    const unsigned char never[] = {0xc1};
    char small[5];
    assert_null(mpack_to_json((const char *)never, 1, small, sizeof small));
    assert_string_equal(small, "msgp");
    assert_null(mpack_to_json((const char *)never, 1, NULL, 0));
    assert_null(mpack_to_json(NULL, 0, NULL, 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_scalars),
        cmocka_unit_test(test_roundtrip_sizes),
        cmocka_unit_test(test_key_order_and_spec),
        cmocka_unit_test(test_interop_with_msgpack_c),
        cmocka_unit_test(test_huge_length_attack),
        cmocka_unit_test(test_every_prefix_rejected),
        cmocka_unit_test(test_types_json_cannot_carry),
        cmocka_unit_test(test_string_content),
        cmocka_unit_test(test_depth),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_small_error_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_utf8: bytes made safe for PostgreSQL text columns. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "pgarr.h"
#include "utf8.h"

static void test_valid_text_unchanged(void **state)
{
    (void)state;
    const char *s = "hello \xc3\xa9t\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80";
    char *out = utf8_sanitize(s, strlen(s));
    assert_string_equal(out, s);
    free(out);
}

static void test_invalid_bytes_replaced(void **state)
{
    (void)state;
    /* NUL, a lone continuation byte, an overlong '/', a truncated sequence, a surrogate */
    const char s[] = {'a', 0, 'b', (char)0x80, 'c', (char)0xc0, (char)0xaf, 'd', (char)0xed, (char)0xa0,
                      (char)0x80, 'e', (char)0xe2, (char)0x82};
    char *out = utf8_sanitize(s, sizeof s);
    assert_non_null(strstr(out, "a\xef\xbf\xbd" "b\xef\xbf\xbd" "c"));
    assert_null(memchr(out, 0, strlen(out)));
    assert_int_equal(out[strlen(out) - 1], (char)0xbd); /* truncated tail replaced too */
    free(out);
}

static void test_preview_is_ascii(void **state)
{
    (void)state;
    char *p = utf8_preview("ab\x01\xff", 4, 100);
    assert_string_equal(p, "ab\\x01\\xff");
    free(p);
    char big[5000];
    memset(big, 'x', sizeof big);
    p = utf8_preview(big, sizeof big, 10);
    assert_string_equal(p, "xxxxxxxxxx...");
    free(p);
}

static void test_array_literal_escapes(void **state)
{
    (void)state;
    pgarr_t *a = pgarr_new();
    pgarr_add(a, "plain");
    pgarr_add(a, "q\"uo\\te");
    pgarr_add(a, NULL);
    pgarr_add_long(a, -42);
    char *s = pgarr_finish(a);
    assert_string_equal(s, "{\"plain\",\"q\\\"uo\\\\te\",NULL,-42}");
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_text_unchanged),
        cmocka_unit_test(test_invalid_bytes_replaced),
        cmocka_unit_test(test_preview_is_ascii),
        cmocka_unit_test(test_array_literal_escapes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

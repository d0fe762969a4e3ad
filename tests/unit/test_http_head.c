/* test_http_head: what the manager's HTTP edge reads from a request head. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "http_head.h"

static void parse(const char *s, struct http_head *h)
{
    http_head_parse(s, strlen(s), h);
}

static void test_plain_request(void **state)
{
    (void)state;
    struct http_head h;
    parse("POST /v1/tasks?x=1 HTTP/1.1\r\nHost: a\r\ncontent-length:  42 \r\n"
          "Authorization: Bearer abc\r\n\r\n", &h);
    assert_string_equal(h.path, "/v1/tasks");
    assert_int_equal(h.n_content_length, 1);
    assert_int_equal(h.content_length, 42);
    assert_false(h.bad_content_length);
    assert_int_equal(h.n_authorization, 1);
    assert_string_equal(h.authorization, "Bearer abc");
    assert_false(h.chunked);
}

static void test_framing_problems(void **state)
{
    (void)state;
    struct http_head h;
    parse("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", &h);
    assert_int_equal(h.n_content_length, 2);
    parse("POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n", &h);
    assert_true(h.bad_content_length);
    parse("POST / HTTP/1.1\r\nContent-Length: 1234567890123456789\r\n\r\n", &h);
    assert_true(h.bad_content_length);
    parse("POST / HTTP/1.1\nTransfer-Encoding: Chunked\n\n", &h);
    assert_true(h.chunked);
    parse("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", &h);
    assert_int_equal(h.n_transfer_encoding, 1);
    assert_false(h.chunked);
    parse("GET / HTTP/1.1\r\nX-A: 1\r\n  folded\r\n\r\n", &h);
    assert_true(h.folded);
    parse("GET / HTTP/1.1\r\nno colon here\r\n\r\n", &h);
    assert_true(h.no_colon);
}

static void test_absolute_form_and_long_token(void **state)
{
    (void)state;
    struct http_head h;
    parse("GET http://example.com:8080/healthz HTTP/1.1\r\n\r\n", &h);
    assert_string_equal(h.path, "/healthz");
    char big[HTTP_HEAD_AUTH_MAX + 100];
    memset(big, 'a', sizeof big);
    char req[sizeof big + 64];
    snprintf(req, sizeof req, "GET / HTTP/1.1\r\nAuthorization: %.*s\r\n\r\n", (int)sizeof big, big);
    parse(req, &h);
    assert_true(h.auth_too_long);
    assert_string_equal(h.authorization, "");
}

/* The console's session cookie is found among others (ui_session.h); a
 * cookie whose name only ends or starts like it is not it. */
static void test_session_cookie(void **state)
{
    (void)state;
    struct http_head h;
    parse("GET /v1/tasks HTTP/1.1\r\nCookie: a=1; xdevsys_session=no; devsys_session=abc_-9 ;b=2\r\n\r\n", &h);
    assert_string_equal(h.session, "abc_-9");
    parse("GET / HTTP/1.1\r\nCookie: devsys_sessionx=1; devsys_session=\r\n\r\n", &h);
    assert_string_equal(h.session, "");
    parse("GET / HTTP/1.1\r\nCookie: a=1\r\nCookie: devsys_session=second\r\n\r\n", &h);
    assert_string_equal(h.session, "second");
    char out[8];
    assert_int_equal(uisess_cookie_value("devsys_session=toolongvalue", out, sizeof out), -1);
    assert_int_equal(uisess_cookie_value(NULL, out, sizeof out), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_request),
        cmocka_unit_test(test_framing_problems),
        cmocka_unit_test(test_absolute_form_and_long_token),
        cmocka_unit_test(test_session_cookie),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

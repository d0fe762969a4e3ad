/* test_notify: Standard Webhooks signing (common/whsig.c) against the spec's
 * published test vector (standard-webhooks libraries' test_sign_function), with
 * several secrets for rotation; and the notify section validator
 * (proto/kind_notify.c): every rule gives a message naming the field. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "spec.h"
#include "whsig.h"

#define VEC_SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define VEC_ID "msg_p5jXN8AQM9LWM0D4loKWxJek"
#define VEC_TS 1614265330LL
#define VEC_BODY "{\"test\": 2432232314}"
#define VEC_SIG "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

static void test_published_vector(void **state)
{
    (void)state;
    char sig[WHSIG_ONE_LEN];
    assert_int_equal(whsig_sign(VEC_SECRET, VEC_ID, VEC_TS, VEC_BODY, strlen(VEC_BODY), sig), 0);
    assert_string_equal(sig, VEC_SIG);
    /* the whsec_ prefix is optional */
    assert_int_equal(whsig_sign("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", VEC_ID, VEC_TS, VEC_BODY, strlen(VEC_BODY), sig), 0);
    assert_string_equal(sig, VEC_SIG);
    /* one byte of the body, the id or the timestamp changed: another signature */
    whsig_sign(VEC_SECRET, VEC_ID, VEC_TS, "{\"test\": 2432232315}", strlen(VEC_BODY), sig);
    assert_string_not_equal(sig, VEC_SIG);
    whsig_sign(VEC_SECRET, VEC_ID, VEC_TS + 1, VEC_BODY, strlen(VEC_BODY), sig);
    assert_string_not_equal(sig, VEC_SIG);
}

static void test_rotation_header(void **state)
{
    (void)state;
    const char *secrets[] = {"whsec_c2Vjb25k", VEC_SECRET, "whsec_%%%not-base64"};
    char *h = whsig_header(secrets, 3, VEC_ID, VEC_TS, VEC_BODY, strlen(VEC_BODY));
    /* python3: base64(hmac(b"second", id.ts.body)) */
    assert_string_equal(h, "v1,WWQQXy0Z7arKJ9d3BF9mEO8o7FPlQSx373J1Xt8Puqw= " VEC_SIG);
    free(h);
    assert_true(whsig_secret_ok(VEC_SECRET));
    assert_false(whsig_secret_ok("whsec_"));
    assert_false(whsig_secret_ok("whsec_!!"));
    assert_false(whsig_secret_ok(NULL));
}

static char err[SPEC_ERR_MAX];

static void expect(const char *section, const char *msg)
{
    char *text = NULL;
    if (asprintf(&text, "{\"kind\":\"notify\",\"notify\":%s}", section) < 0)
        fail();
    spec_t *s = spec_parse(text, strlen(text), err, sizeof err);
    free(text);
    if (!msg) {
        if (!s)
            fail_msg("refused: %s: %s", section, err);
        spec_free(s);
        return;
    }
    if (s) {
        spec_free(s);
        fail_msg("accepted: %s", section);
    }
    assert_string_equal(err, msg);
}

static void test_section(void **state)
{
    (void)state;
    const char *t = "{\"kind\":\"notify\",\"notify\":{\"url\":\"http://127.0.0.1:9/hook\",\"body\":\"{\\\"a\\\":1}\","
                    "\"secret\":\"ops\",\"webhook_id\":\"msg_1\",\"destination\":\"ops\",\"timeout_s\":2.5,"
                    "\"content_type\":\"application/json\"}}";
    spec_t *s = spec_parse(t, strlen(t), err, sizeof err);
    assert_non_null(s);
    assert_string_equal(s->notify_url, "http://127.0.0.1:9/hook");
    assert_string_equal(s->notify_body, "{\"a\":1}");
    assert_int_equal(s->notify_body_len, 7);
    assert_string_equal(s->notify_secret, "ops");
    assert_string_equal(s->notify_webhook_id, "msg_1");
    assert_true(s->notify_timeout_s == 2.5);
    spec_free(s);
    expect("{\"url\":\"https://h/x\",\"body\":\"\"}", NULL);
    t = "{\"kind\":\"notify\"}";
    assert_null(spec_parse(t, strlen(t), err, sizeof err));
    assert_string_equal(err, "notify: required for kind notify");
    expect("{\"body\":\"x\"}", "notify.url: required (where the webhook is POSTed)");
    expect("{\"url\":\"http://h/\"}", "notify.body: required (the bytes POSTed and signed)");
    expect("{\"url\":\"ftp://h/\",\"body\":\"x\"}", "notify.url: must be an http:// or https:// URL of at most 2048 bytes");
    expect("{\"url\":\"http://\",\"body\":\"x\"}", "notify.url: must be an http:// or https:// URL of at most 2048 bytes");
    expect("{\"url\":\"http://h/a b\",\"body\":\"x\"}", "notify.url: must be an http:// or https:// URL of at most 2048 bytes");
    expect("{\"url\":\"http://h/\",\"body\":{}}", "notify.body: must be a string (the exact bytes sent) of at most 262144 bytes");
    expect("{\"url\":\"http://h/\",\"body\":\"x\",\"secret\":\"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"}",
           "notify.secret: names a secret of the agents' DEVSYS_NOTIFY_SECRETS_FILE; a raw secret (whsec_...) is"
           " refused so that it is never stored");
    expect("{\"url\":\"http://h/\",\"body\":\"x\",\"secret\":\"a/b\"}",
           "notify.secret: must name a secret: 1 to 64 characters of [A-Za-z0-9_.-]");
    expect("{\"url\":\"http://h/\",\"body\":\"x\",\"webhook_id\":\"\"}",
           "notify.webhook_id: must be 1 to 128 characters of [A-Za-z0-9_.-]");
    expect("{\"url\":\"http://h/\",\"body\":\"x\",\"timeout_s\":0}", "notify.timeout_s: must be a number from 0.1 to 300");
    expect("{\"url\":\"http://h/\",\"body\":\"x\",\"content_type\":\"a\\r\\nX: y\"}",
           "notify.content_type: must be a string of 1 to 128 bytes on one line");
    expect("{\"url\":\"http://h/\",\"body\":\"x\",\"headers\":{}}", "notify.headers: unknown field");
    t = "{\"kind\":\"exec\",\"command\":[\"true\"],\"notify\":{}}";
    assert_null(spec_parse(t, strlen(t), err, sizeof err));
    assert_string_equal(err, "notify: only allowed for kinds notify");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_published_vector),
        cmocka_unit_test(test_rotation_header),
        cmocka_unit_test(test_section),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

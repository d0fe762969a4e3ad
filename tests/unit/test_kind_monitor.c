/* test_kind_monitor: the "monitor" section (proto/kind_monitor.c): what each
 * probe type accepts, its defaults, and the message naming what is wrong. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "kind.h"
#include "spec.h"

static char err[SPEC_ERR_MAX];

/* A monitor spec with the given section members. */
static spec_t *parse(const char *members)
{
    char text[4096];
    snprintf(text, sizeof text, "{\"kind\":\"monitor\",\"monitor\":{%s}}", members);
    err[0] = '\0';
    return spec_parse(text, strlen(text), err, sizeof err);
}

static void refused(const char *members, const char *msg)
{
    spec_t *s = parse(members);
    if (s)
        fail_msg("accepted: %s", members);
    if (strcmp(err, msg) != 0)
        fail_msg("for %s\n got: %s\nwant: %s", members, err, msg);
}

static void test_http(void **state)
{
    (void)state;
    spec_t *s = parse("\"type\":\"http\",\"url\":\"https://example.com/health\",\"body_regex\":\"ready|ok\","
                      "\"expect_status\":[200,204],\"max_latency_ms\":500,\"cert_min_days\":14,\"check\":\"web.health\"");
    assert_non_null(s);
    assert_int_equal(s->monitor.type, MONITOR_HTTP);
    assert_string_equal(s->monitor.url, "https://example.com/health");
    assert_string_equal(s->monitor.body_regex, "ready|ok");
    assert_int_equal(json_array_size(s->monitor.expect_status), 2);
    assert_int_equal(s->monitor.max_latency_ms, 500);
    assert_true(s->monitor.has_cert_min_days && s->monitor.cert_min_days == 14);
    assert_string_equal(s->monitor.check, "web.health");
    assert_true(s->monitor.timeout_s == KIND_MONITOR_TIMEOUT_DEFAULT);
    assert_int_equal(s->monitor.head, 0);
    assert_int_equal(s->monitor.max_body_bytes, 0); /* the default, 1 MiB, applies */
    assert_string_equal(kind_monitor_type_name(s->monitor.type), "http");
    spec_free(s);
    s = parse("\"type\":\"http\",\"url\":\"http://127.0.0.1:8080/\",\"method\":\"HEAD\",\"expect_status\":301,"
              "\"timeout_s\":0.5,\"max_body_bytes\":100");
    assert_non_null(s);
    assert_int_equal(s->monitor.head, 1);
    assert_true(s->monitor.timeout_s == 0.5);
    assert_int_equal(json_integer_value(s->monitor.expect_status), 301);
    assert_int_equal(s->monitor.max_body_bytes, 100);
    spec_free(s);

    refused("\"type\":\"http\",\"url\":\"http://h/\",\"body_regex\":\"(\"",
            "monitor.body_regex: invalid regular expression /(/: Unmatched ( or \\(");
    refused("\"type\":\"http\",\"url\":\"ftp://h/\"",
            "monitor.url: must be an http:// or https:// URL of at most 2048 bytes");
    refused("\"type\":\"http\",\"url\":\"http://\"", "monitor.url: must be an http:// or https:// URL of at most 2048 bytes");
    refused("\"type\":\"http\"", "monitor.url: required for type http");
    refused("\"type\":\"http\",\"url\":\"http://h/\",\"cert_min_days\":3", "monitor.cert_min_days: only for https:// URLs");
    refused("\"type\":\"http\",\"url\":\"http://h/\",\"method\":\"POST\"", "monitor.method: must be \"GET\" or \"HEAD\"");
    refused("\"type\":\"http\",\"url\":\"http://h/\",\"method\":\"HEAD\",\"body_regex\":\"x\"",
            "monitor.body_regex: needs method GET (a HEAD answer has no body)");
    refused("\"type\":\"http\",\"url\":\"http://h/\",\"expect_status\":[200,700]",
            "monitor.expect_status: must be a status from 100 to 599 or an array of 1 to 32 of them");
    refused("\"type\":\"http\",\"url\":\"http://h/\",\"expect_status\":[]",
            "monitor.expect_status: must be a status from 100 to 599 or an array of 1 to 32 of them");
    refused("\"type\":\"http\",\"url\":\"http://h/\",\"max_body_bytes\":104857600",
            "monitor.max_body_bytes: must be an integer from 1 to 16777216");
    refused("\"type\":\"http\",\"url\":\"http://h/\",\"timeout_s\":61", "monitor.timeout_s: must be a number from 0.1 to 60");
    refused("\"type\":\"http\",\"url\":\"http://h/\",\"timeout_s\":0.05", "monitor.timeout_s: must be a number from 0.1 to 60");
    refused("\"type\":\"http\",\"url\":\"http://h/\",\"port\":80", "monitor.port: unknown field for type http");
    refused("\"type\":\"http\",\"url\":\"http://h/\",\"check\":\"a b\"",
            "monitor.check: must be a check name: 1 to 128 characters of [A-Za-z0-9_.-]");
    refused("\"type\":\"https\",\"url\":\"http://h/\"", "monitor.type: required: one of http, tcp, dns, script, log");
    refused("\"url\":\"http://h/\"", "monitor.type: required: one of http, tcp, dns, script, log");
}

static void test_tcp_dns(void **state)
{
    (void)state;
    spec_t *s = parse("\"type\":\"tcp\",\"host\":\"127.0.0.1\",\"port\":5432,\"timeout_s\":2");
    assert_non_null(s);
    assert_string_equal(s->monitor.host, "127.0.0.1");
    assert_int_equal(s->monitor.port, 5432);
    spec_free(s);
    refused("\"type\":\"tcp\",\"host\":\"h\"", "monitor.port: required for type tcp");
    refused("\"type\":\"tcp\",\"port\":80", "monitor.host: required for type tcp");
    refused("\"type\":\"tcp\",\"host\":\"h\",\"port\":70000", "monitor.port: must be an integer from 1 to 65535");
    refused("\"type\":\"tcp\",\"host\":\"a/b\",\"port\":1",
            "monitor.host: must be a host name or address: 1 to 253 of [A-Za-z0-9.:_-]");

    s = parse("\"type\":\"dns\",\"name\":\"localhost\",\"expect\":[\"127.0.0.1\",\"::1\"]");
    assert_non_null(s);
    assert_string_equal(s->monitor.dns_name, "localhost");
    assert_int_equal(json_array_size(s->monitor.dns_expect), 2);
    spec_free(s);
    refused("\"type\":\"dns\"", "monitor.name: required for type dns");
    refused("\"type\":\"dns\",\"name\":\"x\",\"expect\":[\"300.1.1.1\"]", "monitor.expect[0]: must be an IPv4 or IPv6 address");
    refused("\"type\":\"dns\",\"name\":\"x\",\"expect\":[]",
            "monitor.expect: must be an array of 1 to 32 IPv4 or IPv6 addresses");
}

static void test_script_log(void **state)
{
    (void)state;
    spec_t *s = parse("\"type\":\"script\",\"command\":[\"sh\",\"-c\",\"exit 0\"]");
    assert_non_null(s);
    assert_int_equal(json_array_size(s->monitor.command), 3);
    spec_free(s);
    refused("\"type\":\"script\"", "monitor.command: required for type script");
    refused("\"type\":\"script\",\"command\":[]", "monitor.command: must be an array of 1 to 256 strings (argv)");
    refused("\"type\":\"script\",\"command\":[\"\"]", "monitor.command[0]: must be a string of at most 4096 bytes, not empty");

    s = parse("\"type\":\"log\",\"path\":\"/var/log/app.log\",\"pattern\":\"ERROR|FATAL\",\"offset\":100");
    assert_non_null(s);
    assert_string_equal(s->monitor.log_path, "/var/log/app.log");
    assert_string_equal(s->monitor.log_pattern, "ERROR|FATAL");
    assert_true(s->monitor.has_log_offset && s->monitor.log_offset == 100);
    spec_free(s);
    s = parse("\"type\":\"log\",\"path\":\"/l\",\"pattern\":\"E\"");
    assert_non_null(s);
    assert_int_equal(s->monitor.has_log_offset, 0); /* from the end of the file */
    spec_free(s);
    refused("\"type\":\"log\",\"path\":\"app.log\",\"pattern\":\"E\"",
            "monitor.path: must be an absolute path of at most 4096 bytes");
    /* stacked or nested repetitions are refused before regcomp expands them
     * (the fuzzer's "F" and 57 "+" took regcomp minutes and 3 GB; 30 here) */
    refused("\"type\":\"log\",\"path\":\"/l\",\"pattern\":\"|F++++++++++++++++++++++++++++++TAL\"",
            "monitor.pattern: invalid regular expression /|F++++++++++++++++++++++++++++++TAL/: "
            "repeats too much (stacked or nested repetitions expand past 10000 nodes)");
    refused("\"type\":\"log\",\"path\":\"/l\",\"pattern\":\"((a{100}){100}){100}\"",
            "monitor.pattern: invalid regular expression /((a{100}){100}){100}/: "
            "repeats too much (stacked or nested repetitions expand past 10000 nodes)");
    s = parse("\"type\":\"log\",\"path\":\"/l\",\"pattern\":\"^[0-9]{1,3}(\\\\.[0-9]{1,3}){3} [a-z]+ (GET|POST) /[^ ]*\"");
    assert_non_null(s);
    spec_free(s);
    refused("\"type\":\"log\",\"path\":\"/l\",\"pattern\":\"a{1\"",
            "monitor.pattern: invalid regular expression /a{1/: Unmatched \\{");
    refused("\"type\":\"log\",\"path\":\"/l\",\"pattern\":\"E\",\"offset\":-1",
            "monitor.offset: must be a byte offset: an integer from 0 to 2^53");
    refused("\"type\":\"log\",\"path\":\"/l\"", "monitor.pattern: required for type log");
}

static void test_section_rules(void **state)
{
    (void)state;
    err[0] = '\0';
    const char *t = "{\"kind\":\"monitor\"}";
    assert_null(spec_parse(t, strlen(t), err, sizeof err));
    assert_string_equal(err, "monitor: required for kind monitor");
    t = "{\"kind\":\"exec\",\"command\":[\"true\"],\"monitor\":{\"type\":\"dns\",\"name\":\"x\"}}";
    assert_null(spec_parse(t, strlen(t), err, sizeof err));
    assert_string_equal(err, "monitor: only allowed for kinds monitor");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_http),
        cmocka_unit_test(test_tcp_dns),
        cmocka_unit_test(test_script_log),
        cmocka_unit_test(test_section_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_metrics: the exposition groups each family's series under one HELP and
 * TYPE whatever order they were created in, histograms render cumulative
 * buckets with +Inf, _sum and _count, and a lookup finds the same series. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "metrics.h"

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

static void test_families_together(void **state)
{
    (void)state;
    metric_add(metric_counter("t_total", "q=\"a\"", "help a"), 1);
    metric_set(metric_gauge("t_gauge", NULL, "a gauge"), 7);
    metric_add(metric_counter("t_total", "q=\"b\"", "help b"), 2);
    metric_add(metric_counter("t_total", "q=\"a\"", "ignored"), 1); /* the same series */
    char *s = metrics_render();
    assert_non_null(strstr(s, "# HELP t_total help a\n# TYPE t_total counter\nt_total{q=\"a\"} 2\n"
                              "t_total{q=\"b\"} 2\n# HELP t_gauge a gauge\n# TYPE t_gauge gauge\nt_gauge 7\n"));
    assert_int_equal(count(s, "# TYPE t_total"), 1);
    free(s);
    metrics_free();
}

static void test_histogram(void **state)
{
    (void)state;
    static const double b[] = {0.1, 1};
    metric_t *h = metric_histogram("t_seconds", "k=\"x\"", "a histogram", b, 2);
    metric_observe(h, 0.05);
    metric_observe(h, 0.1); /* le is inclusive */
    metric_observe(h, 0.5);
    metric_observe(h, 30);
    metric_observe(metric_histogram("t_plain", NULL, "no labels", b, 2), 2);
    char *s = metrics_render();
    assert_non_null(strstr(s, "# TYPE t_seconds histogram\n"
                              "t_seconds_bucket{k=\"x\",le=\"0.1\"} 2\n"
                              "t_seconds_bucket{k=\"x\",le=\"1\"} 3\n"
                              "t_seconds_bucket{k=\"x\",le=\"+Inf\"} 4\n"
                              "t_seconds_sum{k=\"x\"} 30.649999999999999\n"
                              "t_seconds_count{k=\"x\"} 4\n"));
    assert_non_null(strstr(s, "t_plain_bucket{le=\"1\"} 0\nt_plain_bucket{le=\"+Inf\"} 1\nt_plain_sum 2\n"
                              "t_plain_count 1\n"));
    free(s);
    metrics_free();
}

static void test_many_series(void **state)
{
    (void)state;
    char l[32];
    for (int i = 0; i < 10000; i++) {
        snprintf(l, sizeof l, "i=\"%d\"", i);
        metric_add(metric_counter("t_many_total", l, "many"), i);
    }
    snprintf(l, sizeof l, "i=\"%d\"", 4242);
    assert_true(metric_value(metric_counter("t_many_total", l, "many")) == 4242);
    char *s = metrics_render();
    assert_int_equal(count(s, "\nt_many_total{"), 10000);
    free(s);
    metrics_free();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_families_together),
        cmocka_unit_test(test_histogram),
        cmocka_unit_test(test_many_series),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

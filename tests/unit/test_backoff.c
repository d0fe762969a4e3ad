/* test_backoff: retry delays follow min(max, initial * factor^(attempt-1)),
 * with full jitter inside [0, delay]. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "backoff.h"

static void test_exponential_without_jitter(void **state)
{
    (void)state;
    struct spec_retry p = {.max_attempts = 10, .initial_s = 1, .factor = 2, .max_s = 300, .jitter = 0};
    assert_true(backoff_delay_s(&p, 1, 0.5) == 1.0);
    assert_true(backoff_delay_s(&p, 2, 0.5) == 2.0);
    assert_true(backoff_delay_s(&p, 5, 0.5) == 16.0);
    assert_true(backoff_delay_s(&p, 20, 0.5) == 300.0); /* capped */
    assert_true(backoff_delay_s(&p, 100000, 0.5) == 300.0); /* no overflow to inf */
    assert_true(backoff_delay_s(&p, 0, 0.5) == 1.0);         /* attempt < 1 reads as 1 */
}

static void test_full_jitter(void **state)
{
    (void)state;
    struct spec_retry p = {.max_attempts = 10, .initial_s = 2, .factor = 3, .max_s = 60, .jitter = 1};
    assert_true(backoff_delay_s(&p, 3, 0.0) == 0.0);
    assert_true(backoff_delay_s(&p, 3, 0.5) == 9.0);
    double lo = 1e9, hi = -1;
    for (int i = 0; i < 10000; i++) {
        double u = backoff_uniform();
        assert_true(u >= 0.0 && u < 1.0);
        double d = backoff_delay_s(&p, 3, u);
        lo = d < lo ? d : lo;
        hi = d > hi ? d : hi;
    }
    assert_true(lo >= 0.0 && lo < 1.0);  /* the draws cover the range */
    assert_true(hi <= 18.0 && hi > 17.0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exponential_without_jitter),
        cmocka_unit_test(test_full_jitter),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_kind: the kind registry (proto/kind.c) and the agent's handler table
 * (agents/handlers.c) list the same kinds, so a kind is never accepted at
 * submit without an agent able to run it, nor runnable without validation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "handler.h"
#include "kind.h"

static void test_every_kind_has_a_handler(void **state)
{
    (void)state;
    size_t n = 0;
    for (const kind_def_t *k; (k = kind_at(n)); n++) {
        if (!handler_find(k->name))
            fail_msg("kind %s is in the registry but the agent has no handler for it", k->name);
        assert_ptr_equal(kind_find(k->name), k);
    }
    assert_int_equal(n, 8);
}

static void test_every_handler_kind_is_registered(void **state)
{
    (void)state;
    size_t n = 0;
    for (const handler_ops_t *h; (h = handler_at(n)); n++) {
        assert_non_null(h->kinds[0]);
        for (const char *const *k = h->kinds; *k; k++) {
            if (!kind_find(*k))
                fail_msg("the agent has a handler for %s, which is not in the registry", *k);
            assert_ptr_equal(handler_find(*k), h); /* one handler per kind */
        }
    }
    assert_int_equal(n, 7);
    assert_ptr_equal(handler_find("coding"), &handler_exec);
    assert_ptr_equal(handler_find("deploy"), &handler_deploy);
    assert_ptr_equal(handler_find("notify"), &handler_notify);
    assert_ptr_equal(handler_find("monitor"), &handler_monitor);
    assert_null(handler_find("probe"));
    assert_null(handler_find(NULL));
}

static void test_registry_rows(void **state)
{
    (void)state;
    char names[256];
    assert_string_equal(kind_names(names, sizeof names), "exec, coding, noop, sleep, testing, deploy, notify, monitor");
    assert_string_equal(kind_names(names, 8), "exec, c"); /* truncated, terminated */
    assert_true(kind_find("exec")->flags & KIND_NEEDS_COMMAND);
    assert_true(kind_find("coding")->flags & KIND_NEEDS_COMMAND);
    assert_int_equal(kind_find("noop")->flags, KIND_INSTANT);
    assert_int_equal(kind_find("sleep")->flags, 0);
    assert_int_equal(kind_find("testing")->flags, KIND_NEEDS_COMMAND | KIND_NEEDS_SECTION);
    assert_ptr_equal(handler_find("testing"), &handler_testing);
    assert_int_equal(kind_find("notify")->flags, KIND_NEEDS_SECTION);
    assert_ptr_equal(handler_find("notify"), &handler_notify);
    assert_true(kind_section_known("sleep"));
    assert_int_equal(kind_find("deploy")->flags, KIND_NEEDS_SECTION);
    assert_true(kind_section_known("deploy"));
    assert_int_equal(kind_find("monitor")->flags, KIND_NEEDS_SECTION);
    assert_true(kind_section_known("monitor"));
    assert_false(kind_section_known("probe"));
    assert_string_equal(kind_section_owners("sleep", names, sizeof names), "sleep and noop");
    for (const char *const *gone = (const char *const[]){"probe", "webhook", NULL};
         *gone; gone++)
        assert_null(kind_find(*gone));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_kind_has_a_handler),
        cmocka_unit_test(test_every_handler_kind_is_registered),
        cmocka_unit_test(test_registry_rows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* handlers: the agent's one table of handlers, one file each, as libevent's
 * eventops[]. Each names the kinds it runs; every kind of the registry
 * (proto/kind.c) has exactly one (tests/unit/test_kind.c checks both ways). */
#include "handler.h"

#include <string.h>

static const handler_ops_t *const handlers[] = {
    &handler_exec,
    &handler_noop,
    &handler_sleep,
    &handler_testing,
    &handler_deploy,
    &handler_notify,
    &handler_monitor,
};
#define NHANDLERS (sizeof handlers / sizeof handlers[0])

const handler_ops_t *handler_find(const char *kind)
{
    if (!kind)
        return NULL;
    for (size_t i = 0; i < NHANDLERS; i++)
        for (const char *const *k = handlers[i]->kinds; *k; k++)
            if (strcmp(*k, kind) == 0)
                return handlers[i];
    return NULL;
}

const handler_ops_t *handler_at(size_t i)
{
    return i < NHANDLERS ? handlers[i] : NULL;
}

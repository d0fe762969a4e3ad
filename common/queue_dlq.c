/* queue_dlq: the dead-letter stream devsys:{Q}:dlq as the manager reads and
 * cleans it (see queue.h); letters are written by queue_bury. */
#include "queue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue_internal.h"
#include "xalloc.h"

int queue_dlq_len(rc_t *rc, const char *prefix, const char *queue, queue_count_fn *fn, void *arg)
{
    char key[256];
    const char *argv[] = {"XLEN", queue_key(key, sizeof key, prefix, queue, "dlq")};
    return queue_send(rc, queue_count_reply, (queue_fn *)fn, arg, 2, argv, NULL);
}

static int xrange(rc_t *rc, const char *prefix, const char *queue, const char *start, const char *end,
                  const char *count, queue_entries_fn *fn, void *arg)
{
    char key[256];
    const char *argv[] = {"XRANGE", queue_key(key, sizeof key, prefix, queue, "dlq"), start, end, "COUNT", count};
    return queue_send(rc, queue_range_reply, (queue_fn *)fn, arg, count ? 6 : 4, argv, NULL);
}

int queue_dlq_range(rc_t *rc, const char *prefix, const char *queue, const char *after, long count,
                    queue_entries_fn *fn, void *arg)
{
    char start[64], cnt[24];
    snprintf(start, sizeof start, "%s%s", after && after[0] ? "(" : "", after && after[0] ? after : "-");
    snprintf(cnt, sizeof cnt, "%ld", count);
    return xrange(rc, prefix, queue, start, "+", cnt, fn, arg);
}

int queue_dlq_entry(rc_t *rc, const char *prefix, const char *queue, const char *entry_id, queue_entries_fn *fn,
                    void *arg)
{
    return xrange(rc, prefix, queue, entry_id, entry_id, NULL, fn, arg);
}

int queue_dlq_delete(rc_t *rc, const char *prefix, const char *queue, const char *entry_id, queue_count_fn *fn,
                     void *arg)
{
    return queue_dlq_delete_many(rc, prefix, queue, &entry_id, 1, fn, arg);
}

int queue_dlq_delete_many(rc_t *rc, const char *prefix, const char *queue, const char *const *entry_ids, size_t n,
                          queue_count_fn *fn, void *arg)
{
    char key[256];
    const char **argv = xmalloc((2 + n) * sizeof *argv);
    argv[0] = "XDEL";
    argv[1] = queue_key(key, sizeof key, prefix, queue, "dlq");
    memcpy(argv + 2, entry_ids, n * sizeof *entry_ids);
    int rv = queue_send(rc, queue_count_reply, (queue_fn *)fn, arg, (int)(2 + n), argv, NULL);
    free(argv);
    return rv;
}

int queue_dlq_clear(rc_t *rc, const char *prefix, const char *queue, queue_count_fn *fn, void *arg)
{
    char key[256];
    const char *argv[] = {"XTRIM", queue_key(key, sizeof key, prefix, queue, "dlq"), "MAXLEN", "0"};
    return queue_send(rc, queue_count_reply, (queue_fn *)fn, arg, 4, argv, NULL);
}

/* ARGV: task id, entry id pairs; returns the task ids whose entry is not in
 * the DLQ (an empty entry id is never there). */
static const char absent_lua[] =
    "local out = {}\n"
    "for i = 1, #ARGV, 2 do\n"
    "  local e = ARGV[i + 1]\n"
    "  if e == '' or #redis.call('XRANGE', KEYS[1], e, e) == 0 then out[#out + 1] = ARGV[i] end\n"
    "end\n"
    "return out\n";

int queue_dlq_absent(rc_t *rc, const char *prefix, const char *queue, const char *const *pairs, size_t npairs,
                     queue_strings_fn *fn, void *arg)
{
    char key[256];
    const char **argv = xmalloc((4 + 2 * npairs) * sizeof *argv);
    argv[0] = "EVAL";
    argv[1] = absent_lua;
    argv[2] = "1";
    argv[3] = queue_key(key, sizeof key, prefix, queue, "dlq");
    memcpy(argv + 4, pairs, 2 * npairs * sizeof *pairs);
    int rv = queue_send(rc, queue_strings_reply, (queue_fn *)fn, arg, (int)(4 + 2 * npairs), argv, NULL);
    free(argv);
    return rv;
}

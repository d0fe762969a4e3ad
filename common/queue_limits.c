/* queue_limits: a queue's concurrency cap and rate limit held in Redis for
 * all agents (see queue.h): one admit script, slot release and extension. */
#include "queue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue_internal.h"
#include "xalloc.h"

/* KEYS[1] running, KEYS[1+i] the rate bucket of member i; ARGV: cap, rate_n,
 * period_ms, lease_ms, then the members. A start is logged in the bucket
 * with its time; at most rate_n starts lie in any period (sliding window). */
static const char admit_lua[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local cap, rn, per, lease = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])\n"
    "local free = -1\n"
    "if cap > 0 then\n"
    "  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)\n"
    "  free = cap - redis.call('ZCARD', KEYS[1])\n"
    "end\n"
    "local out, wait, pruned = {}, 0, {}\n"
    "for i = 5, #ARGV do\n"
    "  local ok = free ~= 0\n"
    "  local bucket = KEYS[i - 3]\n"
    "  if ok and rn > 0 then\n"
    "    if not pruned[bucket] then\n"
    "      redis.call('ZREMRANGEBYSCORE', bucket, '-inf', now - per)\n"
    "      pruned[bucket] = true\n"
    "    end\n"
    "    if redis.call('ZCARD', bucket) >= rn then\n"
    "      ok = false\n"
    "      local old = redis.call('ZRANGE', bucket, 0, 0, 'WITHSCORES')\n"
    "      local w = math.max(1, tonumber(old[2]) + per - now + 1)\n"
    "      if wait <= 0 or w < wait then wait = w end\n"
    "    else\n"
    "      redis.call('ZADD', bucket, now, ARGV[i] .. '@' .. now)\n"
    "      redis.call('PEXPIRE', bucket, per * 2)\n"
    "    end\n"
    "  end\n"
    "  if ok and cap > 0 then\n"
    "    redis.call('ZADD', KEYS[1], now + lease, ARGV[i])\n"
    "    free = free - 1\n"
    "  end\n"
    "  if not ok and free == 0 and wait == 0 then wait = -1 end\n"
    "  out[#out + 1] = ok and 1 or 0\n"
    "end\n"
    "return {wait, unpack(out)}\n";

static void admit_reply(rc_t *rc, redisReply *r, void *arg)
{
    (void)rc;
    struct queue_call c = queue_call_take(arg);
    const char *err = queue_reply_err(r);
    if (!err[0] && (r->type != REDIS_REPLY_ARRAY || r->elements < 1 || r->element[0]->type != REDIS_REPLY_INTEGER))
        err = "unexpected reply from redis (not {wait, granted...})";
    if (err[0]) {
        ((queue_admit_fn *)c.fn)(c.arg, err, NULL, 0, 0);
        return;
    }
    size_t n = r->elements - 1;
    unsigned char *g = xmalloc(n + 1);
    for (size_t i = 0; i < n; i++)
        g[i] = r->element[i + 1]->type == REDIS_REPLY_INTEGER && r->element[i + 1]->integer == 1;
    ((queue_admit_fn *)c.fn)(c.arg, "", g, n, r->element[0]->integer);
    free(g);
}

int queue_admit(rc_t *rc, const char *prefix, const char *queue, const char *const *members,
                const char *const *rate_keys, size_t n, long cap, long rate_n, long rate_period_ms, long lease_ms,
                queue_admit_fn *fn, void *arg)
{
    size_t argc = 4 + n + 4 + n;
    const char **argv = xmalloc(argc * sizeof *argv);
    char (*keys)[256] = xmalloc((n + 1) * sizeof *keys);
    char nkeys[16], a[4][24];
    snprintf(nkeys, sizeof nkeys, "%zu", n + 1);
    snprintf(a[0], sizeof a[0], "%ld", cap);
    snprintf(a[1], sizeof a[1], "%ld", rate_n);
    snprintf(a[2], sizeof a[2], "%ld", rate_period_ms > 0 ? rate_period_ms : 1);
    snprintf(a[3], sizeof a[3], "%ld", lease_ms);
    argv[0] = "EVAL";
    argv[1] = admit_lua;
    argv[2] = nkeys;
    argv[3] = queue_key(keys[0], sizeof keys[0], prefix, queue, "running");
    for (size_t i = 0; i < n; i++) {
        if (rate_keys && rate_keys[i] && rate_keys[i][0])
            snprintf(keys[i + 1], sizeof keys[i + 1], "%s:{%s}:rate:%s", prefix, queue, rate_keys[i]);
        else
            queue_key(keys[i + 1], sizeof keys[i + 1], prefix, queue, "rate");
        argv[4 + i] = keys[i + 1];
    }
    for (int k = 0; k < 4; k++)
        argv[4 + n + (size_t)k] = a[k];
    for (size_t i = 0; i < n; i++)
        argv[8 + n + i] = members[i];
    int rv = queue_send(rc, admit_reply, (queue_fn *)fn, arg, (int)argc, argv, NULL);
    free(keys);
    free(argv);
    return rv;
}

int queue_slot_release(rc_t *rc, const char *prefix, const char *queue, const char *member, queue_count_fn *fn,
                       void *arg)
{
    char running[256];
    const char *argv[] = {"ZREM", queue_key(running, sizeof running, prefix, queue, "running"), member};
    return queue_send(rc, queue_count_reply, (queue_fn *)fn, arg, 3, argv, NULL);
}

static const char extend_lua[] =
    "local t = redis.call('TIME')\n"
    "local exp = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[1])\n"
    "for i = 2, #ARGV do redis.call('ZADD', KEYS[1], 'XX', exp, ARGV[i]) end\n"
    "return #ARGV - 1\n";

int queue_slot_extend(rc_t *rc, const char *prefix, const char *queue, const char *const *members, size_t n,
                      long lease_ms, queue_done_fn *fn, void *arg)
{
    char running[256], lease[24];
    snprintf(lease, sizeof lease, "%ld", lease_ms);
    const char **argv = xmalloc((n + 5) * sizeof *argv);
    argv[0] = "EVAL";
    argv[1] = extend_lua;
    argv[2] = "1";
    argv[3] = queue_key(running, sizeof running, prefix, queue, "running");
    argv[4] = lease;
    memcpy(argv + 5, members, n * sizeof *members);
    int rv = queue_send(rc, queue_done_reply, (queue_fn *)fn, arg, (int)(n + 5), argv, NULL);
    free(argv);
    return rv;
}

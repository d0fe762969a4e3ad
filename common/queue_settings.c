/* queue_settings: a queue's controls as agents read them from Redis (the
 * hash <prefix>:{Q}:settings, mirrored by the manager from PostgreSQL), and
 * what one queue holds (stats for the API). See queue.h. */
#include "queue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue_internal.h"

char *queue_settings_key(char *buf, size_t cap, const char *prefix, const char *queue)
{
    return queue_key(buf, cap, prefix, queue, "settings");
}

int queue_settings_write(rc_t *rc, const char *prefix, const char *queue, const struct queue_settings *s,
                         queue_done_fn *fn, void *arg)
{
    char key[256], v[5][24];
    snprintf(v[0], sizeof v[0], "%ld", s->concurrency);
    snprintf(v[1], sizeof v[1], "%ld", s->rate_n);
    snprintf(v[2], sizeof v[2], "%ld", s->rate_n ? s->rate_period_ms : 0);
    snprintf(v[3], sizeof v[3], "%lld", s->updated_at_ms);
    snprintf(v[4], sizeof v[4], "%d", s->paused ? 1 : 0);
    const char *argv[] = {"HSET",           queue_settings_key(key, sizeof key, prefix, queue),
                          "paused",         v[4],
                          "concurrency",    v[0],
                          "rate_n",         v[1],
                          "rate_period_ms", v[2],
                          "rate_per_key",   s->rate_per_key ? "1" : "0",
                          "updated_at",     v[3]};
    return queue_send(rc, queue_done_reply, (queue_fn *)fn, arg, (int)(sizeof argv / sizeof *argv), argv, NULL);
}

static long long num(const char *s)
{
    return strtoll(s, NULL, 10);
}

static void settings_reply(rc_t *rc, redisReply *r, void *arg)
{
    (void)rc;
    struct queue_call c = queue_call_take(arg);
    const char *err = queue_reply_err(r);
    if (!err[0] && r->type != REDIS_REPLY_ARRAY)
        err = "unexpected reply from redis (not a hash)";
    struct queue_settings s = {0};
    int found = 0;
    for (size_t i = 0; !err[0] && i + 1 < r->elements; i += 2) {
        const redisReply *f = r->element[i], *v = r->element[i + 1];
        if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
            continue;
        found = 1;
        if (strcmp(f->str, "paused") == 0)
            s.paused = num(v->str) != 0;
        else if (strcmp(f->str, "concurrency") == 0)
            s.concurrency = (long)num(v->str);
        else if (strcmp(f->str, "rate_n") == 0)
            s.rate_n = (long)num(v->str);
        else if (strcmp(f->str, "rate_period_ms") == 0)
            s.rate_period_ms = (long)num(v->str);
        else if (strcmp(f->str, "rate_per_key") == 0)
            s.rate_per_key = num(v->str) != 0;
        else if (strcmp(f->str, "updated_at") == 0)
            s.updated_at_ms = num(v->str);
    }
    if (s.rate_n <= 0 || s.rate_period_ms <= 0) /* half a rate is none */
        s.rate_n = s.rate_period_ms = 0;
    ((queue_settings_fn *)c.fn)(c.arg, err, err[0] ? NULL : &s, found);
}

int queue_settings_read(rc_t *rc, const char *prefix, const char *queue, queue_settings_fn *fn, void *arg)
{
    char key[256];
    const char *argv[] = {"HGETALL", queue_settings_key(key, sizeof key, prefix, queue)};
    return queue_send(rc, settings_reply, (queue_fn *)fn, arg, 2, argv, NULL);
}

/* KEYS: the three level streams (high, normal, low), delayed, dlq. Returns
 * lag, pending of each level, then ZCARD and XLEN. lag is -1 when Redis
 * cannot tell (nil after out-of-order deletes, or no group on a non-empty
 * stream); a missing stream is 0/0. */
/* Per level: lag, pending, XLEN, the age (ms, by Redis's clock) of the
 * oldest entry pending or not yet delivered and of the oldest not yet
 * delivered (-1: none), from the ms part of their ids; then ZCARD delayed
 * and XLEN dlq. */
static const char stats_lua[] =
    "local out = {}\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local function ms(id) return id and tonumber(string.match(id, '^(%d+)')) end\n"
    "local function age(m) if m then return now - m end return -1 end\n"
    "for i = 1, 3 do\n"
    "  local lag, pending, len, oldest, waiting = 0, 0, 0, nil, nil\n"
    "  if redis.call('EXISTS', KEYS[i]) == 1 then\n"
    "    lag = -1\n"
    "    len = redis.call('XLEN', KEYS[i])\n"
    "    local ok, groups = pcall(redis.call, 'XINFO', 'GROUPS', KEYS[i])\n"
    "    local found = false\n"
    "    if ok then\n"
    "      if #groups == 0 then lag = len end\n"
    "      for _, g in ipairs(groups) do\n"
    "        local f = {}\n"
    "        for j = 1, #g, 2 do f[g[j]] = g[j + 1] end\n"
    "        if f['name'] == ARGV[1] then\n"
    "          found = true\n"
    "          pending = tonumber(f['pending']) or 0\n"
    "          if type(f['lag']) == 'number' then lag = f['lag'] end\n"
    "          local nxt = redis.call('XRANGE', KEYS[i], '(' .. f['last-delivered-id'], '+', 'COUNT', 1)\n"
    "          if #nxt > 0 then waiting = ms(nxt[1][1]) end\n"
    "          oldest = waiting\n"
    "          if pending > 0 then\n"
    "            local p = ms(redis.call('XPENDING', KEYS[i], ARGV[1])[2])\n"
    "            if p and (not oldest or p < oldest) then oldest = p end\n"
    "          end\n"
    "        end\n"
    "      end\n"
    "    end\n"
    "    if not found then\n"
    "      local first = redis.call('XRANGE', KEYS[i], '-', '+', 'COUNT', 1)\n"
    "      if #first > 0 then waiting = ms(first[1][1]); oldest = waiting end\n"
    "    end\n"
    "  end\n"
    "  out[#out + 1] = lag\n"
    "  out[#out + 1] = pending\n"
    "  out[#out + 1] = len\n"
    "  out[#out + 1] = age(oldest)\n"
    "  out[#out + 1] = age(waiting)\n"
    "end\n"
    "out[#out + 1] = redis.call('ZCARD', KEYS[4])\n"
    "out[#out + 1] = redis.call('XLEN', KEYS[5])\n"
    "return out\n";

static void stats_reply(rc_t *rc, redisReply *r, void *arg)
{
    (void)rc;
    struct queue_call c = queue_call_take(arg);
    const char *err = queue_reply_err(r);
    enum { PER_LEVEL = 5 };
    if (!err[0] && (r->type != REDIS_REPLY_ARRAY || r->elements != PER_LEVEL * QUEUE_LEVELS + 2))
        err = "unexpected reply from redis (not the queue stats)";
    struct queue_stats st;
    memset(&st, 0, sizeof st);
    long long v[PER_LEVEL * QUEUE_LEVELS + 2] = {0};
    for (size_t i = 0; !err[0] && i < r->elements; i++)
        v[i] = r->element[i]->type == REDIS_REPLY_INTEGER ? r->element[i]->integer : -1;
    for (int l = 0; l < QUEUE_LEVELS; l++) {
        st.lag[l] = v[PER_LEVEL * l];
        st.pending[l] = v[PER_LEVEL * l + 1];
        st.length[l] = v[PER_LEVEL * l + 2];
        st.oldest_ms[l] = v[PER_LEVEL * l + 3];
        st.waiting_ms[l] = v[PER_LEVEL * l + 4];
    }
    st.delayed = v[PER_LEVEL * QUEUE_LEVELS];
    st.dlq = v[PER_LEVEL * QUEUE_LEVELS + 1];
    ((queue_stats_fn *)c.fn)(c.arg, err, err[0] ? NULL : &st);
}

int queue_stats(rc_t *rc, const char *prefix, const char *queue, queue_stats_fn *fn, void *arg)
{
    char k[5][256];
    const char *argv[] = {"EVAL",
                          stats_lua,
                          "5",
                          queue_stream_key(k[0], sizeof k[0], prefix, queue, QUEUE_HIGH),
                          queue_stream_key(k[1], sizeof k[1], prefix, queue, QUEUE_NORMAL),
                          queue_stream_key(k[2], sizeof k[2], prefix, queue, QUEUE_LOW),
                          queue_key(k[3], sizeof k[3], prefix, queue, "delayed"),
                          queue_key(k[4], sizeof k[4], prefix, queue, "dlq"),
                          QUEUE_GROUP};
    return queue_send(rc, stats_reply, (queue_fn *)fn, arg, (int)(sizeof argv / sizeof *argv), argv, NULL);
}

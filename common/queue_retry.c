/* queue_retry: the Lua scripts of a task's life in Redis (see queue.h): retry
 * (ZADD delayed + XACK), promote due retries, bury (XADD dlq + XACK), replay
 * (XADD stream + XDEL dlq), and the keep-alive of an agent's pending entries. */
#include "queue.h"

#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "envelope.h"
#include "queue_internal.h"
#include "xalloc.h"

char *queue_pack_envelope(const char *id, const char *kind, long attempt, long long enqueued_at,
                          const json_t *spec, size_t *len)
{
    const char *argv[2 * ENVELOPE_MAX_FIELDS];
    size_t lens[2 * ENVELOPE_MAX_FIELDS];
    char *storage = NULL;
    int n = envelope_encode(id, kind, attempt, enqueued_at, spec, argv, lens, &storage);
    if (n < 0) {
        free(storage);
        return NULL;
    }
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, (size_t)n);
    for (int i = 0; i < n; i++) {
        msgpack_pack_str(&pk, lens[i]);
        msgpack_pack_str_body(&pk, argv[i], lens[i]);
    }
    free(storage);
    *len = sb.size;
    return sb.data; /* malloc'd by msgpack_sbuffer */
}

static const char retry_lua[] =
    "local t = redis.call('TIME')\n"
    "local due = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[3])\n"
    "redis.call('ZADD', KEYS[2], due, ARGV[4])\n"
    "return redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])\n";

int queue_retry(rc_t *rc, const char *prefix, const char *queue, const char *entry_id, long long delay_ms,
                const char *id, const char *kind, long attempt, const json_t *spec, queue_done_fn *fn,
                void *arg)
{
    return queue_retry_at(rc, prefix, queue, QUEUE_NORMAL, entry_id, delay_ms, id, kind, attempt, spec, fn, arg);
}

int queue_retry_at(rc_t *rc, const char *prefix, const char *queue, enum queue_level level, const char *entry_id,
                   long long delay_ms, const char *id, const char *kind, long attempt, const json_t *spec,
                   queue_done_fn *fn, void *arg)
{
    char stream[256], delayed[256], delay[24];
    size_t plen;
    char *packed = queue_pack_envelope(id, kind, attempt, 0, spec, &plen);
    if (!packed)
        return -1;
    snprintf(delay, sizeof delay, "%lld", delay_ms);
    const char *argv[] = {"EVAL", retry_lua, "2", queue_stream_key(stream, sizeof stream, prefix, queue, level),
                          queue_key(delayed, sizeof delayed, prefix, queue, "delayed"), QUEUE_GROUP, entry_id,
                          delay, packed};
    size_t lens[9];
    for (int i = 0; i < 8; i++)
        lens[i] = strlen(argv[i]);
    lens[8] = plen;
    int rv = queue_send(rc, queue_done_reply, (queue_fn *)fn, arg, 9, argv, lens);
    free(packed);
    return rv;
}

/* A member is promoted only if it is an envelope XADD can take: one msgpack
 * array (nothing after it) of 2..64 strings, field/value pairs with an `id`
 * and a `spec`. Anything else is moved aside to the DLQ with the reason,
 * never left in place: an XADD error would abort the script on the same
 * member every time and stop the queue's retries for good. */
static const char promote_lua[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))\n"
    "local function check(m)\n"
    "  local ok, off, f = pcall(cmsgpack.unpack_one, m)\n"
    "  if not ok then return 'not msgpack (' .. tostring(off) .. ')', {} end\n"
    "  if type(f) ~= 'table' then return 'a msgpack ' .. type(f) .. ', not an array of fields', {} end\n"
    "  local n, have = #f, {}\n"
    "  -- keep in step with entry_check_delayed (entry_check.c)\n"
    "  if n > 64 then return 'more than 64 fields and values (' .. n .. ')', have end\n"
    "  for i = 2, n, 2 do\n"
    "    if type(f[i - 1]) == 'string' and type(f[i]) == 'string' then have[f[i - 1]] = f[i] end\n"
    "  end\n"
    "  for i = 1, n do\n"
    "    if type(f[i]) ~= 'string' then return 'element ' .. i .. ' is a ' .. type(f[i]) .. ', not a string', have end\n"
    "  end\n"
    "  if n < 2 or n % 2 ~= 0 then return 'expected an even number (2 to 64) of fields and values, got ' .. n, have end\n"
    "  if off ~= -1 then return 'bytes left after the msgpack array', have end\n"
    "  if not have['id'] then return 'no id field', have end\n"
    "  if not have['spec'] then return 'no spec field', have end\n"
    "  return nil, have, f\n"
    "end\n"
    "local function hex(s)\n"
    "  return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end))\n"
    "end\n"
    "local moved, aside = 0, {}\n"
    "for _, m in ipairs(due) do\n"
    "  local why, have, fields = check(m)\n"
    "  if why then\n"
    "    local spec = cjson.encode({unreadable_member = hex(string.sub(m, 1, 96)), bytes = #m})\n"
    "    if have['spec'] then\n"
    "      local ok, j = pcall(function() return cjson.encode(cmsgpack.unpack(have['spec'])) end)\n"
    "      if ok then spec = j end\n"
    "    end\n"
    "    redis.call('XADD', KEYS[3], '*', 'id', have['id'] or '', 'kind', have['kind'] or 'unknown',\n"
    "               'queue', ARGV[2], 'attempts', have['attempt'] or '', 'error', 'delayed member: ' .. why,\n"
    "               'failed_at', ARGV[3], 'agent', ARGV[4], 'source', 'delayed', 'spec', spec)\n"
    "    aside[#aside + 1] = why .. ' (id ' .. (have['id'] or 'unknown') .. ')'\n"
    "  else\n"
    "    -- the level of the spec's priority (high/normal/low stream), as queue_spec_level\n"
    "    local key, ok, sp = KEYS[1], pcall(cmsgpack.unpack, have['spec'])\n"
    "    if not ok or type(sp) ~= 'table' then ok, sp = pcall(cjson.decode, have['spec']) end\n"
    "    local pr = ok and type(sp) == 'table' and tonumber(sp['priority']) or 0\n"
    "    if pr > 0 then key = KEYS[4] elseif pr < 0 then key = KEYS[5] end\n"
    "    redis.call('XADD', key, '*', unpack(fields))\n"
    "    moved = moved + 1\n"
    "  end\n"
    "  redis.call('ZREM', KEYS[2], m)\n"
    "end\n"
    "return {moved, #aside, unpack(aside)}\n";

/* The script answers {moved, set_aside, reason...}. */
static void promote_reply(rc_t *rc, redisReply *r, void *arg)
{
    (void)rc;
    struct queue_call c = queue_call_take(arg);
    const char *err = queue_reply_err(r);
    if (!err[0] && (r->type != REDIS_REPLY_ARRAY || r->elements < 2))
        err = "unexpected reply from redis (not {moved, set_aside, ...})";
    if (err[0]) {
        ((queue_promote_fn *)c.fn)(c.arg, err, 0, 0, NULL, 0);
        return;
    }
    const char **why = xmalloc(r->elements * sizeof *why);
    size_t n = 0;
    for (size_t i = 2; i < r->elements; i++)
        if (r->element[i]->type == REDIS_REPLY_STRING)
            why[n++] = r->element[i]->str;
    ((queue_promote_fn *)c.fn)(c.arg, "", r->element[0]->integer, r->element[1]->integer, why, n);
    free(why);
}

int queue_promote(rc_t *rc, const char *prefix, const char *queue, int limit, const char *agent,
                  queue_promote_fn *fn, void *arg)
{
    char stream[256], delayed[256], dlq[256], high[256], low[256], lim[16], failed_at[32];
    snprintf(lim, sizeof lim, "%d", limit);
    const char *argv[] = {"EVAL", promote_lua, "5", queue_key(stream, sizeof stream, prefix, queue, "stream"),
                          queue_key(delayed, sizeof delayed, prefix, queue, "delayed"),
                          queue_key(dlq, sizeof dlq, prefix, queue, "dlq"),
                          queue_stream_key(high, sizeof high, prefix, queue, QUEUE_HIGH),
                          queue_stream_key(low, sizeof low, prefix, queue, QUEUE_LOW), lim, queue,
                          queue_iso_now(failed_at, sizeof failed_at), agent};
    return queue_send(rc, promote_reply, (queue_fn *)fn, arg, (int)(sizeof argv / sizeof *argv), argv, NULL);
}

static const char bury_lua[] =
    "local dl = redis.call('XADD', KEYS[2], '*', unpack(ARGV, 3))\n"
    "if ARGV[2] ~= '' then redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) end\n"
    "return dl\n";

int queue_bury(rc_t *rc, const char *prefix, const char *queue, const char *entry_id,
               const struct dead_letter *dl, queue_id_fn *fn, void *arg)
{
    return queue_bury_at(rc, prefix, queue, QUEUE_NORMAL, entry_id, dl, fn, arg);
}

int queue_bury_at(rc_t *rc, const char *prefix, const char *queue, enum queue_level level, const char *entry_id,
                  const struct dead_letter *dl, queue_id_fn *fn, void *arg)
{
    char stream[256], dlq[256];
    const char *argv[] = {"EVAL", bury_lua, "2", queue_stream_key(stream, sizeof stream, prefix, queue, level),
                          queue_key(dlq, sizeof dlq, prefix, queue, "dlq"), QUEUE_GROUP,
                          entry_id ? entry_id : "",
                          "id", dl->id, "kind", dl->kind, "queue", dl->queue, "attempts", dl->attempts,
                          "error", dl->error, "failed_at", dl->failed_at, "agent", dl->agent,
                          "source", dl->source, "spec", dl->spec};
    return queue_send(rc, queue_id_reply, (queue_fn *)fn, arg, (int)(sizeof argv / sizeof *argv), argv, NULL);
}

static const char replay_lua[] =
    "local e = redis.call('XADD', KEYS[1], '*', unpack(ARGV, 2))\n"
    "if ARGV[1] ~= '' then redis.call('XDEL', KEYS[2], ARGV[1]) end\n"
    "return e\n";

int queue_replay(rc_t *rc, const char *prefix, const char *queue, const char *dlq_entry, const char *id,
                 const char *kind, const json_t *spec, queue_id_fn *fn, void *arg)
{
    char stream[256], dlq[256];
    const char *argv[6 + 2 * ENVELOPE_MAX_FIELDS] = {"EVAL", replay_lua, "2",
                                                     queue_stream_key(stream, sizeof stream, prefix, queue,
                                                                      queue_spec_level(spec)),
                                                     queue_key(dlq, sizeof dlq, prefix, queue, "dlq")};
    size_t lens[6 + 2 * ENVELOPE_MAX_FIELDS];
    argv[5] = dlq_entry ? dlq_entry : "";
    for (int i = 0; i < 6; i++)
        lens[i] = strlen(argv[i]);
    char *storage = NULL;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    int n = envelope_encode(id, kind, 0, (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000, spec, argv + 6,
                            lens + 6, &storage);
    if (n < 0) {
        free(storage);
        return -1;
    }
    int rv = queue_send(rc, queue_id_reply, (queue_fn *)fn, arg, 6 + n, argv, lens);
    free(storage);
    return rv;
}

/* ------------------------------------------------------------ keep-alive */

static const char keepalive_lua[] =
    "local mine = {}\n"
    "for i = 3, #ARGV do\n"
    "  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1, ARGV[2])\n"
    "  if #p > 0 then mine[#mine + 1] = ARGV[i] end\n"
    "end\n"
    "local n = #mine\n"
    "if n > 0 then\n"
    "  mine[n + 1] = 'JUSTID'\n"
    "  redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, unpack(mine))\n"
    "end\n"
    "return n\n";

int queue_keepalive(rc_t *rc, const char *prefix, const char *queue, const char *consumer,
                    const char *const *ids, size_t n, queue_done_fn *fn, void *arg)
{
    return queue_keepalive_at(rc, prefix, queue, QUEUE_NORMAL, consumer, ids, n, fn, arg);
}

int queue_keepalive_at(rc_t *rc, const char *prefix, const char *queue, enum queue_level level,
                       const char *consumer, const char *const *ids, size_t n, queue_done_fn *fn, void *arg)
{
    char stream[256];
    const char **argv = xmalloc((n + 6) * sizeof *argv);
    argv[0] = "EVAL";
    argv[1] = keepalive_lua;
    argv[2] = "1";
    argv[3] = queue_stream_key(stream, sizeof stream, prefix, queue, level);
    argv[4] = QUEUE_GROUP;
    argv[5] = consumer;
    memcpy(argv + 6, ids, n * sizeof *ids);
    int rv = queue_send(rc, queue_done_reply, (queue_fn *)fn, arg, (int)(n + 6), argv, NULL);
    free(argv);
    return rv;
}

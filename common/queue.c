/* queue: key names, publish, consumer group, ack, trim (see queue.h), and
 * what the other queue*.c files share: sending with a typed callback and
 * turning a reply into an err string (queue_internal.h). */
#include "queue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "envelope.h"
#include "queue_internal.h"
#include "xalloc.h"

/* ------------------------------------------------------ typed callbacks */

int queue_disconnected(const char *err)
{
    return strcmp(err, QUEUE_DISCONNECTED) == 0;
}

int queue_send(rc_t *rc, rc_reply_fn *adapter, queue_fn *fn, void *arg, int argc, const char **argv,
               const size_t *lens)
{
    if (!fn)
        return rc_command_argv(rc, NULL, NULL, argc, argv, lens);
    struct queue_call *c = xmalloc(sizeof *c);
    *c = (struct queue_call){fn, arg};
    if (rc_command_argv(rc, adapter, c, argc, argv, lens) == 0)
        return 0;
    free(c);
    return -1;
}

struct queue_call queue_call_take(void *arg)
{
    struct queue_call c = *(struct queue_call *)arg;
    free(arg);
    return c;
}

const char *queue_reply_err(const redisReply *r)
{
    if (!r)
        return QUEUE_DISCONNECTED;
    if (r->type == REDIS_REPLY_ERROR)
        return r->str ? r->str : "error reply without text";
    return "";
}

void queue_done_reply(rc_t *rc, redisReply *r, void *arg)
{
    (void)rc;
    struct queue_call c = queue_call_take(arg);
    ((queue_done_fn *)c.fn)(c.arg, queue_reply_err(r));
}

void queue_id_reply(rc_t *rc, redisReply *r, void *arg)
{
    (void)rc;
    struct queue_call c = queue_call_take(arg);
    const char *err = queue_reply_err(r);
    if (!err[0] && r->type != REDIS_REPLY_STRING)
        err = "unexpected reply from redis (not an entry id)";
    ((queue_id_fn *)c.fn)(c.arg, err, err[0] ? NULL : r->str);
}

void queue_count_reply(rc_t *rc, redisReply *r, void *arg)
{
    (void)rc;
    struct queue_call c = queue_call_take(arg);
    const char *err = queue_reply_err(r);
    if (!err[0] && r->type != REDIS_REPLY_INTEGER)
        err = "unexpected reply from redis (not a count)";
    ((queue_count_fn *)c.fn)(c.arg, err, err[0] ? 0 : r->integer);
}

void queue_strings_reply(rc_t *rc, redisReply *r, void *arg)
{
    (void)rc;
    struct queue_call c = queue_call_take(arg);
    const char *err = queue_reply_err(r);
    if (!err[0] && r->type != REDIS_REPLY_ARRAY)
        err = "unexpected reply from redis (not an array)";
    if (err[0]) {
        ((queue_strings_fn *)c.fn)(c.arg, err, NULL, 0);
        return;
    }
    const char **s = xmalloc((r->elements + 1) * sizeof *s);
    size_t n = 0;
    for (size_t i = 0; i < r->elements; i++)
        if (r->element[i]->type == REDIS_REPLY_STRING)
            s[n++] = r->element[i]->str;
    ((queue_strings_fn *)c.fn)(c.arg, "", s, n);
    free(s);
}

/* ------------------------------------------------------------ commands */

char *queue_key(char *buf, size_t cap, const char *prefix, const char *queue, const char *suffix)
{
    snprintf(buf, cap, "%s:{%s}:%s", prefix, queue, suffix);
    return buf;
}

/* ------------------------------------------------------ priority levels */

static const char *const level_suffix[QUEUE_LEVELS] = {
    [QUEUE_HIGH] = "stream:high", [QUEUE_NORMAL] = "stream", [QUEUE_LOW] = "stream:low"};
static const char *const level_name[QUEUE_LEVELS] = {
    [QUEUE_HIGH] = "high", [QUEUE_NORMAL] = "normal", [QUEUE_LOW] = "low"};

enum queue_level queue_level_of(long priority)
{
    return priority > 0 ? QUEUE_HIGH : priority < 0 ? QUEUE_LOW : QUEUE_NORMAL;
}

enum queue_level queue_spec_level(const json_t *spec)
{
    json_t *p = json_object_get(spec, "priority");
    return json_is_integer(p) ? queue_level_of((long)json_integer_value(p)) : QUEUE_NORMAL;
}

const char *queue_level_name(enum queue_level level)
{
    return level >= 0 && level < QUEUE_LEVELS ? level_name[level] : "normal";
}

char *queue_stream_key(char *buf, size_t cap, const char *prefix, const char *queue, enum queue_level level)
{
    return queue_key(buf, cap, prefix, queue, level_suffix[level >= 0 && level < QUEUE_LEVELS ? level
                                                                                              : QUEUE_NORMAL]);
}

int queue_publish(rc_t *rc, const char *prefix, const char *queue, const char *id, const char *kind,
                  long attempt, long long enqueued_at, const json_t *spec, queue_id_fn *fn, void *arg)
{
    char key[256];
    const char *argv[3 + 2 * ENVELOPE_MAX_FIELDS];
    size_t lens[3 + 2 * ENVELOPE_MAX_FIELDS];
    char *storage = NULL;
    argv[0] = "XADD";
    argv[1] = queue_stream_key(key, sizeof key, prefix, queue, queue_spec_level(spec));
    argv[2] = "*";
    for (int i = 0; i < 3; i++)
        lens[i] = strlen(argv[i]);
    int n = envelope_encode(id, kind, attempt, enqueued_at, spec, argv + 3, lens + 3, &storage);
    if (n < 0) {
        free(storage);
        return -1;
    }
    int rv = queue_send(rc, queue_id_reply, (queue_fn *)fn, arg, 3 + n, argv, lens);
    free(storage);
    return rv;
}

static void group_reply(rc_t *rc, redisReply *r, void *arg)
{
    (void)rc;
    struct queue_call c = queue_call_take(arg);
    const char *err = queue_reply_err(r);
    ((queue_done_fn *)c.fn)(c.arg, strncmp(err, "BUSYGROUP", 9) == 0 ? "" : err);
}

int queue_ensure_group(rc_t *rc, const char *prefix, const char *queue, queue_done_fn *fn, void *arg)
{
    return queue_ensure_group_at(rc, prefix, queue, QUEUE_NORMAL, fn, arg);
}

int queue_ensure_group_at(rc_t *rc, const char *prefix, const char *queue, enum queue_level level,
                          queue_done_fn *fn, void *arg)
{
    char key[256];
    const char *argv[] = {"XGROUP", "CREATE", queue_stream_key(key, sizeof key, prefix, queue, level),
                          QUEUE_GROUP, "0", "MKSTREAM"};
    return queue_send(rc, group_reply, (queue_fn *)fn, arg, (int)(sizeof argv / sizeof *argv), argv, NULL);
}

int queue_ping(rc_t *rc, queue_done_fn *fn, void *arg)
{
    const char *argv[] = {"PING"};
    return queue_send(rc, queue_done_reply, (queue_fn *)fn, arg, 1, argv, NULL);
}

int queue_ack(rc_t *rc, const char *prefix, const char *queue, const char *const *ids, size_t n,
              queue_done_fn *fn, void *arg)
{
    return queue_ack_at(rc, prefix, queue, QUEUE_NORMAL, ids, n, fn, arg);
}

int queue_ack_at(rc_t *rc, const char *prefix, const char *queue, enum queue_level level, const char *const *ids,
                 size_t n, queue_done_fn *fn, void *arg)
{
    char key[256];
    const char **argv = xmalloc((n + 3) * sizeof *argv);
    argv[0] = "XACK";
    argv[1] = queue_stream_key(key, sizeof key, prefix, queue, level);
    argv[2] = QUEUE_GROUP;
    memcpy(argv + 3, ids, n * sizeof *ids);
    int rv = queue_send(rc, queue_done_reply, (queue_fn *)fn, arg, (int)(n + 3), argv, NULL);
    free(argv);
    return rv;
}

/* Stream ids are "ms-seq"; Lua numbers are doubles, exact below 2^53, which
 * covers every millisecond timestamp and any realistic sequence. */
static const char trim_lua[] =
    "local ok, groups = pcall(redis.call, 'XINFO', 'GROUPS', KEYS[1])\n"
    "if not ok or #groups == 0 then return 0 end\n"
    "local function parse(id)\n"
    "  local ms, seq = string.match(id, '^(%d+)-(%d+)$')\n"
    "  return tonumber(ms), tonumber(seq)\n"
    "end\n"
    "local bms, bseq = nil, nil\n"
    "for _, g in ipairs(groups) do\n"
    "  local f = {}\n"
    "  for i = 1, #g, 2 do f[g[i]] = g[i + 1] end\n"
    "  local ms, seq\n"
    "  if tonumber(f['pending']) > 0 then\n"
    "    local p = redis.call('XPENDING', KEYS[1], f['name'])\n"
    "    ms, seq = parse(p[2])\n"
    "  else\n"
    "    ms, seq = parse(f['last-delivered-id'])\n"
    "    seq = seq + 1\n"
    "  end\n"
    "  if bms == nil or ms < bms or (ms == bms and seq < bseq) then bms, bseq = ms, seq end\n"
    "end\n"
    "if bms == nil or (bms == 0 and bseq <= 1) then return 0 end\n"
    "return redis.call('XTRIM', KEYS[1], 'MINID', string.format('%d-%d', bms, bseq))\n";

int queue_trim(rc_t *rc, const char *prefix, const char *queue, queue_count_fn *fn, void *arg)
{
    return queue_trim_at(rc, prefix, queue, QUEUE_NORMAL, fn, arg);
}

int queue_trim_at(rc_t *rc, const char *prefix, const char *queue, enum queue_level level, queue_count_fn *fn,
                  void *arg)
{
    char key[256];
    const char *argv[4] = {"EVAL", trim_lua, "1", queue_stream_key(key, sizeof key, prefix, queue, level)};
    return queue_send(rc, queue_count_reply, (queue_fn *)fn, arg, 4, argv, NULL);
}

char *queue_iso_now(char *buf, size_t cap)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(tv.tv_usec / 1000));
    return buf;
}

/* queue: Redis operations of one devsys queue (see queue.h). */
#include "queue.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "xalloc.h"

char *queue_key(char *buf, size_t cap, const char *prefix, const char *queue, const char *suffix)
{
    snprintf(buf, cap, "%s:{%s}:%s", prefix, queue, suffix);
    return buf;
}

int queue_publish(rc_t *rc, const char *prefix, const char *queue, const char *id, const char *kind,
                  long attempt, long long enqueued_at, const json_t *spec, rc_reply_fn *fn, void *arg)
{
    char key[256];
    const char *argv[3 + 2 * ENVELOPE_MAX_FIELDS];
    size_t lens[3 + 2 * ENVELOPE_MAX_FIELDS];
    char *storage = NULL;
    argv[0] = "XADD";
    argv[1] = queue_key(key, sizeof key, prefix, queue, "stream");
    argv[2] = "*";
    for (int i = 0; i < 3; i++)
        lens[i] = strlen(argv[i]);
    int n = envelope_encode(id, kind, attempt, enqueued_at, spec, argv + 3, lens + 3, &storage);
    if (n < 0) {
        free(storage);
        return -1;
    }
    int rv = rc_command_argv(rc, fn, arg, 3 + n, argv, lens);
    free(storage);
    return rv;
}

int queue_ensure_group(rc_t *rc, const char *prefix, const char *queue, rc_reply_fn *fn, void *arg)
{
    char key[256];
    return rc_command(rc, fn, arg, "XGROUP CREATE %s %s 0 MKSTREAM",
                      queue_key(key, sizeof key, prefix, queue, "stream"), QUEUE_GROUP);
}

int queue_ack(rc_t *rc, const char *prefix, const char *queue, const char *const *ids, size_t n,
              rc_reply_fn *fn, void *arg)
{
    char key[256];
    const char **argv = xmalloc((n + 3) * sizeof *argv);
    argv[0] = "XACK";
    argv[1] = queue_key(key, sizeof key, prefix, queue, "stream");
    argv[2] = QUEUE_GROUP;
    memcpy(argv + 3, ids, n * sizeof *ids);
    int rv = rc_command_argv(rc, fn, arg, (int)(n + 3), argv, NULL);
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

int queue_trim(rc_t *rc, const char *prefix, const char *queue, rc_reply_fn *fn, void *arg)
{
    char key[256];
    const char *argv[4] = {"EVAL", trim_lua, "1", queue_key(key, sizeof key, prefix, queue, "stream")};
    return rc_command_argv(rc, fn, arg, 4, argv, NULL);
}

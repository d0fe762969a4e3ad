/* queue: the Redis side of a devsys queue — key names, publish, consumer group,
 * ack, and the trim that keeps streams small without breaking the group's lag.
 * Every key of one queue shares the hash tag {Q}, so its scripts touch one slot. */
#ifndef DEVSYS_QUEUE_H
#define DEVSYS_QUEUE_H

#include <jansson.h>
#include <stddef.h>

#include "rc.h"

#define QUEUE_GROUP "agents"

/* "<prefix>:{<queue>}:<suffix>" into buf; returns buf. suffix: stream, delayed, dlq. */
char *queue_key(char *buf, size_t cap, const char *prefix, const char *queue, const char *suffix);

/* XADD the v1 envelope of a task to its queue's stream. fn gets the entry id
 * (or an error / NULL reply). Returns -1 when Redis is not connected. */
int queue_publish(rc_t *rc, const char *prefix, const char *queue, const char *id, const char *kind,
                  long attempt, long long enqueued_at, const json_t *spec, rc_reply_fn *fn, void *arg);

/* XGROUP CREATE <stream> agents 0 MKSTREAM: starting at 0 so that entries pushed
 * before any agent existed are delivered. BUSYGROUP is success. */
int queue_ensure_group(rc_t *rc, const char *prefix, const char *queue, rc_reply_fn *fn, void *arg);

/* XACK many ids at once. */
int queue_ack(rc_t *rc, const char *prefix, const char *queue, const char *const *ids, size_t n,
              rc_reply_fn *fn, void *arg);

/* One Lua script: XTRIM MINID at the oldest id still pending in any group, or
 * just past the last delivered id when nothing is pending. Entries never
 * delivered are never removed; no XDEL, so XINFO GROUPS lag stays exact.
 * Replies with the number of entries removed. */
int queue_trim(rc_t *rc, const char *prefix, const char *queue, rc_reply_fn *fn, void *arg);


/* ------------------------------------------------- retries and dead letters */

/* The envelope as a msgpack array of field/value strings: the member of
 * devsys:{Q}:delayed that the promote script unpacks (cmsgpack, built into
 * Redis) and hands to XADD (entry_check_delayed states its rules). Returns a
 * malloc'd buffer (caller frees) and its length, or NULL if spec is too deep. */
char *queue_pack_envelope(const char *id, const char *kind, long attempt, long long enqueued_at,
                          const json_t *spec, size_t *len);

/* One Lua script: ZADD the task's envelope to devsys:{Q}:delayed, due in
 * delay_ms by Redis's clock, and XACK entry_id — atomically, so the retry is
 * never both lost and acked. The envelope (attempt = the next attempt) is
 * stored msgpack-packed as the member. */
int queue_retry(rc_t *rc, const char *prefix, const char *queue, const char *entry_id, long long delay_ms,
                const char *id, const char *kind, long attempt, const json_t *spec, rc_reply_fn *fn,
                void *arg);

/* One Lua script: move up to limit due envelopes from delayed to the stream
 * (ZRANGEBYSCORE + XADD + ZREM). Safe when several agents run it at once.
 * A malformed member (not a msgpack array of field/value strings with id and
 * spec) is moved to the DLQ instead, with error "delayed member: <why>",
 * source "delayed" and agent = agent. Replies with an array: the number
 * moved, the number set aside, then one "<why> (id <id>)" per member set aside. */
int queue_promote(rc_t *rc, const char *prefix, const char *queue, int limit, const char *agent,
                  rc_reply_fn *fn, void *arg);

/* Now as ISO 8601 UTC with milliseconds (2026-01-31T12:00:00.123Z) into buf; returns buf. */
char *queue_iso_now(char *buf, size_t cap);

/* A dead letter's readable fields (all NUL-terminated strings). */
struct dead_letter {
    const char *id, *kind, *queue, *attempts, *error, *failed_at, *agent, *source, *spec;
};

/* One Lua script: XADD the dead letter to devsys:{Q}:dlq and XACK entry_id
 * (entry_id NULL: only the XADD). Replies with the DLQ entry id. */
int queue_bury(rc_t *rc, const char *prefix, const char *queue, const char *entry_id,
               const struct dead_letter *dl, rc_reply_fn *fn, void *arg);

/* One Lua script: XADD a fresh envelope to the stream and XDEL the DLQ entry
 * (dlq_entry NULL: only the XADD). Replies with the new stream entry id. */
int queue_replay(rc_t *rc, const char *prefix, const char *queue, const char *dlq_entry, const char *id,
                 const char *kind, const json_t *spec, rc_reply_fn *fn, void *arg);

/* --------------------------------------------------------- leases in Redis */

/* One Lua script: XCLAIM ... 0 JUSTID only the ids that XPENDING still shows
 * for this consumer, resetting their idle time without counting a delivery
 * and without taking back an entry another agent already recovered. */
int queue_keepalive(rc_t *rc, const char *prefix, const char *queue, const char *consumer,
                    const char *const *ids, size_t n, rc_reply_fn *fn, void *arg);

/* XAUTOCLAIM <stream> agents <consumer> <min_idle_ms> <start> COUNT <count>. */
int queue_autoclaim(rc_t *rc, const char *prefix, const char *queue, const char *consumer, long long min_idle_ms,
                    const char *start, int count, rc_reply_fn *fn, void *arg);

/* Control channel "<prefix>:control": messages "cancel <task-id>". */
char *queue_control_channel(char *buf, size_t cap, const char *prefix);

#endif

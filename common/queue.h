/* queue: the Redis side of devsys queues. Every Redis command the agents and
 * the manager send is a named operation here with a typed callback; callers
 * neither build commands nor read replies (rc.h stays the low-level client).
 * Every key of one queue shares the hash tag {Q}, so its scripts touch one slot.
 *   queue.c        key names, publish, consumer group, ack, trim, ping
 *   queue_retry.c  the Lua scripts of a task's life: retry, promote, bury, replay, keep-alive
 *   queue_read.c   XREADGROUP, XAUTOCLAIM, first entry, and the one stream-entry decoder
 *   queue_dlq.c    dead-letter streams: length, range, delete, clear, absent check
 *   queue_ctl.c    the control stream (cancel and settings messages)
 *   queue_settings.c  per-queue controls (pause, caps, rate) mirrored for agents; queue stats
 *   queue_limits.c    holding the cap and the rate across agents (admit, release, extend) */
#ifndef DEVSYS_QUEUE_H
#define DEVSYS_QUEUE_H

#include <jansson.h>
#include <stddef.h>

#include "envelope.h"
#include "rc.h"

#define QUEUE_GROUP "agents"

/* ------------------------------------------------------------- callbacks
 * Every operation returns 0 when the command was sent: its callback (if not
 * NULL) is then called exactly once. It returns -1 when nothing was sent
 * (Redis not connected, or an envelope that cannot be encoded): the callback
 * is then NOT called. err is "" on success; otherwise the Redis error reply
 * (e.g. "NOGROUP No such key ..."), QUEUE_DISCONNECTED when the connection
 * was lost before the reply, or "unexpected reply from redis ...". Strings
 * and entries handed to a callback point into the reply: valid only during
 * the callback (copy what you keep). */
#define QUEUE_DISCONNECTED "redis disconnected"

/* Is err the QUEUE_DISCONNECTED of a lost connection (not an error reply)? */
int queue_disconnected(const char *err);

typedef void queue_done_fn(void *arg, const char *err);
/* id: the entry id the command wrote; NULL when err is not "". */
typedef void queue_id_fn(void *arg, const char *err, const char *id);
typedef void queue_count_fn(void *arg, const char *err, long long n);
typedef void queue_strings_fn(void *arg, const char *err, const char *const *s, size_t n);

/* One stream entry as the decoder in queue_read.c reads it from a reply
 * [id, [f1, v1, ...]]. Names and values are NUL-terminated (hiredis keeps
 * them so) and may also hold NUL bytes (use the lengths). A field pair
 * that is not two strings is left out. */
typedef struct queue_entry {
    const char *stream;             /* key of the stream it was read from (XREAD(GROUP); else NULL) */
    const char *id;                 /* "ms-seq" */
    size_t id_len;
    const envelope_field_t *fields; /* nfields name/value pairs */
    size_t nfields;
    int deleted;                    /* a pending entry deleted from the stream: no fields */
} queue_entry_t;

typedef void queue_entries_fn(void *arg, const char *err, const queue_entry_t *entries, size_t n);

/* ------------------------------------------------------------ queue.c */

/* "<prefix>:{<queue>}:<suffix>" into buf; returns buf. suffix: stream, delayed, dlq. */
char *queue_key(char *buf, size_t cap, const char *prefix, const char *queue, const char *suffix);

/* ---- priority levels: one stream per level (the contract agents read by)
 * A task's level comes from its spec's "priority" (-100..100): > 0 high,
 * 0 or absent normal, < 0 low. Each level of queue Q is a stream of its own,
 * in the same hash slot, each with the consumer group "agents":
 *   high    <prefix>:{Q}:stream:high
 *   normal  <prefix>:{Q}:stream          (unchanged: existing users and
 *                                         redis-cli XADD pushes land here)
 *   low     <prefix>:{Q}:stream:low
 * The manager publishes (submit, reconciler republish, DLQ replay) to the
 * stream of the spec's level; the DLQ and the delayed set stay one per
 * queue. An entry pushed by hand goes where it was pushed, whatever its
 * spec says. Agents take strictly by level: new entries from high first,
 * then normal, then low, so 10,000 queued low tasks never delay a high one
 * (an agent reads COUNT n from high, and only with room left from the next
 * level: XREADGROUP over the three keys returns each key's entries, so ask
 * one level at a time, or all three and start those of the higher levels
 * first). Ack, retry, bury and keep-alive go to the stream the entry was
 * read from (queue_entry_t.stream). */
enum queue_level { QUEUE_HIGH, QUEUE_NORMAL, QUEUE_LOW, QUEUE_LEVELS };

/* The level of a priority, and of a spec (its "priority"; normal without). */
enum queue_level queue_level_of(long priority);
enum queue_level queue_spec_level(const json_t *spec);
/* "high", "normal", "low". */
const char *queue_level_name(enum queue_level level);
/* The stream key of queue's level into buf; returns buf. */
char *queue_stream_key(char *buf, size_t cap, const char *prefix, const char *queue, enum queue_level level);

/* XADD the v1 envelope of a task to the stream of its spec's priority level
 * (above). fn gets the entry id. */
int queue_publish(rc_t *rc, const char *prefix, const char *queue, const char *id, const char *kind,
                  long attempt, long long enqueued_at, const json_t *spec, queue_id_fn *fn, void *arg);

/* XGROUP CREATE <stream> agents 0 MKSTREAM: starting at 0 so that entries pushed
 * before any agent existed are delivered. BUSYGROUP is success (err ""). */
int queue_ensure_group(rc_t *rc, const char *prefix, const char *queue, queue_done_fn *fn, void *arg);

/* The same for the stream of one priority level (agents create all three). */
int queue_ensure_group_at(rc_t *rc, const char *prefix, const char *queue, enum queue_level level,
                          queue_done_fn *fn, void *arg);

/* PING: answered after every command sent before it on this connection, so
 * its callback says that all their callbacks have run. */
int queue_ping(rc_t *rc, queue_done_fn *fn, void *arg);

/* XACK many ids at once. */
int queue_ack(rc_t *rc, const char *prefix, const char *queue, const char *const *ids, size_t n,
              queue_done_fn *fn, void *arg);

/* queue_ack on the stream of one priority level. */
int queue_ack_at(rc_t *rc, const char *prefix, const char *queue, enum queue_level level, const char *const *ids,
                 size_t n, queue_done_fn *fn, void *arg);

/* One Lua script: XTRIM MINID at the oldest id still pending in any group, or
 * just past the last delivered id when nothing is pending. Entries never
 * delivered are never removed; no XDEL, so XINFO GROUPS lag stays exact.
 * fn gets the number of entries removed. */
int queue_trim(rc_t *rc, const char *prefix, const char *queue, queue_count_fn *fn, void *arg);

/* queue_trim of the stream of one priority level. */
int queue_trim_at(rc_t *rc, const char *prefix, const char *queue, enum queue_level level, queue_count_fn *fn,
                  void *arg);

/* Now as ISO 8601 UTC with milliseconds (2026-01-31T12:00:00.123Z) into buf; returns buf. */
char *queue_iso_now(char *buf, size_t cap);

/* ------------------------------------ queue_retry.c: retries and dead letters */

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
                const char *id, const char *kind, long attempt, const json_t *spec, queue_done_fn *fn,
                void *arg);

/* queue_retry of an entry read from the stream of one priority level. */
int queue_retry_at(rc_t *rc, const char *prefix, const char *queue, enum queue_level level, const char *entry_id,
                   long long delay_ms, const char *id, const char *kind, long attempt, const json_t *spec,
                   queue_done_fn *fn, void *arg);

/* moved: envelopes moved to the stream; set_aside: malformed members moved to
 * the DLQ instead, why[0..nwhy) one "<why> (id <id>)" each. */
typedef void queue_promote_fn(void *arg, const char *err, long long moved, long long set_aside,
                              const char *const *why, size_t nwhy);

/* One Lua script: move up to limit due envelopes from delayed to the stream
 * of their spec's priority level (ZRANGEBYSCORE + XADD + ZREM), so a retried
 * high task stays high. Safe when several agents run it at once.
 * A malformed member (not a msgpack array of field/value strings with id and
 * spec) is moved to the DLQ instead, with error "delayed member: <why>",
 * source "delayed" and agent = agent. */
int queue_promote(rc_t *rc, const char *prefix, const char *queue, int limit, const char *agent,
                  queue_promote_fn *fn, void *arg);

/* A dead letter's readable fields (all NUL-terminated strings). */
struct dead_letter {
    const char *id, *kind, *queue, *attempts, *error, *failed_at, *agent, *source, *spec;
};

/* One Lua script: XADD the dead letter to devsys:{Q}:dlq and XACK entry_id
 * (entry_id NULL: only the XADD). fn gets the DLQ entry id. */
int queue_bury(rc_t *rc, const char *prefix, const char *queue, const char *entry_id,
               const struct dead_letter *dl, queue_id_fn *fn, void *arg);

/* queue_bury of an entry read from the stream of one priority level. */
int queue_bury_at(rc_t *rc, const char *prefix, const char *queue, enum queue_level level, const char *entry_id,
                  const struct dead_letter *dl, queue_id_fn *fn, void *arg);

/* One Lua script: XADD a fresh envelope to the stream of the spec's priority
 * level and XDEL the DLQ entry
 * (dlq_entry NULL: only the XADD). fn gets the new stream entry id. */
int queue_replay(rc_t *rc, const char *prefix, const char *queue, const char *dlq_entry, const char *id,
                 const char *kind, const json_t *spec, queue_id_fn *fn, void *arg);

/* One Lua script: XCLAIM ... 0 JUSTID only the ids that XPENDING still shows
 * for this consumer, resetting their idle time without counting a delivery
 * and without taking back an entry another agent already recovered. */
int queue_keepalive(rc_t *rc, const char *prefix, const char *queue, const char *consumer,
                    const char *const *ids, size_t n, queue_done_fn *fn, void *arg);

/* queue_keepalive on the stream of one priority level. */
int queue_keepalive_at(rc_t *rc, const char *prefix, const char *queue, enum queue_level level,
                       const char *consumer, const char *const *ids, size_t n, queue_done_fn *fn, void *arg);

/* --------------------------------------------------------- queue_read.c */

/* XREADGROUP GROUP agents <consumer> COUNT <count> BLOCK <block_ms> STREAMS
 * of the n queues, reading each from from[i] (">" for new entries, or an id
 * to re-read this consumer's pending entries after it). fn gets the entries
 * of every stream in one array (those of one stream are adjacent; their
 * .stream is its key); none when the block timed out. The field bytes are
 * not copied: they point into the reply. */
int queue_read_group(rc_t *rc, const char *prefix, const char *const *queues, const char *const *from,
                     size_t n, const char *consumer, int count, int block_ms, queue_entries_fn *fn,
                     void *arg);

/* The same over streams of any level: stream i is queues[i]'s stream of
 * levels[i] (levels NULL: all normal). block_ms < 0: no BLOCK (answers at
 * once, with what is there). */
int queue_read_levels(rc_t *rc, const char *prefix, const char *const *queues, const enum queue_level *levels,
                      const char *const *from, size_t n, const char *consumer, int count, int block_ms,
                      queue_entries_fn *fn, void *arg);

/* cursor: where the next call starts; entries: those taken over; ndeleted:
 * pending ids that were gone from the stream (Redis 7 lists them apart). */
typedef void queue_claimed_fn(void *arg, const char *err, const char *cursor, const queue_entry_t *entries,
                              size_t n, size_t ndeleted);

/* XAUTOCLAIM <stream> agents <consumer> <min_idle_ms> <start> COUNT <count>. */
int queue_autoclaim(rc_t *rc, const char *prefix, const char *queue, const char *consumer, long long min_idle_ms,
                    const char *start, int count, queue_claimed_fn *fn, void *arg);

/* XAUTOCLAIM on the stream of one priority level. */
int queue_autoclaim_at(rc_t *rc, const char *prefix, const char *queue, enum queue_level level,
                       const char *consumer, long long min_idle_ms, const char *start, int count,
                       queue_claimed_fn *fn, void *arg);

/* XRANGE <stream> - + COUNT 1: fn gets the id of the stream's first entry,
 * NULL (with err "") when the stream is missing or empty. */
int queue_stream_first(rc_t *rc, const char *prefix, const char *queue, queue_id_fn *fn, void *arg);
/* The same for the stream of one priority level. */
int queue_stream_first_at(rc_t *rc, const char *prefix, const char *queue, enum queue_level level,
                          queue_id_fn *fn, void *arg);

/* ---------------------------------------------------------- queue_dlq.c */

/* XLEN of devsys:{Q}:dlq. */
int queue_dlq_len(rc_t *rc, const char *prefix, const char *queue, queue_count_fn *fn, void *arg);

/* Up to count dead letters, oldest first, after the entry id `after` (NULL
 * or "": from the start). */
int queue_dlq_range(rc_t *rc, const char *prefix, const char *queue, const char *after, long count,
                    queue_entries_fn *fn, void *arg);

/* The dead letter with this entry id: fn gets it, or none. */
int queue_dlq_entry(rc_t *rc, const char *prefix, const char *queue, const char *entry_id, queue_entries_fn *fn,
                    void *arg);

/* XDEL one dead letter; fn gets the number removed (0 or 1). */
int queue_dlq_delete(rc_t *rc, const char *prefix, const char *queue, const char *entry_id, queue_count_fn *fn,
                     void *arg);
/* XDEL n dead letters in one command (n >= 1); fn gets the number removed. */
int queue_dlq_delete_many(rc_t *rc, const char *prefix, const char *queue, const char *const *entry_ids, size_t n,
                          queue_count_fn *fn, void *arg);

/* XTRIM MAXLEN 0, not DEL: the stream keeps its last id, so new ids stay
 * above every removed one. fn gets the number removed. */
int queue_dlq_clear(rc_t *rc, const char *prefix, const char *queue, queue_count_fn *fn, void *arg);

/* One Lua script. pairs: npairs (task id, DLQ entry id) pairs; fn gets the
 * task ids whose entry is not in the DLQ (an empty entry id never is). */
int queue_dlq_absent(rc_t *rc, const char *prefix, const char *queue, const char *const *pairs, size_t npairs,
                     queue_strings_fn *fn, void *arg);

/* ---------------------------------------------------------- queue_ctl.c */

/* The control stream "<prefix>:control" carries "cancel <task-id>" entries,
 * capped near 1000 entries. */
char *queue_control_channel(char *buf, size_t cap, const char *prefix);

/* XADD a "cancel <task_id>" message; fn gets its entry id. */
int queue_control_cancel(rc_t *rc, const char *prefix, const char *task_id, queue_id_fn *fn, void *arg);

/* XADD a "settings <queue>" message (field settings, value the queue name):
 * the queue's settings hash changed, agents reload it now. fn gets its id.
 * queue_control_read reports them. */
int queue_control_settings(rc_t *rc, const char *prefix, const char *queue, queue_id_fn *fn, void *arg);

/* XADD a "slot <queue>" message: a task of a queue with a concurrency cap
 * finished and gave its slot back; agents waiting for one try again. */
int queue_control_slot(rc_t *rc, const char *prefix, const char *queue, queue_id_fn *fn, void *arg);

/* What the entries read carry, by field: cancel (task ids), settings and
 * slot (queue names). */
struct queue_control_msgs {
    const char *const *cancel;
    size_t ncancel;
    const char *const *settings;
    size_t nsettings;
    const char *const *slot;
    size_t nslot;
};

/* last_id: the newest entry read (NULL when none: the block timed out). */
typedef void queue_control_fn(void *arg, const char *err, const char *last_id, const struct queue_control_msgs *m);

/* XREAD BLOCK <block_ms> of the control stream after entry id `after`. */
int queue_control_read(rc_t *rc, const char *prefix, const char *after, int block_ms, queue_control_fn *fn,
                       void *arg);

/* ----------------------------------------------------- queue_settings.c
 * A queue's controls. PostgreSQL (table queue_settings, migrations/004) is
 * the truth; the manager mirrors each queue's row into the Redis hash
 *   <prefix>:{Q}:settings
 * with the fields (decimal text; absent field = its default)
 *   paused          "1" paused: agents take no new entry from any level of
 *                   Q (running tasks finish); "0" (default) running
 *   concurrency     cap on tasks of Q running at once across all agents;
 *                   "0" (default) none
 *   rate_n, rate_period_ms
 *                   at most rate_n starts per rate_period_ms, cluster-wide;
 *                   "0" (default) none
 *   rate_per_key    "1": the rate limit applies per value of the spec's
 *                   "rate_key" field (tasks without one share a bucket)
 *   updated_at      ms since the epoch of the change in PostgreSQL
 * after every change (then it appends "settings <Q>" to the control stream)
 * and on every reconciler pass, so a Redis flush heals within
 * DEVSYS_RECONCILE_S. A missing hash means "not mirrored yet", not "no
 * limits": an agent keeps the settings it last read until the hash returns. */
struct queue_settings {
    int paused;          /* 0 or 1 */
    long concurrency;    /* 0: no cap */
    long rate_n;         /* 0: no rate limit */
    long rate_period_ms; /* > 0 when rate_n is */
    int rate_per_key;    /* 0 or 1 */
    long long updated_at_ms;
};

/* <prefix>:{Q}:settings into buf; returns buf. */
char *queue_settings_key(char *buf, size_t cap, const char *prefix, const char *queue);

/* HSET every field of s into the queue's settings hash (one command, so an
 * agent never reads half a change). */
int queue_settings_write(rc_t *rc, const char *prefix, const char *queue, const struct queue_settings *s,
                         queue_done_fn *fn, void *arg);

/* found: 0 when the hash does not exist (s is then all defaults). */
typedef void queue_settings_fn(void *arg, const char *err, const struct queue_settings *s, int found);

/* HGETALL the queue's settings hash. */
int queue_settings_read(rc_t *rc, const char *prefix, const char *queue, queue_settings_fn *fn, void *arg);

/* What one queue holds in Redis, per priority level (index enum
 * queue_level): lag (entries not yet delivered to the group; -1 when Redis
 * cannot tell, e.g. no group yet on a non-empty stream), pending (delivered,
 * not acked: in flight), and the queue's delayed retries and dead letters. */
struct queue_stats {
    long long lag[QUEUE_LEVELS], pending[QUEUE_LEVELS];
    long long length[QUEUE_LEVELS];     /* XLEN (acked entries stay until the periodic trim) */
    long long oldest_ms[QUEUE_LEVELS];  /* age of the oldest entry pending or not yet delivered; -1: none */
    long long waiting_ms[QUEUE_LEVELS]; /* age of the oldest entry not yet delivered; -1: none */
    long long delayed, dlq;
};
typedef void queue_stats_fn(void *arg, const char *err, const struct queue_stats *st);

/* One Lua script over the queue's keys (XINFO GROUPS, XLEN, XPENDING summary
 * and the first undelivered entry of each level's stream, ZCARD delayed,
 * XLEN dlq); ages by Redis's clock (TIME). */
int queue_stats(rc_t *rc, const char *prefix, const char *queue, queue_stats_fn *fn, void *arg);

/* ------------------------------------------------------- queue_limits.c
 * Holding a queue's concurrency cap and rate limit across agents, in Redis:
 *   <prefix>:{Q}:running        ZSET: one member per task holding a slot,
 *                               score = its lease expiry (ms, Redis clock),
 *                               so a crashed agent's slots expire
 *   <prefix>:{Q}:rate           ZSET: the starts of the last period (sliding
 *   <prefix>:{Q}:rate:<key>     window log; per key when rate_per_key) */

/* granted[i]: 1 when member i may start now (it holds a slot and used a
 * start of the rate window). wait_ms: when some were refused by the rate,
 * the ms until the window frees a start; -1 when refused by the cap only
 * (wait for a slot to be released); 0 when all were granted. */
typedef void queue_admit_fn(void *arg, const char *err, const unsigned char *granted, size_t n, long long wait_ms);

/* One Lua script, in order of members (the caller puts higher levels
 * first): drop expired slots and old starts, then grant each member while
 * the cap has a free slot and its rate bucket (rate_keys[i]: NULL or "" =
 * the queue's shared bucket) has a start left. cap, rate_n: 0 = none. */
int queue_admit(rc_t *rc, const char *prefix, const char *queue, const char *const *members,
                const char *const *rate_keys, size_t n, long cap, long rate_n, long rate_period_ms, long lease_ms,
                queue_admit_fn *fn, void *arg);

/* ZREM a slot; fn gets 1 when it was held (then the caller sends
 * queue_control_slot so that waiting agents try again). */
int queue_slot_release(rc_t *rc, const char *prefix, const char *queue, const char *member, queue_count_fn *fn,
                       void *arg);

/* ZADD XX: the slots' leases run lease_ms from now (Redis clock). */
int queue_slot_extend(rc_t *rc, const char *prefix, const char *queue, const char *const *members, size_t n,
                      long lease_ms, queue_done_fn *fn, void *arg);

#endif

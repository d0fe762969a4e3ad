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

#endif

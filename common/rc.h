/* rc: async Redis client on the shared libevent loop (hiredis + adapters/libevent.h),
 * with automatic reconnect and backoff. Queue logic talks to Redis only through this. */
#ifndef DEVSYS_RC_H
#define DEVSYS_RC_H

#include <stddef.h>

struct event_base;
struct redisReply;
typedef struct rc rc_t;

/* reply is NULL when the command could not run (not connected, connection
 * lost before the reply); otherwise it is owned by hiredis and valid only
 * during the callback. A REDIS_REPLY_ERROR reply is passed as is. */
typedef void rc_reply_fn(rc_t *rc, struct redisReply *reply, void *arg);
typedef void rc_event_fn(rc_t *rc, void *arg);

/* url: redis://[:password@]host[:port][/db]. name is used in logs.
 * Connects at once and reconnects with backoff (100 ms .. 5 s) forever.
 * Returns NULL (and logs) only if the URL does not parse. */
rc_t *rc_new(struct event_base *base, const char *url, const char *name);
/* Pending callbacks are called with reply NULL. Safe to call from a reply
 * callback (the free is deferred to the loop). */
void rc_free(rc_t *rc);
int rc_connected(const rc_t *rc);
/* Called after every successful (re)connect (after AUTH/SELECT). */
void rc_on_connect(rc_t *rc, rc_event_fn *fn, void *arg);
/* Called when an established connection is lost. */
void rc_on_disconnect(rc_t *rc, rc_event_fn *fn, void *arg);

/* Returns 0 when queued; -1 when not connected (fn is then NOT called).
 * fn may be NULL (fire and forget). */
int rc_command(rc_t *rc, rc_reply_fn *fn, void *arg, const char *fmt, ...);
int rc_command_argv(rc_t *rc, rc_reply_fn *fn, void *arg, int argc, const char **argv,
                    const size_t *argvlen);

/* Commands on rc block (XREADGROUP BLOCK): their round trips are not
 * counted in devsys_redis_command_seconds. */
void rc_mark_blocking(rc_t *rc);
/* Number of commands sent and not yet answered. */
int rc_pending(const rc_t *rc);

#endif

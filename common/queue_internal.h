/* queue_internal: what the queue*.c files share (see queue.h): sending a
 * command with a typed callback, turning replies into err strings, and the
 * one stream-entry decoder. For common/ and tests only. */
#ifndef DEVSYS_QUEUE_INTERNAL_H
#define DEVSYS_QUEUE_INTERNAL_H

#include <hiredis/hiredis.h>

#include "queue.h"

/* Any callback type of queue.h; each adapter casts it back to its own. */
typedef void queue_fn(void);

/* What an adapter (an rc_reply_fn) gets as its arg: the caller's callback. */
struct queue_call {
    queue_fn *fn;
    void *arg;
};

/* Sends argv (lens NULL: strlen of each) with adapter as the rc callback and
 * a struct queue_call holding fn and arg as its argument, or with no callback
 * when fn is NULL. Returns 0 when sent, -1 when not (fn is then not called). */
int queue_send(rc_t *rc, rc_reply_fn *adapter, queue_fn *fn, void *arg, int argc, const char **argv,
               const size_t *lens);

/* Takes the call out of an adapter's arg (and frees the allocation). */
struct queue_call queue_call_take(void *arg);

/* The error of a reply: "" when it is not an error reply, QUEUE_DISCONNECTED
 * when there is none, else the error text. */
const char *queue_reply_err(const redisReply *r);

/* Adapters for the common reply shapes: done (any non-error reply), id (a
 * string), count (an integer), strings (an array; non-strings left out). */
void queue_done_reply(rc_t *rc, redisReply *r, void *arg);
void queue_id_reply(rc_t *rc, redisReply *r, void *arg);
void queue_count_reply(rc_t *rc, redisReply *r, void *arg);
void queue_strings_reply(rc_t *rc, redisReply *r, void *arg);

/* Adapter of an XRANGE reply to a queue_entries_fn (queue_read.c). */
void queue_range_reply(rc_t *rc, redisReply *r, void *arg);

/* The one stream-entry decoder. entries: an array of entries [id, [f1, v1,
 * ...]] as XRANGE, XAUTOCLAIM and each stream of XREAD(GROUP) return it;
 * stream: the key to put in each entry. An element that is not [string,
 * array] is left out, [string, nil] is an entry with deleted set. Returns
 * one malloc'd block (the entries, then their fields; caller frees) and the
 * count in *n; the strings point into the reply, nothing is copied. */
queue_entry_t *queue_decode_entries(const redisReply *entries, const char *stream, size_t *n);

/* The same for a reply of XREAD(GROUP) [[key, entries], ...] (or nil). */
queue_entry_t *queue_decode_streams(const redisReply *reply, size_t *n);

#endif

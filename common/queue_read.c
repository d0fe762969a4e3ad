/* queue_read: reading entries (see queue.h): XREADGROUP, XAUTOCLAIM, a
 * stream's first entry, and the one decoder of stream entries that every
 * read (dead letters and the control stream too) goes through. */
#include "queue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue_internal.h"
#include "xalloc.h"

/* ----------------------------------------------------------------- decode */

/* Two passes over the same reply: the first (e == NULL) counts entries and
 * fields, the second fills one block sized from the count. */
struct decoder {
    queue_entry_t *e;
    envelope_field_t *f;
    size_t n, nf;
};

static void decode_walk(struct decoder *d, const redisReply *entries, const char *stream)
{
    for (size_t i = 0; entries && entries->type == REDIS_REPLY_ARRAY && i < entries->elements; i++) {
        const redisReply *e = entries->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 || e->element[0]->type != REDIS_REPLY_STRING)
            continue;
        const redisReply *f = e->element[1];
        queue_entry_t *out = d->e ? &d->e[d->n] : NULL;
        if (out)
            *out = (queue_entry_t){stream, e->element[0]->str, e->element[0]->len, d->f + d->nf, 0,
                                   f->type != REDIS_REPLY_ARRAY};
        d->n++;
        for (size_t k = 0; f->type == REDIS_REPLY_ARRAY && k + 1 < f->elements; k += 2) {
            const redisReply *name = f->element[k], *val = f->element[k + 1];
            if (name->type != REDIS_REPLY_STRING || val->type != REDIS_REPLY_STRING)
                continue;
            if (out) {
                d->f[d->nf] = (envelope_field_t){name->str, name->len, val->str, val->len};
                out->nfields++;
            }
            d->nf++;
        }
    }
}

/* entries, or (streams) an XREAD reply [[key, entries], ...]. */
static queue_entry_t *decode(const redisReply *r, const char *stream, int streams, size_t *n)
{
    struct decoder d = {0};
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            /* queue_entry_t's size is a multiple of its alignment, which
             * covers envelope_field_t's (pointers and size_t both) */
            char *block = xmalloc(d.n * sizeof(queue_entry_t) + d.nf * sizeof(envelope_field_t) + 1);
            d = (struct decoder){(queue_entry_t *)(void *)block,
                                 (envelope_field_t *)(void *)(block + d.n * sizeof(queue_entry_t)), 0, 0};
        }
        if (!streams) {
            decode_walk(&d, r, stream);
            continue;
        }
        for (size_t s = 0; r && r->type == REDIS_REPLY_ARRAY && s < r->elements; s++) {
            const redisReply *st = r->element[s];
            if (st->type == REDIS_REPLY_ARRAY && st->elements == 2 && st->element[0]->type == REDIS_REPLY_STRING)
                decode_walk(&d, st->element[1], st->element[0]->str);
        }
    }
    *n = d.n;
    return d.e;
}

queue_entry_t *queue_decode_entries(const redisReply *entries, const char *stream, size_t *n)
{
    return decode(entries, stream, 0, n);
}

queue_entry_t *queue_decode_streams(const redisReply *reply, size_t *n)
{
    return decode(reply, NULL, 1, n);
}

/* ------------------------------------------------------------------- read */

static void read_group_reply(rc_t *rc, redisReply *r, void *arg)
{
    (void)rc;
    struct queue_call c = queue_call_take(arg);
    const char *err = queue_reply_err(r);
    if (!err[0] && r->type != REDIS_REPLY_ARRAY && r->type != REDIS_REPLY_NIL)
        err = "unexpected reply from redis (not an array of streams)";
    if (err[0]) {
        ((queue_entries_fn *)c.fn)(c.arg, err, NULL, 0);
        return;
    }
    size_t n;
    queue_entry_t *e = queue_decode_streams(r, &n);
    ((queue_entries_fn *)c.fn)(c.arg, "", e, n);
    free(e);
}

int queue_read_group(rc_t *rc, const char *prefix, const char *const *queues, const char *const *from,
                     size_t n, const char *consumer, int count, int block_ms, queue_entries_fn *fn,
                     void *arg)
{
    return queue_read_levels(rc, prefix, queues, NULL, from, n, consumer, count, block_ms, fn, arg);
}

int queue_read_levels(rc_t *rc, const char *prefix, const char *const *queues, const enum queue_level *levels,
                      const char *const *from, size_t n, const char *consumer, int count, int block_ms,
                      queue_entries_fn *fn, void *arg)
{
    char cnt[16], block[16];
    snprintf(cnt, sizeof cnt, "%d", count);
    snprintf(block, sizeof block, "%d", block_ms);
    const char *head[] = {"XREADGROUP", "GROUP", QUEUE_GROUP, consumer, "COUNT", cnt, "BLOCK", block, "STREAMS"};
    size_t nhead = sizeof head / sizeof *head;
    const char **argv = xmalloc((nhead + 2 * n) * sizeof *argv);
    char (*keys)[256] = xmalloc((n ? n : 1) * sizeof *keys);
    memcpy(argv, head, sizeof head);
    if (block_ms < 0) { /* no BLOCK: answer at once */
        argv[6] = "STREAMS";
        nhead -= 2;
    }
    for (size_t i = 0; i < n; i++) {
        argv[nhead + i] = queue_stream_key(keys[i], sizeof keys[i], prefix, queues[i],
                                           levels ? levels[i] : QUEUE_NORMAL);
        argv[nhead + n + i] = from[i];
    }
    int rv = queue_send(rc, read_group_reply, (queue_fn *)fn, arg, (int)(nhead + 2 * n), argv, NULL);
    free(keys);
    free(argv);
    return rv;
}

/* XAUTOCLAIM answers [cursor, entries] (Redis 6.2) or [cursor, entries,
 * deleted ids] (Redis 7). */
static void autoclaim_reply(rc_t *rc, redisReply *r, void *arg)
{
    (void)rc;
    struct queue_call c = queue_call_take(arg);
    const char *err = queue_reply_err(r);
    if (!err[0] && (r->type != REDIS_REPLY_ARRAY || r->elements < 2 || r->element[0]->type != REDIS_REPLY_STRING))
        err = "unexpected reply from redis (not [cursor, entries])";
    if (err[0]) {
        ((queue_claimed_fn *)c.fn)(c.arg, err, NULL, NULL, 0, 0);
        return;
    }
    size_t n, ndeleted = 0;
    if (r->elements > 2 && r->element[2]->type == REDIS_REPLY_ARRAY)
        ndeleted = r->element[2]->elements;
    queue_entry_t *e = queue_decode_entries(r->element[1], NULL, &n);
    ((queue_claimed_fn *)c.fn)(c.arg, "", r->element[0]->str, e, n, ndeleted);
    free(e);
}

int queue_autoclaim(rc_t *rc, const char *prefix, const char *queue, const char *consumer, long long min_idle_ms,
                    const char *start, int count, queue_claimed_fn *fn, void *arg)
{
    return queue_autoclaim_at(rc, prefix, queue, QUEUE_NORMAL, consumer, min_idle_ms, start, count, fn, arg);
}

int queue_autoclaim_at(rc_t *rc, const char *prefix, const char *queue, enum queue_level level,
                       const char *consumer, long long min_idle_ms, const char *start, int count,
                       queue_claimed_fn *fn, void *arg)
{
    char stream[256], idle[24], cnt[16];
    snprintf(idle, sizeof idle, "%lld", min_idle_ms);
    snprintf(cnt, sizeof cnt, "%d", count);
    const char *argv[] = {"XAUTOCLAIM", queue_stream_key(stream, sizeof stream, prefix, queue, level), QUEUE_GROUP,
                          consumer, idle, start, "COUNT", cnt};
    return queue_send(rc, autoclaim_reply, (queue_fn *)fn, arg, (int)(sizeof argv / sizeof *argv), argv, NULL);
}

/* The entries of an XRANGE reply; NULL (and *err set) when it is not one. */
static queue_entry_t *range_entries(const redisReply *r, const char **err, size_t *n)
{
    *err = queue_reply_err(r);
    if (!(*err)[0] && r->type != REDIS_REPLY_ARRAY)
        *err = "unexpected reply from redis (not an array of entries)";
    *n = 0;
    return (*err)[0] ? NULL : queue_decode_entries(r, NULL, n);
}

void queue_range_reply(rc_t *rc, redisReply *r, void *arg)
{
    (void)rc;
    struct queue_call c = queue_call_take(arg);
    const char *err;
    size_t n;
    queue_entry_t *e = range_entries(r, &err, &n);
    ((queue_entries_fn *)c.fn)(c.arg, err, e, n);
    free(e);
}

static void first_reply(rc_t *rc, redisReply *r, void *arg)
{
    (void)rc;
    struct queue_call c = queue_call_take(arg);
    const char *err;
    size_t n;
    queue_entry_t *e = range_entries(r, &err, &n);
    ((queue_id_fn *)c.fn)(c.arg, err, n ? e[0].id : NULL);
    free(e);
}

int queue_stream_first(rc_t *rc, const char *prefix, const char *queue, queue_id_fn *fn, void *arg)
{
    return queue_stream_first_at(rc, prefix, queue, QUEUE_NORMAL, fn, arg);
}

int queue_stream_first_at(rc_t *rc, const char *prefix, const char *queue, enum queue_level level,
                          queue_id_fn *fn, void *arg)
{
    char stream[256];
    const char *argv[] = {"XRANGE", queue_stream_key(stream, sizeof stream, prefix, queue, level), "-", "+",
                          "COUNT", "1"};
    return queue_send(rc, first_reply, (queue_fn *)fn, arg, (int)(sizeof argv / sizeof *argv), argv, NULL);
}

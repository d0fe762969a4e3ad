/* queue_ctl: the control stream "<prefix>:control" (see queue.h): the
 * manager appends "cancel <task-id>" and "settings <queue>" entries, agents follow it with a
 * blocking XREAD on a connection of their own. */
#include "queue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue_internal.h"
#include "xalloc.h"

char *queue_control_channel(char *buf, size_t cap, const char *prefix)
{
    snprintf(buf, cap, "%s:control", prefix);
    return buf;
}

/* Capped: agents read it live, and each also finds cancelled tasks when it
 * renews its leases (and settings on its periodic reload), so old messages
 * are worth nothing. */
static int control_add(rc_t *rc, const char *prefix, const char *field, const char *value, queue_id_fn *fn,
                       void *arg)
{
    char chan[256];
    const char *argv[] = {"XADD", queue_control_channel(chan, sizeof chan, prefix), "MAXLEN", "~", "1000", "*",
                          field,  value};
    return queue_send(rc, queue_id_reply, (queue_fn *)fn, arg, (int)(sizeof argv / sizeof *argv), argv, NULL);
}

int queue_control_cancel(rc_t *rc, const char *prefix, const char *task_id, queue_id_fn *fn, void *arg)
{
    return control_add(rc, prefix, "cancel", task_id, fn, arg);
}

static void control_reply(rc_t *rc, redisReply *r, void *arg)
{
    (void)rc;
    struct queue_call c = queue_call_take(arg);
    const char *err = queue_reply_err(r);
    size_t n = 0;
    queue_entry_t *e = err[0] ? NULL : queue_decode_streams(r, &n);
    size_t nfields = 0;
    for (size_t i = 0; i < n; i++)
        nfields += e[i].nfields;
    /* one array per message kind, each large enough for every field */
    static const char *const kinds[3] = {"cancel", "settings", "slot"};
    const char **v[3];
    size_t nv[3] = {0, 0, 0};
    for (int k = 0; k < 3; k++)
        v[k] = xmalloc((nfields + 1) * sizeof *v[k]);
    for (size_t i = 0; i < n; i++)
        for (size_t f = 0; f < e[i].nfields; f++)
            for (int k = 0; k < 3; k++)
                if (strcmp(e[i].fields[f].name, kinds[k]) == 0)
                    v[k][nv[k]++] = e[i].fields[f].val;
    struct queue_control_msgs m = {v[0], nv[0], v[1], nv[1], v[2], nv[2]};
    ((queue_control_fn *)c.fn)(c.arg, err, n ? e[n - 1].id : NULL, &m);
    for (int k = 0; k < 3; k++)
        free(v[k]);
    free(e);
}

int queue_control_read(rc_t *rc, const char *prefix, const char *after, int block_ms, queue_control_fn *fn,
                       void *arg)
{
    char chan[256], block[16];
    snprintf(block, sizeof block, "%d", block_ms);
    const char *argv[] = {"XREAD", "BLOCK", block, "STREAMS", queue_control_channel(chan, sizeof chan, prefix),
                          after};
    return queue_send(rc, control_reply, (queue_fn *)fn, arg, (int)(sizeof argv / sizeof *argv), argv, NULL);
}

int queue_control_settings(rc_t *rc, const char *prefix, const char *queue, queue_id_fn *fn, void *arg)
{
    return control_add(rc, prefix, "settings", queue, fn, arg);
}

int queue_control_slot(rc_t *rc, const char *prefix, const char *queue, queue_id_fn *fn, void *arg)
{
    return control_add(rc, prefix, "slot", queue, fn, arg);
}

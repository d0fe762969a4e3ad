/* workspace: each exec/coding/testing task's own directory,
 * DEVSYS_WORKSPACE/<task-id> (0700), kept across its attempts and removed
 * DEVSYS_WORKSPACE_RETENTION_S after its last attempt ended. A running task
 * holds a lock on it (flock, so agents sharing the directory agree); a sweep
 * in a thread removes expired, unlocked ones, a bounded number per pass. */
#ifndef DEVSYS_WORKSPACE_H
#define DEVSYS_WORKSPACE_H

#include <stddef.h>

struct event_base;

typedef struct ws {
    char *dir;     /* DEVSYS_WORKSPACE/<task-id> */
    char *meta;    /* dir/.devsys: the agent's files (result, inputs list, lock) */
    int lock_fd;
} ws_t;

/* Reads DEVSYS_WORKSPACE and DEVSYS_WORKSPACE_RETENTION_S (exits 2 on a bad
 * value), creates the root (0700) and arms the sweep on base. Idempotent. */
void ws_init(struct event_base *base);
/* Stops the sweep (waits for a pass under way). */
void ws_shutdown(void);

/* Creates or reopens task_id's workspace and locks it. Returns NULL with a
 * message in err. Caller releases with ws_close. */
ws_t *ws_open(const char *task_id, char *err, size_t errlen);
/* Unlocks; the retention period starts now. */
void ws_close(ws_t *w);
/* The workspace path task_id has (whether or not it exists); caller frees. */
char *ws_dir_for(const char *task_id);

/* One sweep pass, synchronously (the timer runs it in a thread): removes at
 * most max expired workspaces. Returns how many. For tests. */
int ws_sweep_once(int max);

#endif

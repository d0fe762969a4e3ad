/* step_transfer: one artifact to or from the manager's store
 * (PUT/GET /v1/artifacts/{sha256}) on the agent's loop through libcurl's
 * multi interface (curlev.h). Settings: DEVSYS_MANAGER_URL and the token
 * DEVSYS_AGENT_TOKEN (or DEVSYS_AGENT_TOKEN_FILE; operator role). */
#ifndef DEVSYS_STEP_TRANSFER_H
#define DEVSYS_STEP_TRANSFER_H

#include <stddef.h>

struct event_base;
typedef struct xfer xfer_t;

/* ok 1, or 0 with a one-line reason in err. Called once, from the loop,
 * never from inside xfer_upload/xfer_download; x is freed after it returns. */
typedef void xfer_done_fn(int ok, const char *err, void *arg);

/* Reads the settings (once). */
void xfer_init(struct event_base *base);
/* Every transfer must have ended or been cancelled. */
void xfer_shutdown(void);

/* PUTs the size bytes of path as sha. NULL with err when it cannot start. */
xfer_t *xfer_upload(const char *path, const char *shown, const char *sha, long long size, xfer_done_fn *fn, void *arg,
                    char *err, size_t errlen);
/* GETs sha into name in dirfd (a temp file renamed into place once its
 * sha256 and size are the expected ones). shown names it in errors. */
xfer_t *xfer_download(int dirfd, const char *name, const char *shown, const char *sha, long long size,
                      xfer_done_fn *fn, void *arg, char *err, size_t errlen);
/* Stops x; its callback is not called; x is freed. */
void xfer_cancel(xfer_t *x);

#endif

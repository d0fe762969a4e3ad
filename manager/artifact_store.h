/* artifact_store: the manager's content-addressed files on local disk,
 * DEVSYS_ARTIFACT_DIR/aa/bb/<sha256>. A body is hashed while it is written to
 * a temp file (in a thread, off the loop) and renamed into place only when its
 * sha256 is the one named, so a reader never sees a partial or wrong file. */
#ifndef DEVSYS_ARTIFACT_STORE_H
#define DEVSYS_ARTIFACT_STORE_H

#include <stddef.h>
#include <sys/types.h>

struct event_base;
struct evbuffer;
typedef struct astore astore_t;

#define ASTORE_MAX_DEFAULT (256LL << 20) /* DEVSYS_ARTIFACT_MAX_BYTES */
#define ASTORE_CAP_DEFAULT (10LL << 30)  /* DEVSYS_ARTIFACT_STORE_MAX_BYTES: the whole store */

/* The store's directory: DEVSYS_ARTIFACT_DIR, else /var/tmp/devsys-<uid>/artifacts.
 * Static text. */
const char *astore_dir_from_env(void);
/* Is hex 64 lowercase hex digits? */
int astore_sha_ok(const char *hex);
/* dir/aa/bb/<sha> into buf (sha must be astore_sha_ok). */
void astore_path(const char *dir, const char *sha, char *buf, size_t n);

/* Creates dir and dir/tmp (0700) and counts the bytes already there (one
 * walk of the directories, at start). Returns NULL with a message in err. */
astore_t *astore_new(struct event_base *base, const char *dir, char *err, size_t errlen);
/* Waits for writes in flight (their callbacks are not called). */
void astore_free(astore_t *s);
const char *astore_dir(const astore_t *s);

/* Opens sha's file for reading: its fd (caller closes) and size, or -1
 * (errno ENOENT when the store does not have it). */
int astore_open(const astore_t *s, const char *sha, off_t *size);

/* The outcome of a put: 201 stored, 200 it was there already (its mtime is
 * renewed: the GC counts age from the last put), 400 the body's sha256 is
 * another (msg names both), 507 the store would pass its cap
 * (DEVSYS_ARTIFACT_STORE_MAX_BYTES, counting puts in flight; a put of a file
 * it has is never refused), 500 a disk error (msg). fn may run before
 * astore_put returns (507). */
typedef void astore_put_fn(int status, const char *msg, long long size, void *arg);
/* Takes the bytes of body (it is drained), writes them in a thread and calls
 * fn on the loop. */
void astore_put(astore_t *s, const char *sha, struct evbuffer *body, astore_put_fn *fn, void *arg);

/* GC, one bounded pass: the next top-level directory (aa) of dir after
 * *cursor (round robin, -1 starts over): up to max files older than age_s
 * seconds, their sha256 into shas (65 bytes each). Returns how many. */
size_t astore_old_files(const char *dir, int *cursor, double age_s, char (*shas)[65], size_t max);
/* Removes sha's file if it is still older than age_s (a put may have renewed
 * it since it was listed), and takes its bytes off the store's total. 1 when
 * removed. */
int astore_remove_if_old(astore_t *s, const char *sha, double age_s);
/* The bytes and files the store holds now, and its cap (0: none). */
void astore_usage(const astore_t *s, long long *bytes, long long *files, long long *cap);

#endif

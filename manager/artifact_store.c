/* artifact_store: content-addressed files on the manager's disk (see
 * artifact_store.h). Writes run in one thread each; the thread hands its job
 * back to the loop through the store's pipe. */
#include "artifact_store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "config.h"
#include "log.h"
#include "xalloc.h"

struct put_job {
    astore_t *s;
    long long reserved; /* bytes held against the cap while it runs */
    pthread_t thread;
    char sha[65];
    struct evbuffer *body;
    astore_put_fn *fn;
    void *arg;
    int status;
    long long size;
    char msg[300];
    struct put_job *next;
};

struct astore {
    struct event_base *base;
    char *dir;
    int pipe_r, pipe_w;    /* threads write the address of their finished job */
    struct event *done_ev;
    struct put_job *jobs;  /* in flight */
    long long cap;         /* bytes the store may hold (DEVSYS_ARTIFACT_STORE_MAX_BYTES); 0: no cap */
    long long total;       /* bytes of its files (scanned at start, then kept by puts and removals) */
    long long reserved;    /* bytes of puts in flight */
    long long files;
};

const char *astore_dir_from_env(void)
{
    static char def[128];
    snprintf(def, sizeof def, "/var/tmp/devsys-%u/artifacts", (unsigned)getuid());
    return cfg_str("DEVSYS_ARTIFACT_DIR", def);
}

int astore_sha_ok(const char *hex)
{
    size_t i = 0;
    for (; hex[i]; i++)
        if (i >= 64 || !((hex[i] >= '0' && hex[i] <= '9') || (hex[i] >= 'a' && hex[i] <= 'f')))
            return 0;
    return i == 64;
}

void astore_path(const char *dir, const char *sha, char *buf, size_t n)
{
    snprintf(buf, n, "%s/%.2s/%.2s/%s", dir, sha, sha + 2, sha);
}

static int hex2(const char *n);
static int walk_top(const char *dir, int top, int (*visit)(const char *sha, const struct stat *st, void *arg),
                    void *arg);

static int mkdir_p(const char *path)
{
    char *p = xstrdup(path);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, 0700) < 0 && errno != EEXIST) {
            free(p);
            return -1;
        }
        *s = '/';
    }
    int rc = mkdir(p, 0700) < 0 && errno != EEXIST ? -1 : 0;
    free(p);
    return rc;
}

/* ------------------------------------------------------------------ writes */

static void job_finish(struct put_job *j, int status, const char *fmt, const char *a, const char *b)
{
    j->status = status;
    snprintf(j->msg, sizeof j->msg, fmt, a, b);
}

/* The thread: temp file in dir/tmp, hashed as written, synced, renamed. */
static void *put_thread(void *arg)
{
    struct put_job *j = arg;
    const char *dir = j->s->dir;
    char tmp[4200], final[4200];
    snprintf(tmp, sizeof tmp, "%s/tmp/put-XXXXXX", dir);
    astore_path(dir, j->sha, final, sizeof final);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        job_finish(j, 500, "artifact store: temp file: %s%s", strerror(errno), "");
        goto out;
    }
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    int nvec = evbuffer_peek(j->body, -1, NULL, NULL, 0);
    struct evbuffer_iovec *v = xcalloc((size_t)(nvec > 0 ? nvec : 1), sizeof *v);
    evbuffer_peek(j->body, -1, NULL, v, nvec);
    int werr = 0;
    for (int i = 0; i < nvec && !werr; i++) {
        crypto_hash_sha256_update(&st, v[i].iov_base, v[i].iov_len);
        const char *p = v[i].iov_base;
        size_t left = v[i].iov_len;
        while (left > 0) {
            ssize_t n = write(fd, p, left);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0) {
                werr = errno;
                break;
            }
            p += n;
            left -= (size_t)n;
        }
    }
    free(v);
    j->size = (long long)evbuffer_get_length(j->body);
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_final(&st, h);
    char got[65];
    sodium_bin2hex(got, sizeof got, h, sizeof h);
    if (!werr && fdatasync(fd) < 0)
        werr = errno;
    close(fd);
    if (werr) {
        job_finish(j, 500, "artifact store: writing: %s%s", strerror(werr), "");
    } else if (strcmp(got, j->sha) != 0) {
        job_finish(j, 400, "body sha256 is %s, not %s (the sha256 in the path)", got, j->sha);
    } else if (access(final, F_OK) == 0) {
        /* idempotent; the put renews its age for the GC */
        utimensat(AT_FDCWD, final, NULL, 0);
        job_finish(j, 200, "exists%s%s", "", "");
    } else {
        char sub[4200];
        snprintf(sub, sizeof sub, "%.*s", (int)(strrchr(final, '/') - final), final);
        if (mkdir_p(sub) < 0 || rename(tmp, final) < 0)
            job_finish(j, 500, "artifact store: %.200s: %s", final, strerror(errno));
        else
            job_finish(j, 201, "stored%s%s", "", "");
    }
    if (j->status != 201)
        unlink(tmp);
out:
    (void)!write(j->s->pipe_w, &j, sizeof j);
    return NULL;
}

static void job_unlink(astore_t *s, struct put_job *j)
{
    for (struct put_job **pp = &s->jobs; *pp; pp = &(*pp)->next)
        if (*pp == j) {
            *pp = j->next;
            return;
        }
}

static void on_job_done(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    astore_t *s = arg;
    struct put_job *j;
    while (read(fd, &j, sizeof j) == (ssize_t)sizeof j) {
        pthread_join(j->thread, NULL);
        job_unlink(s, j);
        s->reserved -= j->reserved;
        if (j->status == 201) {
            s->total += j->size;
            s->files++;
        }
        evbuffer_free(j->body);
        j->fn(j->status, j->msg, j->size, j->arg);
        free(j);
    }
}

void astore_put(astore_t *s, const char *sha, struct evbuffer *body, astore_put_fn *fn, void *arg)
{
    /* even when the file exists the body is hashed: a wrong one is a 400 */
    long long len = (long long)evbuffer_get_length(body);
    if (s->cap > 0 && s->total + s->reserved + len > s->cap) {
        char path[4200], msg[300];
        astore_path(s->dir, sha, path, sizeof path);
        if (access(path, F_OK) != 0) { /* a put of a file it has takes no room */
            snprintf(msg, sizeof msg,
                     "artifact store full: %lld of %lld bytes used, %lld in uploads, this one %lld"
                     " (DEVSYS_ARTIFACT_STORE_MAX_BYTES; unreferenced artifacts are collected after"
                     " DEVSYS_ARTIFACT_RETENTION_S)",
                     s->total, s->cap, s->reserved, len);
            fn(507, msg, 0, arg);
            return;
        }
    }
    struct put_job *j = xcalloc(1, sizeof *j);
    j->reserved = len;
    j->s = s;
    snprintf(j->sha, sizeof j->sha, "%s", sha);
    j->body = evbuffer_new();
    evbuffer_add_buffer(j->body, body);
    j->fn = fn;
    j->arg = arg;
    if (pthread_create(&j->thread, NULL, put_thread, j) != 0) {
        evbuffer_free(j->body);
        free(j);
        fn(500, "artifact store: cannot start a writer thread", 0, arg);
        return;
    }
    j->next = s->jobs;
    s->jobs = j;
    s->reserved += len;
}

/* -------------------------------------------------------------- lifecycle */

/* The bytes and files of the store, once at start (one readdir of each
 * aa/bb directory; tmp/ is not counted: what is there is a put in flight or
 * left by a crash). */
static int count_file(const char *sha, const struct stat *st, void *arg)
{
    (void)sha;
    astore_t *s = arg;
    s->total += st->st_size;
    s->files++;
    return 1;
}

static void scan_total(astore_t *s)
{
    for (int a = 0; a < 256; a++)
        walk_top(s->dir, a, count_file, s);
}

astore_t *astore_new(struct event_base *base, const char *dir, char *err, size_t errlen)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s/tmp", dir);
    if (sodium_init() < 0 || mkdir_p(tmp) < 0) {
        snprintf(err, errlen, "DEVSYS_ARTIFACT_DIR: cannot create %s: %s", tmp, strerror(errno));
        return NULL;
    }
    int p[2];
    if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0) {
        snprintf(err, errlen, "artifact store: pipe: %s", strerror(errno));
        return NULL;
    }
    astore_t *s = xcalloc(1, sizeof *s);
    s->base = base;
    s->dir = xstrdup(dir);
    s->pipe_r = p[0];
    s->pipe_w = p[1];
    s->done_ev = event_new(base, p[0], EV_READ | EV_PERSIST, on_job_done, s);
    event_add(s->done_ev, NULL);
    s->cap = cfg_long("DEVSYS_ARTIFACT_STORE_MAX_BYTES", ASTORE_CAP_DEFAULT, 0, 1LL << 50);
    scan_total(s);
    if (s->cap > 0 && s->total > s->cap)
        log_warn("artifact store %s: %lld bytes in %lld files, over DEVSYS_ARTIFACT_STORE_MAX_BYTES (%lld):"
                 " uploads get 507 until the GC frees room", dir, s->total, s->files, s->cap);
    return s;
}

void astore_free(astore_t *s)
{
    if (!s)
        return;
    while (s->jobs) {
        struct put_job *j = s->jobs;
        s->jobs = j->next;
        pthread_join(j->thread, NULL);
        evbuffer_free(j->body);
        free(j);
    }
    event_free(s->done_ev);
    close(s->pipe_r);
    close(s->pipe_w);
    free(s->dir);
    free(s);
}

const char *astore_dir(const astore_t *s)
{
    return s->dir;
}

int astore_open(const astore_t *s, const char *sha, off_t *size)
{
    char path[4200];
    astore_path(s->dir, sha, path, sizeof path);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    if (fd < 0)
        return -1;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        errno = ENOENT;
        return -1;
    }
    *size = st.st_size;
    return fd;
}

/* --------------------------------------------------------------------- GC */

static int hex2(const char *n)
{
    return strlen(n) == 2 && ((n[0] >= '0' && n[0] <= '9') || (n[0] >= 'a' && n[0] <= 'f')) &&
           ((n[1] >= '0' && n[1] <= '9') || (n[1] >= 'a' && n[1] <= 'f'));
}

static int too_old(const struct stat *st, double age_s)
{
    return (double)(time(NULL) - st->st_mtime) > age_s;
}

/* Calls visit for each regular file of dir/<aa> (aa: top, 0..255) while it
 * returns 1. -1 when that directory does not exist. */
static int walk_top(const char *dir, int top, int (*visit)(const char *sha, const struct stat *st, void *arg),
                    void *arg)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%02x", dir, top);
    DIR *d1 = opendir(path);
    if (!d1)
        return -1;
    struct dirent *e1;
    int more = 1;
    while (more && (e1 = readdir(d1))) {
        if (!hex2(e1->d_name))
            continue;
        char sub[4300];
        snprintf(sub, sizeof sub, "%s/%.2s", path, e1->d_name);
        DIR *d2 = opendir(sub);
        if (!d2)
            continue;
        struct dirent *e2;
        struct stat st;
        while (more && (e2 = readdir(d2)))
            if (astore_sha_ok(e2->d_name) && fstatat(dirfd(d2), e2->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                S_ISREG(st.st_mode))
                more = visit(e2->d_name, &st, arg);
        closedir(d2);
    }
    closedir(d1);
    return 0;
}

struct old_files {
    double age_s;
    char (*shas)[65];
    size_t n, max;
};

static int note_old(const char *sha, const struct stat *st, void *arg)
{
    struct old_files *o = arg;
    if (too_old(st, o->age_s))
        memcpy(o->shas[o->n++], sha, 65); /* 64 hex digits and the NUL */
    return o->n < o->max;
}

size_t astore_old_files(const char *dir, int *cursor, double age_s, char (*shas)[65], size_t max)
{
    /* the aa directories are 00..ff: visit the next existing one */
    struct old_files o = {age_s, shas, 0, max};
    for (int step = 0; step < 256 && max > 0; step++) {
        *cursor = (*cursor + 1) % 256;
        if (walk_top(dir, *cursor, note_old, &o) == 0)
            break;
    }
    return o.n;
}

int astore_remove_if_old(astore_t *s, const char *sha, double age_s)
{
    char path[4200];
    astore_path(s->dir, sha, path, sizeof path);
    struct stat st;
    if (lstat(path, &st) < 0 || !too_old(&st, age_s) || unlink(path) < 0)
        return 0;
    s->total -= st.st_size;
    s->files--;
    return 1;
}

void astore_usage(const astore_t *s, long long *bytes, long long *files, long long *cap)
{
    *bytes = s->total;
    *files = s->files;
    *cap = s->cap;
}

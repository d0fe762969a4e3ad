/* backup: the backup and restore commands of devsys-manager (see backup.h).
 * PostgreSQL is dumped with pg_dump and restored with pg_restore, the
 * directories with GNU tar: this file only orders them and checks the result. */
#include "backup.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <limits.h>
#include <sodium.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "artifact_store.h"
#include "config.h"
#include "migrate.h"
#include "taskdb.h"
#include "version.h"

extern char **environ;

#define BACKUP_FORMAT "devsys-backup"
#define BACKUP_FORMAT_VERSION 1
#define MANIFEST "manifest.json"
#define MANIFEST_MAX (1 << 20)

enum part_id { PART_DB, PART_ARTIFACTS, PART_DEPLOY, PART_N };

static const struct part_def {
    const char *name;  /* on the command line and in the manifest */
    const char *file;  /* its member in the archive */
    const char *where; /* what it is taken from (messages) */
} part_defs[PART_N] = {
    [PART_DB] = {"db", "db.dump", "PostgreSQL (DEVSYS_DATABASE_URL)"},
    [PART_ARTIFACTS] = {"artifacts", "artifacts.tar", "the manager's artifact store (DEVSYS_ARTIFACT_DIR)"},
    [PART_DEPLOY] = {"deploy", "deploy.tar", "an agent's deploy root (DEVSYS_DEPLOY_ROOT)"},
};

/* What one run works on. */
struct job {
    char stage[PATH_MAX]; /* temp directory of the parts; "" when none */
    const char *db_url;
    const char *artifact_dir;
    const char *deploy_root; /* NULL when DEVSYS_DEPLOY_ROOT is not set */
    int want[PART_N];        /* -1: not named (the default applies), 0/1 */
};

/* err gets fmt with a and b, without the newline libpq's messages end with. */
static int fail(char *err, size_t errlen, const char *fmt, const char *a, const char *b)
{
    snprintf(err, errlen, fmt, a, b);
    for (size_t n = strlen(err); n > 0 && (err[n - 1] == '\n' || err[n - 1] == ' '); n--)
        err[n - 1] = '\0';
    return -1;
}

/* ------------------------------------------------------------------ helpers */

/* Runs argv (PATH lookup) with this process's environment and waits. An exit
 * status up to ok_max counts as success (GNU tar --create exits 1 when a file
 * changed while it was read: the artifact store's files are renamed into
 * place whole, so a file it archived is never half written). */
static int run(char *const argv[], int ok_max, char *err, size_t errlen)
{
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ);
    if (rc != 0)
        return fail(err, errlen, "cannot run %s: %s", argv[0], strerror(rc));
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return fail(err, errlen, "waiting for %s: %s", argv[0], strerror(errno));
    if (WIFEXITED(st) && WEXITSTATUS(st) <= ok_max)
        return 0;
    char how[64];
    if (WIFEXITED(st))
        snprintf(how, sizeof how, "exited with status %d", WEXITSTATUS(st));
    else
        snprintf(how, sizeof how, "was killed by signal %d", WTERMSIG(st));
    return fail(err, errlen, "%s %s (its message is above)", argv[0], how);
}

/* pg_dump or pg_restore: from DEVSYS_PG_BINDIR when set (the client must be
 * at least as new as the server), else from PATH. buf holds the result. */
static char *pg_tool(const char *name, char *buf, size_t n)
{
    const char *dir = cfg_str("DEVSYS_PG_BINDIR", NULL);
    if (dir)
        snprintf(buf, n, "%s/%s", dir, name);
    else
        snprintf(buf, n, "%s", name);
    return buf;
}

/* The connection's parameters become the PG* variables pg_dump and
 * pg_restore read, so no password appears on their command line. */
static int pg_export(const char *conninfo, char *err, size_t errlen)
{
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo, &perr);
    if (!opts) {
        fail(err, errlen, "DEVSYS_DATABASE_URL: %s%s", perr ? perr : "cannot be parsed", "");
        PQfreemem(perr);
        return -1;
    }
    for (PQconninfoOption *o = opts; o->keyword; o++)
        if (o->val && *o->val && o->envvar)
            setenv(o->envvar, o->val, 1);
    PQconninfoFree(opts);
    return 0;
}

static PGconn *pg_open(const char *conninfo, char *err, size_t errlen)
{
    PGconn *c = PQconnectdb(conninfo);
    if (PQstatus(c) != CONNECTION_OK) {
        fail(err, errlen, "cannot connect to PostgreSQL: %s%s", PQerrorMessage(c), "");
        PQfinish(c);
        return NULL;
    }
    return c;
}

/* One number from sql, or -1 with a message. */
static long long pg_number(PGconn *c, const char *sql, char *err, size_t errlen)
{
    PGresult *r = PQexec(c, sql);
    long long v = -1;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
        v = PQgetisnull(r, 0, 0) ? 0 : atoll(PQgetvalue(r, 0, 0));
    else
        fail(err, errlen, "PostgreSQL: %s%s", PQresultErrorMessage(r), "");
    PQclear(r);
    return v;
}

/* The last migration applied (0: none, no schema_migrations), or -1. */
static long long schema_version(PGconn *c, char *err, size_t errlen)
{
    long long have = pg_number(c, "SELECT (to_regclass('schema_migrations') IS NOT NULL)::int", err, errlen);
    if (have <= 0)
        return have;
    return pg_number(c, "SELECT max(version) FROM schema_migrations", err, errlen);
}

static int known_schema(void)
{
    return migrations_count ? migrations[migrations_count - 1].version : 0;
}

static int sha256_file(const char *path, char hex[65], long long *size, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return fail(err, errlen, "%s: %s", path, strerror(errno));
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    static unsigned char buf[1 << 16];
    size_t n;
    *size = 0;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
        crypto_hash_sha256_update(&st, buf, n);
        *size += (long long)n;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad)
        return fail(err, errlen, "%s: read error%s", path, "");
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_final(&st, h);
    sodium_bin2hex(hex, 65, h, sizeof h);
    return 0;
}

/* mkdir -p with mode for the directories it creates. */
static int mkdirs(const char *path, mode_t mode, char *err, size_t errlen)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return fail(err, errlen, "%s: path too long%s", path, "");
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        if (mkdir(buf, mode) < 0 && errno != EEXIST)
            return fail(err, errlen, "cannot create %s: %s", buf, strerror(errno));
        *p = c;
        if (!c)
            return 0;
    }
}

/* An absent or empty directory (a restore never mixes two deploy roots). */
static int dir_empty(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return errno == ENOENT;
    struct dirent *e;
    int empty = 1;
    while (empty && (e = readdir(d)))
        empty = strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0;
    closedir(d);
    return empty;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

/* Removes the temp directory and what is in it (ours only). */
static void stage_remove(struct job *j)
{
    if (j->stage[0])
        nftw(j->stage, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    j->stage[0] = '\0';
}

static int stage_make(struct job *j, const char *under, char *err, size_t errlen)
{
    /* a stage path leaves room for the members' names (stage_path) */
    if (snprintf(j->stage, sizeof j->stage - 32, "%s/.devsys-backup-XXXXXX", under) >= (int)sizeof j->stage - 32)
        return fail(err, errlen, "%s: path too long%s", under, "");
    if (!mkdtemp(j->stage)) {
        fail(err, errlen, "cannot create a temp directory under %s: %s", under, strerror(errno));
        j->stage[0] = '\0';
        return -1;
    }
    return 0;
}

/* buf: at least PATH_MAX bytes; stage_make left room for every member name. */
static void stage_path(const struct job *j, const char *name, char *buf, size_t n)
{
    if (snprintf(buf, n, "%s/%s", j->stage, name) >= (int)n)
        abort();
}

/* Names on the command line into j->want; unknown names are refused. */
static int parts_parse(struct job *j, char **parts, int nparts, char *err, size_t errlen)
{
    for (int p = 0; p < PART_N; p++)
        j->want[p] = nparts ? 0 : -1;
    for (int i = 0; i < nparts; i++) {
        int p = 0;
        while (p < PART_N && strcmp(parts[i], part_defs[p].name) != 0)
            p++;
        if (p == PART_N)
            return fail(err, errlen, "unknown part \"%s\": the parts are db, artifacts and deploy%s", parts[i], "");
        j->want[p] = 1;
    }
    return 0;
}

static void job_init(struct job *j)
{
    memset(j, 0, sizeof *j);
    j->db_url = cfg_secret("DEVSYS_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/devsys");
    j->artifact_dir = astore_dir_from_env();
    j->deploy_root = cfg_str("DEVSYS_DEPLOY_ROOT", NULL);
}

/* ------------------------------------------------------------------- backup */

/* Dumps the database into the stage; the schema version into *schema. */
static int dump_db(struct job *j, long long *schema, char *err, size_t errlen)
{
    PGconn *c = pg_open(j->db_url, err, errlen);
    if (!c)
        return -1;
    *schema = schema_version(c, err, errlen);
    PQfinish(c);
    if (*schema < 0)
        return -1;
    if (*schema == 0)
        return fail(err, errlen, "the database has no schema_migrations: run devsys-manager migrate first%s%s", "", "");
    if (pg_export(j->db_url, err, errlen) < 0)
        return -1;
    char tool[PATH_MAX], out[PATH_MAX + 16], path[PATH_MAX];
    stage_path(j, part_defs[PART_DB].file, path, sizeof path);
    snprintf(out, sizeof out, "--file=%s", path);
    char *const argv[] = {pg_tool("pg_dump", tool, sizeof tool), "--format=custom", out, NULL};
    return run(argv, 0, err, errlen);
}

static int tar_dir(struct job *j, enum part_id p, const char *dir, char *err, size_t errlen)
{
    char out[PATH_MAX + 16], in[PATH_MAX + 16], path[PATH_MAX];
    stage_path(j, part_defs[p].file, path, sizeof path);
    snprintf(out, sizeof out, "--file=%s", path);
    snprintf(in, sizeof in, "--directory=%s", dir);
    /* tmp/ of the artifact store holds uploads in progress, never a stored file */
    char *const argv[] = {"tar", "--create", out, in, "--exclude=./tmp", "--warning=no-file-changed", ".", NULL};
    return run(argv, 1, err, errlen);
}

static char *iso_now(char *buf, size_t n)
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

/* Each part written to the stage gets its size and sha256 in the manifest. */
static int manifest_add(struct job *j, json_t *list, enum part_id p, const char *source, char *err, size_t errlen)
{
    char path[PATH_MAX], hex[65];
    long long size;
    stage_path(j, part_defs[p].file, path, sizeof path);
    if (sha256_file(path, hex, &size, err, errlen) < 0)
        return -1;
    json_array_append_new(list, json_pack("{s:s,s:s,s:I,s:s,s:s}", "name", part_defs[p].name, "file",
                                          part_defs[p].file, "size", (json_int_t)size, "sha256", hex,
                                          "source", source));
    printf("  %-14s %12lld bytes  sha256 %.16s...  from %s\n", part_defs[p].file, size, hex, source);
    return 0;
}

static int backup_parts(struct job *j, const char *file, char *err, size_t errlen)
{
    char when[32], host[256] = "", path[PATH_MAX];
    gethostname(host, sizeof host - 1);
    json_t *m = json_pack("{s:s,s:i,s:s,s:s,s:s,s:i}", "format", BACKUP_FORMAT, "format_version",
                          BACKUP_FORMAT_VERSION, "version", devsys_version(), "created_at",
                          iso_now(when, sizeof when), "host", host, "known_schema_version", known_schema());
    json_t *list = json_array();
    json_object_set_new(m, "parts", list);
    int rc = -1;
    printf("backup %s:\n", file);
    if (j->want[PART_DB]) {
        long long schema;
        if (dump_db(j, &schema, err, errlen) < 0)
            goto out;
        json_object_set_new(m, "schema_version", json_integer(schema));
        char src[64];
        snprintf(src, sizeof src, "PostgreSQL, schema %lld", schema);
        if (manifest_add(j, list, PART_DB, src, err, errlen) < 0)
            goto out;
    }
    /* After the dump: every artifact a dumped task names is in the store by then. */
    if (j->want[PART_ARTIFACTS] &&
        (tar_dir(j, PART_ARTIFACTS, j->artifact_dir, err, errlen) < 0 ||
         manifest_add(j, list, PART_ARTIFACTS, j->artifact_dir, err, errlen) < 0))
        goto out;
    if (j->want[PART_DEPLOY] &&
        (tar_dir(j, PART_DEPLOY, j->deploy_root, err, errlen) < 0 ||
         manifest_add(j, list, PART_DEPLOY, j->deploy_root, err, errlen) < 0))
        goto out;
    stage_path(j, MANIFEST, path, sizeof path);
    if (json_dump_file(m, path, JSON_INDENT(2) | JSON_SORT_KEYS) < 0) {
        fail(err, errlen, "cannot write %s: %s", path, strerror(errno));
        goto out;
    }
    /* The archive: the manifest first, so a restore reads it without the rest. */
    char partial[PATH_MAX + 16], out_arg[PATH_MAX + 32], dir_arg[PATH_MAX + 16];
    snprintf(partial, sizeof partial, "%s.partial", file);
    snprintf(out_arg, sizeof out_arg, "--file=%s", partial);
    snprintf(dir_arg, sizeof dir_arg, "--directory=%s", j->stage);
    char *argv[4 + 1 + PART_N + 1] = {"tar", "--create", out_arg, dir_arg, MANIFEST};
    int n = 5;
    for (int p = 0; p < PART_N; p++)
        if (j->want[p])
            argv[n++] = (char *)part_defs[p].file;
    argv[n] = NULL;
    if (run(argv, 0, err, errlen) < 0)
        goto out;
    FILE *f = fopen(partial, "rb+");
    int synced = f && fsync(fileno(f)) == 0;
    if (f)
        fclose(f);
    if (!synced || rename(partial, file) < 0) {
        fail(err, errlen, "cannot write %s: %s", file, strerror(errno));
        unlink(partial);
        goto out;
    }
    printf("wrote %s (devsys %s)\n", file, devsys_version());
    rc = 0;
out:
    json_decref(m);
    return rc;
}

int backup_run(const char *file, char **parts, int nparts, char *err, size_t errlen)
{
    struct job j;
    job_init(&j);
    if (parts_parse(&j, parts, nparts, err, errlen) < 0)
        return -1;
    struct stat sb;
    int have_store = stat(j.artifact_dir, &sb) == 0 && S_ISDIR(sb.st_mode);
    if (j.want[PART_DB] < 0)
        j.want[PART_DB] = 1;
    if (j.want[PART_ARTIFACTS] < 0)
        j.want[PART_ARTIFACTS] = have_store;
    else if (j.want[PART_ARTIFACTS] && !have_store)
        return fail(err, errlen, "artifacts: %s is not a directory (DEVSYS_ARTIFACT_DIR)%s", j.artifact_dir, "");
    if (j.want[PART_DEPLOY] < 0)
        j.want[PART_DEPLOY] = j.deploy_root != NULL;
    else if (j.want[PART_DEPLOY] && !j.deploy_root)
        return fail(err, errlen, "deploy: DEVSYS_DEPLOY_ROOT is not set%s%s", "", "");
    if (j.want[PART_DEPLOY] && (stat(j.deploy_root, &sb) < 0 || !S_ISDIR(sb.st_mode)))
        return fail(err, errlen, "deploy: %s is not a directory (DEVSYS_DEPLOY_ROOT)%s", j.deploy_root, "");
    if (access(file, F_OK) == 0)
        return fail(err, errlen, "%s exists: a backup never replaces a file%s", file, "");
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", file);
    char *slash = strrchr(dir, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    if (stage_make(&j, dir, err, errlen) < 0)
        return -1;
    int rc = backup_parts(&j, file, err, errlen);
    stage_remove(&j);
    return rc;
}

/* ------------------------------------------------------------------ restore */

/* What the manifest says of one part. */
struct part_rec {
    int present;
    long long size;
    char sha256[65];
};

static int extract(const char *archive, const char *dir, char *const members[], char *err, size_t errlen)
{
    char in[PATH_MAX + 16], to[PATH_MAX + 16];
    snprintf(in, sizeof in, "--file=%s", archive);
    snprintf(to, sizeof to, "--directory=%s", dir);
    char *argv[5 + PART_N + 2] = {"tar", "--extract", "--no-same-owner", in, to};
    int n = 5;
    for (int i = 0; members && members[i] && n < 5 + PART_N + 1; i++)
        argv[n++] = members[i];
    argv[n] = NULL;
    return run(argv, 0, err, errlen);
}

/* Reads and checks the manifest of file (extracted into the stage): format,
 * parts, and a schema this binary can migrate from. */
static int manifest_read(struct job *j, const char *file, struct part_rec rec[PART_N], long long *schema,
                         char *err, size_t errlen)
{
    char *const members[] = {MANIFEST, NULL};
    char path[PATH_MAX];
    if (extract(file, j->stage, members, err, errlen) < 0)
        return fail(err, errlen, "%s is not a devsys backup: no readable %s in it", file, MANIFEST);
    stage_path(j, MANIFEST, path, sizeof path);
    json_error_t je;
    json_t *m = json_load_file(path, 0, &je);
    int rc = -1;
    const char *format = NULL;
    int fv = 0;
    json_t *parts = NULL;
    json_int_t sv = 0;
    if (!m || json_unpack_ex(m, &je, 0, "{s:s,s:i,s:o,s?I}", "format", &format, "format_version", &fv, "parts",
                             &parts, "schema_version", &sv) < 0 ||
        strcmp(format, BACKUP_FORMAT) != 0 || !json_is_array(parts)) {
        fail(err, errlen, "%s: %s is not a devsys backup manifest", file, MANIFEST);
        goto out;
    }
    if (fv != BACKUP_FORMAT_VERSION) {
        char v[16];
        snprintf(v, sizeof v, "%d", fv);
        fail(err, errlen, "%s: backup format %s; this devsys-manager reads format 1", file, v);
        goto out;
    }
    *schema = sv;
    if (sv > known_schema()) {
        char a[64];
        snprintf(a, sizeof a, "%lld, newer than the %d", (long long)sv, known_schema());
        fail(err, errlen, "%s: the backup's schema version is %s this devsys-manager knows: restore with the"
                          " devsys-manager of that release or a newer one", file, a);
        goto out;
    }
    size_t i;
    json_t *it;
    json_array_foreach(parts, i, it) {
        const char *name = NULL, *pfile = NULL, *sha = NULL;
        json_int_t size = -1;
        if (json_unpack(it, "{s:s,s:s,s:I,s:s}", "name", &name, "file", &pfile, "size", &size, "sha256", &sha) < 0 ||
            size < 0 || !astore_sha_ok(sha)) {
            fail(err, errlen, "%s: %s: a part without name, file, size or sha256", file, MANIFEST);
            goto out;
        }
        int p = 0;
        while (p < PART_N && strcmp(name, part_defs[p].name) != 0)
            p++;
        if (p == PART_N || strcmp(pfile, part_defs[p].file) != 0) {
            fail(err, errlen, "%s: unknown part \"%s\" (a newer devsys wrote it?)", file, name);
            goto out;
        }
        rec[p].present = 1;
        rec[p].size = size;
        snprintf(rec[p].sha256, sizeof rec[p].sha256, "%s", sha);
    }
    if (rec[PART_DB].present && sv <= 0) {
        fail(err, errlen, "%s: %s has a database part but no schema_version", file, MANIFEST);
        goto out;
    }
    rc = 0;
out:
    json_decref(m);
    return rc;
}

/* The parts to restore: those named, else those of the archive (deploy.tar
 * only where DEVSYS_DEPLOY_ROOT is set). */
static int restore_select(struct job *j, const char *file, const struct part_rec rec[PART_N], char *err,
                          size_t errlen)
{
    for (int p = 0; p < PART_N; p++) {
        if (j->want[p] == 1 && !rec[p].present)
            return fail(err, errlen, "%s has no %s part", file, part_defs[p].name);
        if (j->want[p] < 0)
            j->want[p] = rec[p].present && (p != PART_DEPLOY || j->deploy_root);
    }
    if (rec[PART_DEPLOY].present && !j->want[PART_DEPLOY])
        printf("  %-14s skipped: it belongs on an agent's host (DEVSYS_DEPLOY_ROOT=... devsys-manager restore"
               " FILE deploy)\n", part_defs[PART_DEPLOY].file);
    return 0;
}

/* The targets: every check that can fail before anything changes. */
static int restore_check(struct job *j, char *err, size_t errlen)
{
    if (j->want[PART_DEPLOY]) {
        if (!j->deploy_root)
            return fail(err, errlen, "deploy: DEVSYS_DEPLOY_ROOT is not set%s%s", "", "");
        if (j->deploy_root[0] != '/')
            return fail(err, errlen, "deploy: DEVSYS_DEPLOY_ROOT must be absolute, not %s%s", j->deploy_root, "");
        if (!dir_empty(j->deploy_root))
            return fail(err, errlen, "deploy: %s is not empty: restore into a new deploy root (DEVSYS_DEPLOY_ROOT)%s",
                        j->deploy_root, "");
    }
    if (!j->want[PART_DB])
        return 0;
    PGconn *c = pg_open(j->db_url, err, errlen);
    if (!c)
        return -1;
    long long used = pg_number(c,
                               "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                               " WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')"
                               "   AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'",
                               err, errlen);
    char name[256];
    snprintf(name, sizeof name, "%s", PQdb(c));
    PQfinish(c);
    if (used < 0)
        return -1;
    if (used > 0)
        return fail(err, errlen, "database \"%s\" is not empty (tables or sequences exist): restore needs an empty"
                                 " database (createdb a new one, point DEVSYS_DATABASE_URL at it)%s", name, "");
    return 0;
}

static int verify_part(struct job *j, const char *file, enum part_id p, const struct part_rec *r, char *err,
                       size_t errlen)
{
    char path[PATH_MAX], hex[65];
    long long size;
    stage_path(j, part_defs[p].file, path, sizeof path);
    if (sha256_file(path, hex, &size, err, errlen) < 0)
        return -1;
    if (size != r->size || strcmp(hex, r->sha256) != 0) {
        char what[200];
        snprintf(what, sizeof what, "%s is damaged: %lld bytes, sha256 %.16s..., the manifest says %lld bytes,"
                 " sha256 %.16s...", part_defs[p].file, size, hex, r->size, r->sha256);
        return fail(err, errlen, "%s: %s", file, what);
    }
    return 0;
}

/* pg_restore in one transaction, newer migrations, then the transport of
 * every unfinished task marked lost for the reconciler. */
static int restore_db(struct job *j, char *err, size_t errlen)
{
    PGconn *c = pg_open(j->db_url, err, errlen);
    if (!c)
        return -1;
    char dbarg[300], tool[PATH_MAX], path[PATH_MAX];
    snprintf(dbarg, sizeof dbarg, "--dbname=%s", PQdb(c));
    PQfinish(c);
    if (pg_export(j->db_url, err, errlen) < 0)
        return -1;
    stage_path(j, part_defs[PART_DB].file, path, sizeof path);
    char *const argv[] = {pg_tool("pg_restore", tool, sizeof tool), "--exit-on-error", "--single-transaction",
                          "--no-owner", "--no-privileges", dbarg, path, NULL};
    if (run(argv, 0, err, errlen) < 0)
        return -1;
    int n = migrate_run(j->db_url, err, errlen);
    if (n < 0)
        return -1;
    printf("  %-14s restored; %d newer migrations applied\n", part_defs[PART_DB].file, n);
    if (!(c = pg_open(j->db_url, err, errlen)))
        return -1;
    PGresult *r = PQexec(c, taskdb_restore_lost_sql);
    int ok = PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok)
        fail(err, errlen, "marking unfinished tasks for the reconciler: %s%s", PQresultErrorMessage(r), "");
    for (int i = 0; ok && i < PQntuples(r); i++)
        printf("  %s tasks to republish: %s\n", PQgetvalue(r, i, PQfnumber(r, "state")),
               PQgetvalue(r, i, PQfnumber(r, "n")));
    PQclear(r);
    PQfinish(c);
    return ok ? 0 : -1;
}

static int restore_dir(struct job *j, enum part_id p, const char *dir, char *err, size_t errlen)
{
    char path[PATH_MAX];
    stage_path(j, part_defs[p].file, path, sizeof path);
    if (mkdirs(dir, 0700, err, errlen) < 0 || extract(path, dir, NULL, err, errlen) < 0)
        return -1;
    printf("  %-14s restored into %s\n", part_defs[p].file, dir);
    return 0;
}

static int restore_parts(struct job *j, const char *file, char *err, size_t errlen)
{
    struct part_rec rec[PART_N] = {{0}};
    long long schema = 0;
    if (manifest_read(j, file, rec, &schema, err, errlen) < 0 || restore_select(j, file, rec, err, errlen) < 0)
        return -1;
    char *members[PART_N + 1];
    int n = 0;
    for (int p = 0; p < PART_N; p++)
        if (j->want[p])
            members[n++] = (char *)part_defs[p].file;
    members[n] = NULL;
    if (n == 0)
        return fail(err, errlen, "%s: nothing to restore%s", file, "");
    if (extract(file, j->stage, members, err, errlen) < 0)
        return -1;
    for (int p = 0; p < PART_N; p++)
        if (j->want[p] && verify_part(j, file, (enum part_id)p, &rec[p], err, errlen) < 0)
            return -1;
    if (restore_check(j, err, errlen) < 0)
        return -1;
    printf("restore %s (schema %lld, this devsys-manager knows %d):\n", file, schema, known_schema());
    if (j->want[PART_DB] && restore_db(j, err, errlen) < 0)
        return -1;
    if (j->want[PART_ARTIFACTS] && restore_dir(j, PART_ARTIFACTS, j->artifact_dir, err, errlen) < 0)
        return -1;
    if (j->want[PART_DEPLOY] && restore_dir(j, PART_DEPLOY, j->deploy_root, err, errlen) < 0)
        return -1;
    if (j->want[PART_DB])
        printf("done: start the managers on an empty Redis (the reconciler republishes every unfinished task), then"
               " the agents\n");
    return 0;
}

int restore_run(const char *file, char **parts, int nparts, char *err, size_t errlen)
{
    struct job j;
    job_init(&j);
    if (parts_parse(&j, parts, nparts, err, errlen) < 0)
        return -1;
    if (access(file, R_OK) < 0)
        return fail(err, errlen, "%s: %s", file, strerror(errno));
    const char *tmp = cfg_str("TMPDIR", "/var/tmp");
    if (stage_make(&j, tmp, err, errlen) < 0)
        return -1;
    int rc = restore_parts(&j, file, err, errlen);
    stage_remove(&j);
    return rc;
}

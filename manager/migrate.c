/* migrate: the migrations runner behind `devsys-manager migrate` (see migrate.h). */
#include "migrate.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/* Arbitrary constant shared by every devsys migrator: "devsys" in ASCII. */
#define MIGRATE_LOCK_KEY "110394340893299"

static int exec_ok(PGconn *c, const char *sql, char *err, size_t errlen)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    int ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    if (!ok)
        snprintf(err, errlen, "%s", PQresultErrorMessage(r));
    PQclear(r);
    return ok ? 0 : -1;
}

static int applied_version(PGconn *c, int version, char *err, size_t errlen)
{
    char buf[16];
    snprintf(buf, sizeof buf, "%d", version);
    const char *params[1] = {buf};
    PGresult *r = PQexecParams(c, "SELECT 1 FROM schema_migrations WHERE version = $1::int", 1, NULL,
                               params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        snprintf(err, errlen, "%s", PQresultErrorMessage(r));
        PQclear(r);
        return -1;
    }
    int n = PQntuples(r);
    PQclear(r);
    return n > 0;
}

static int apply_one(PGconn *c, const struct migration *m, char *err, size_t errlen)
{
    char ver[16];
    snprintf(ver, sizeof ver, "%d", m->version);
    const char *params[2] = {ver, m->name};
    if (exec_ok(c, "BEGIN", err, errlen) < 0)
        return -1;
    if (exec_ok(c, m->sql, err, errlen) < 0)
        goto fail;
    PGresult *r = PQexecParams(c, "INSERT INTO schema_migrations (version, name) VALUES ($1::int, $2)", 2,
                               NULL, params, NULL, NULL, 0);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        snprintf(err, errlen, "%s", PQresultErrorMessage(r));
    PQclear(r);
    if (!ok)
        goto fail;
    return exec_ok(c, "COMMIT", err, errlen);
fail:;
    char ignored[8];
    exec_ok(c, "ROLLBACK", ignored, sizeof ignored);
    return -1;
}

int migrate_run(const char *conninfo, char *err, size_t errlen)
{
    int applied = 0;
    PGconn *c = PQconnectdb(conninfo);
    if (PQstatus(c) != CONNECTION_OK) {
        snprintf(err, errlen, "cannot connect to PostgreSQL: %s", PQerrorMessage(c));
        PQfinish(c);
        return -1;
    }
    /* The lock is taken before creating schema_migrations: two concurrent
     * CREATE TABLE IF NOT EXISTS can still collide on the catalog. */
    if (exec_ok(c, "SET client_min_messages = warning", err, errlen) < 0 ||
        exec_ok(c, "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")", err, errlen) < 0)
        goto fail;
    if (exec_ok(c,
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version integer PRIMARY KEY, name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())",
                err, errlen) < 0)
        goto fail;
    for (int i = 0; i < migrations_count; i++) {
        const struct migration *m = &migrations[i];
        int have = applied_version(c, m->version, err, errlen);
        if (have < 0)
            goto fail;
        if (have)
            continue;
        if (apply_one(c, m, err, errlen) < 0) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", err);
            snprintf(err, errlen, "migration %s failed: %s", m->name, msg);
            goto fail;
        }
        log_info("applied migration %s", m->name);
        applied++;
    }
    PQfinish(c); /* closing the session releases the advisory lock */
    return applied;
fail:
    for (size_t n = strlen(err); n > 0 && (err[n - 1] == '\n' || err[n - 1] == ' '); n--)
        err[n - 1] = '\0';
    PQfinish(c);
    return -1;
}

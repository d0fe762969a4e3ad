/* devsys-manager: the HTTP API, and `devsys-manager migrate`. One libevent loop
 * carries the HTTP server, the Redis client and the PostgreSQL client. */
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "artifact_store.h"
#include "checker.h"
#include "backup.h"
#include "config.h"
#include "http_api.h"
#include "http_route.h"
#include "log.h"
#include "metrics.h"
#include "migrate.h"
#include "notify.h"
#include "pgc.h"
#include "queue_metrics.h"
#include "rc.h"
#include "reconcile.h"
#include "retention.h"
#include "scheduler.h"
#include "secretdb.h"
#include "version.h"

static const char usage[] =
    "usage: devsys-manager [flags] [serve]    serve the HTTP API\n"
    "       devsys-manager [flags] migrate    apply database migrations and exit\n"
    "       devsys-manager [flags] backup FILE [db] [artifacts] [deploy]\n"
    "                                         write a backup archive (default: db, the artifact store if it\n"
    "                                         exists, DEVSYS_DEPLOY_ROOT if set; docs/runbook.md)\n"
    "       devsys-manager [flags] restore FILE [db] [artifacts] [deploy]\n"
    "                                         restore into an empty database (and directories), then exit\n"
    "       devsys-manager routes             print the HTTP route table (method, path, least role)\n"
    "environment: DEVSYS_LISTEN (127.0.0.1:8080; port 0: a free one, logged), DEVSYS_REDIS_URL, DEVSYS_DATABASE_URL,\n"
    "  DEVSYS_ADMIN_TOKEN, DEVSYS_PREFIX (devsys), DEVSYS_MAX_BODY (bytes, 16 MiB),\n"
    "  DEVSYS_SHUTDOWN_GRACE_S (10), DEVSYS_RECONCILE_S (5; 0 = no reconciler),\n"
    "  DEVSYS_REPUBLISH_AFTER_S (30), DEVSYS_DB_TIMEOUT_MS (3000; 0 = wait for PostgreSQL),\n"
    "  DEVSYS_HTTP_MAX_CONNS (512), DEVSYS_HTTP_MAX_HEADER_BYTES (16384),\n"
    "  DEVSYS_HTTP_HEADER_TIMEOUT_S (10), DEVSYS_HTTP_REQUEST_TIMEOUT_S (60), DEVSYS_HTTP_IDLE_TIMEOUT_S (60),\n"
    "  DEVSYS_AUTH_CACHE_MS (900), DEVSYS_AUTH_LOOKUPS_PER_S (20), DEVSYS_RATE_MUTATING_PER_S (10; 0 = off),\n"
    "  DEVSYS_RATE_MUTATING_BURST (50), DEVSYS_SECRET_KEY (64 hex digits), DEVSYS_SECRET_KEYS_OLD, DEVSYS_SEARCH_TIMEOUT_MS (5000),\n"
    "  DEVSYS_NOTIFY_TICK_S (1; 0 = off), DEVSYS_NOTIFY_BATCH (10000), DEVSYS_NOTIFY_KEEP_S (604800),\n"
    "  DEVSYS_ARTIFACT_DIR, DEVSYS_DEPLOY_ROOT, DEVSYS_PG_BINDIR (pg_dump/pg_restore; default: PATH) for backup|restore,\n"
    "  DEVSYS_NOTIFY_DESTINATIONS_FILE (JSON array of destinations, created or replaced at start),\n"
    "  DEVSYS_MONITOR_CHECKS (YAML file of checks), DEVSYS_CHECK_TICK_S (1; 0 = off), DEVSYS_CHECK_BATCH (1000); each credential (REDIS_URL,\n"
    "  DATABASE_URL, ADMIN_TOKEN, SECRET_KEY) may instead come from a file named by the same variable with _FILE appended";

static const struct cfg_flag flags[] = {
    {"listen", "DEVSYS_LISTEN", "address to serve HTTP on (host:port)"},
    {"redis", "DEVSYS_REDIS_URL", "redis://host:port/db"},
    {"database", "DEVSYS_DATABASE_URL", "libpq connection string or URI"},
    {"prefix", "DEVSYS_PREFIX", "Redis key prefix"},
    {NULL, NULL, NULL},
};

struct manager {
    struct event_base *base;
    api_t *api;
    reconcile_t *reconcile;
    retention_t *retention;
    scheduler_t *scheduler;
    notifier_t *notify;
    checker_t *checker;
    rc_t *rc;
    pgc_t *pg;
    struct event *sigterm, *sigint, *drain;
    double grace_s;
    int stopping;
};

static void drain_check(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct manager *m = arg;
    static int ticks;
    if (api_inflight(m->api) == 0 || ++ticks > (int)(m->grace_s * 10)) {
        log_info("manager stopping (%d requests still in flight)", api_inflight(m->api));
        event_base_loopexit(m->base, NULL);
    }
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    struct manager *m = arg;
    if (m->stopping++) {
        event_base_loopexit(m->base, NULL);
        return;
    }
    log_info("signal %d: no longer accepting connections, finishing requests in flight", (int)sig);
    api_stop_accepting(m->api);
    reconcile_free(m->reconcile); /* no new passes while draining */
    m->reconcile = NULL;
    scheduler_free(m->scheduler); /* no new ticks either: another manager fires them */
    m->scheduler = NULL;
    struct timeval tv = {0, 100000};
    m->drain = event_new(m->base, -1, EV_PERSIST, drain_check, m);
    event_add(m->drain, &tv);
}

static int serve(void)
{
    struct manager m = {0};
    const char *redis_url = cfg_secret("DEVSYS_REDIS_URL", "redis://127.0.0.1:6379/0");
    const char *db_url = cfg_secret("DEVSYS_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/devsys");
    struct api_config ac = {
        .listen = cfg_str("DEVSYS_LISTEN", "127.0.0.1:8080"),
        .prefix = cfg_str("DEVSYS_PREFIX", "devsys"),
        .admin_token = cfg_secret("DEVSYS_ADMIN_TOKEN", NULL),
        .max_body = (size_t)cfg_long("DEVSYS_MAX_BODY", 16L << 20, 1024, 1L << 30),
        .edge = {
            .max_conns = (int)cfg_long("DEVSYS_HTTP_MAX_CONNS", 512, 1, 1000000),
            .max_header = (size_t)cfg_long("DEVSYS_HTTP_MAX_HEADER_BYTES", 16384, 1024, 1L << 20),
            .header_timeout_s = cfg_double("DEVSYS_HTTP_HEADER_TIMEOUT_S", 10, 0.1, 3600),
            .request_timeout_s = cfg_double("DEVSYS_HTTP_REQUEST_TIMEOUT_S", 60, 0.1, 86400),
            .idle_timeout_s = cfg_double("DEVSYS_HTTP_IDLE_TIMEOUT_S", 60, 0.1, 86400),
        },
        .auth_cache_ms = cfg_long("DEVSYS_AUTH_CACHE_MS", 900, 0, 60000),
        .auth_lookups_per_s = cfg_double("DEVSYS_AUTH_LOOKUPS_PER_S", 20, 0.1, 1e6),
        .artifact_dir = astore_dir_from_env(),
        .artifact_max = (size_t)cfg_long("DEVSYS_ARTIFACT_MAX_BYTES", ASTORE_MAX_DEFAULT, 1, 1L << 40),
        .search_db_url = db_url,
        .search_timeout_ms = cfg_long("DEVSYS_SEARCH_TIMEOUT_MS", 5000, 100, 600000),
    };
    m.grace_s = cfg_double("DEVSYS_SHUTDOWN_GRACE_S", 10, 0, 3600);
    char kerr[256];
    secretbox_t *box = NULL;
    if (secretbox_from_env(&box, kerr, sizeof kerr) != 0) {
        fprintf(stderr, "devsys-manager: %s\n", kerr);
        return 2;
    }
    ac.secrets = box;
    if (!box)
        log_warn("DEVSYS_SECRET_KEY is not set: secrets cannot be set (POST /v1/secrets answers 503)");
    if (!ac.admin_token)
        log_warn("DEVSYS_ADMIN_TOKEN is not set: only tokens in api_tokens can call the API");
    signal(SIGPIPE, SIG_IGN);
    version_metric_register();
    m.base = event_base_new();
    m.rc = rc_new(m.base, redis_url, "redis");
    m.pg = pgc_new(m.base, db_url, "devsys-manager");
    if (!m.rc || !m.pg) {
        fprintf(stderr, "devsys-manager: bad DEVSYS_REDIS_URL or DEVSYS_DATABASE_URL\n");
        return 2;
    }
    /* Requests answer 503 within this bound while PostgreSQL is away, and a
     * query that never got out is dropped, not run when the server is back. */
    pgc_set_timeout(m.pg, (int)cfg_long("DEVSYS_DB_TIMEOUT_MS", 3000, 0, 600000));
    char err[256];
    qmetrics_t *qmetrics = qmetrics_new(m.base, m.rc, m.pg, ac.prefix);
    ac.qmetrics = qmetrics;
    m.api = api_new(m.base, m.rc, m.pg, &ac, err, sizeof err);
    if (!m.api) {
        log_error("%s", err);
        rc_free(m.rc);
        pgc_free(m.pg);
        qmetrics_free(qmetrics);
        event_base_free(m.base);
        secretbox_free(box);
        return 1;
    }
    m.sigterm = evsignal_new(m.base, SIGTERM, on_signal, &m);
    m.sigint = evsignal_new(m.base, SIGINT, on_signal, &m);
    event_add(m.sigterm, NULL);
    event_add(m.sigint, NULL);
    m.reconcile = reconcile_new(m.base, m.rc, m.pg, ac.prefix);
    m.retention = retention_new(m.base, db_url);
    m.scheduler = scheduler_new(m.base, m.rc, m.pg, ac.prefix);
    m.notify = notify_new(m.base, m.rc, db_url, ac.prefix);
    m.checker = checker_new(m.base, m.rc, db_url, ac.prefix);
    event_base_dispatch(m.base);

    checker_free(m.checker);
    notify_free(m.notify);
    scheduler_free(m.scheduler);
    retention_free(m.retention);
    reconcile_free(m.reconcile);
    api_free(m.api);
    pgc_free(m.pg);
    rc_free(m.rc);
    qmetrics_free(qmetrics); /* after the clients: their last callbacks reach it */
    event_free(m.sigterm);
    event_free(m.sigint);
    if (m.drain)
        event_free(m.drain);
    /* let deferred frees of the clients run */
    event_base_loop(m.base, EVLOOP_NONBLOCK);
    event_base_free(m.base);
    metrics_free();
    secretbox_free(box);
    log_info("manager stopped");
    return 0;
}

int main(int argc, char **argv)
{
    log_init("manager", NULL);
    int i = cfg_flags(argc, argv, flags, usage);
    const char *cmd = i < argc ? argv[i] : "serve";
    if (strcmp(cmd, "migrate") == 0) {
        char err[512];
        int n = migrate_run(cfg_secret("DEVSYS_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/devsys"), err,
                            sizeof err);
        if (n < 0) {
            fprintf(stderr, "devsys-manager migrate: %s\n", err);
            return 1;
        }
        printf("migrations: %d applied, schema up to date (%d known)\n", n, migrations_count);
        return 0;
    }
    if (strcmp(cmd, "backup") == 0 || strcmp(cmd, "restore") == 0) {
        char err[1024] = "";
        int backup = cmd[0] == 'b';
        if (i + 1 >= argc) {
            fprintf(stderr, "devsys-manager %s: FILE is missing\n%s\n", cmd, usage);
            return 2;
        }
        if ((backup ? backup_run : restore_run)(argv[i + 1], argv + i + 2, argc - i - 2, err, sizeof err) < 0) {
            fprintf(stderr, "devsys-manager %s: %s\n", cmd, err);
            return 1;
        }
        return 0;
    }
    if (strcmp(cmd, "routes") == 0) {
        route_print(stdout);
        return 0;
    }
    if (strcmp(cmd, "serve") == 0)
        return serve();
    fprintf(stderr, "devsys-manager: unknown command \"%s\"\n%s\n", cmd, usage);
    return 2;
}

/* devsysctl: the command-line client of the manager's HTTP API (/v1).
 * One blocking request per call on a libevent HTTP connection; human output by
 * default, the manager's raw JSON with --json. Exit codes are part of the contract. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "devsysctl.h"
#include "version.h"
#include "xalloc.h"

static const char usage_text[] =
    "usage: devsysctl [--json] [--url URL] COMMAND [ARGS]\n"
    "\n"
    "Client of the devsys manager's HTTP API.\n"
    "\n"
    "commands:\n"
    "  submit FILE|-                 submit a task spec or a JSON array of specs (all or\n"
    "                                nothing); prints one task id per spec, in order\n"
    "  get ID                        show a task: state, attempts, lease, times, last error,\n"
    "                                result, output tail and checkpoints\n"
    "  list [--state S] [--queue Q] [--limit N] [--after CURSOR]\n"
    "       [--name NAME|PREFIX*] [--tag T] [--since TIME] [--until TIME]\n"
    "                                list or search tasks (also in history), newest first;\n"
    "                                TIME: RFC 3339, a date, epoch seconds or an age (90s,\n"
    "                                30m, 2h, 7d ago); prints \"next: CURSOR\" when there\n"
    "                                are more\n"
    "  cancel ID                     cancel a task that has not finished\n"
    "  retry ID                      queue a dead or cancelled task again (same id, attempts kept)\n"
    "  dlq ls [QUEUE]                dead-letter queues and their lengths, or the entries\n"
    "                                of one queue\n"
    "  dlq show QUEUE ID             one dead letter (ID: DLQ entry id or task id)\n"
    "  dlq groups QUEUE [--error TEXT] [--kind KIND] [--since TIME]\n"
    "                                dead letters counted by error and kind, largest first\n"
    "  dlq replay QUEUE ID|--all     put dead letters back on their queue\n"
    "  dlq purge QUEUE ID|--all      delete dead letters for good\n"
    "       --all [--error TEXT] [--kind KIND] [--since TIME] [--limit N]\n"
    "                                only the letters of that error (exactly), kind, died\n"
    "                                since TIME; at most N per call (1000; \"more\" says so)\n"
    "  queues                        queues: settings, depth, in flight, delayed, DLQ\n"
    "  queue show|pause|resume Q     one queue; stop or restart agents taking its work\n"
    "  queue set Q [--concurrency N|none] [--rate N/PERIOD|none] [--per-key]\n"
    "                                cap running tasks across agents; limit starts per\n"
    "                                period (10/1s, 600/1m, 5/500ms), per spec rate_key\n"
    "  health                        the manager's view of Redis and PostgreSQL\n"
    "  report ID [--xml]             a testing task's report: counts, failed tests with\n"
    "                                their message; --xml prints the JUnit XML as stored\n"
    "  tests [--flaky] [--by-name] PIPELINE [CLASS::NAME]  test history: last outcomes, failure\n"
    "                                rate, flaky (--by-name: of a task name); one test's runs\n"
    "  deploy APP ENV SOURCE [--check-url URL]   deploy a directory or tarball (a task)\n"
    "  rollback APP ENV [REV]        switch back to REV (default: the previous revision)\n";
/* (two strings: C11 compilers need only take 4095 bytes in one) */
static const char usage_text2[] =
    "  revisions APP [ENV]           an app's deployments, the current revision marked\n"
    "  pipeline submit FILE|-        submit a pipeline (README \"Pipelines\"); prints its id\n"
    "  pipeline ID [--watch]         its steps and nodes; --watch follows it until it ends\n"
    "                                (exit 0 when it succeeded, 1 otherwise)\n"
    "  pipeline rerun|cancel ID      re-run its failed steps and what follows, or cancel it\n"
    "  schedule add NAME CRON SPEC_FILE [--tz ZONE] [--catch-up once|all|skip]\n"
    "                                submit SPEC_FILE at each tick of CRON (\"*/5 * * * *\",\n"
    "                                6 fields with seconds, @daily, \"@every 30s\")\n"
    "  schedule list|show NAME|pause NAME|resume NAME|rm NAME\n"
    "                                schedules: next due, last tick; recent ticks' tasks\n"
    "  notify add NAME URL EVENTS [KEY=VALUE...]\n"
    "                                create or replace a webhook destination; EVENTS and\n"
    "                                group_by comma-separated; keys as in the API: format,\n"
    "                                secret_ref, group_by, group_wait_s, group_interval_s,\n"
    "                                rate.per_s, rate.burst, max_attempts, retry.initial_s\n"
    "  notify list | notify rm NAME  destinations; delete one\n"
    "  notify events [destination=D] [state=pending|queued|sent|dead] [limit=N] [after=C]\n"
    "                                events as each destination sees them, and counts\n"
    "  monitors [limit=N] [after=NAME]  checks: state, uptime 24h/7d, latency p50/p95, last probe\n"
    "  monitor NAME [limit=N] [after=ID]  a check, its probes (newest first) and incidents\n"
    "  monitor add FILE|-            create or replace a check (JSON, the API's fields)\n"
    "  monitor rm NAME | monitor unsilence NAME\n"
    "  monitor silence NAME for=30m|until=2025-06-01T12:00:00Z [reason=TEXT]\n"
    "                                mute a check: probes recorded, no incident, no event\n"
    "  incidents [state=open|resolved] [check=NAME] [limit=N] [after=ID]\n"
    ACCESS_USAGE
    APPROVAL_USAGE
    "\n"
    "options:\n"
    "  --json        print the manager's JSON answer as is (any command)\n"
    "  --url URL     manager base URL (overrides DEVSYS_URL)\n"
    "  -h, --help    print this help\n"
    "  --version     print the release devsysctl was built from\n"
    "\n"
    "environment:\n"
    "  DEVSYS_URL      manager base URL (default http://127.0.0.1:8080)\n"
    "  DEVSYS_TOKEN    bearer token sent on every call\n"
    "  DEVSYS_TIMEOUT  seconds to wait for an answer (default 10)\n"
    "\n"
    "exit status: 0 done, 1 other error, 2 usage error, 3 manager unreachable,\n"
    "4 the manager refused the request (its status and error are printed)\n";


_Noreturn void die_usage(const char *fmt, const char *arg)
{
    fputs("devsysctl: ", stderr);
    fprintf(stderr, fmt, arg);
    fputs(" (see devsysctl --help)\n", stderr);
    exit(EXIT_USAGE);
}

/* ---- printing ----------------------------------------------------------- */

/* A scalar as text for tables and listings: strings bare, null as "-",
 * objects and arrays as compact JSON. Caller frees. */
char *show(const json_t *v)
{
    if (!v || json_is_null(v))
        return xstrdup("-");
    if (json_is_string(v))
        return xstrdup(json_string_value(v));
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    char *copy = xstrdup(s ? s : "?");
    free(s);
    return copy;
}

static void print_field(const char *key, const json_t *v)
{
    char *s = show(v);
    int pad = 17 - (int)strlen(key);
    printf("%s:%*s %s\n", key, pad > 0 ? pad : 0, "", s);
    free(s);
}

/* Multi-line text under a heading, indented, so output tails stay readable. */
static void print_block(const char *key, const json_t *v)
{
    const char *s = json_string_value(v);
    if (!s || !*s) {
        print_field(key, v && json_is_string(v) ? json_null() : v);
        return;
    }
    printf("%s:\n", key);
    for (const char *line = s; *line;) {
        const char *nl = strchr(line, '\n');
        size_t n = nl ? (size_t)(nl - line) : strlen(line);
        printf("  | %.*s\n", (int)n, line);
        line += n + (nl ? 1 : 0);
    }
}

/* key: value for every member of obj, the known keys in a useful order first. */
void print_object(const json_t *obj, const char *const *order, const char *const *blocks)
{
    for (size_t i = 0; order && order[i]; i++) {
        json_t *v = json_object_get(obj, order[i]);
        if (v)
            print_field(order[i], v);
    }
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v) {
        int seen = 0;
        for (size_t i = 0; order && order[i] && !seen; i++)
            seen = strcmp(order[i], key) == 0;
        for (size_t i = 0; blocks && blocks[i] && !seen; i++)
            seen = strcmp(blocks[i], key) == 0;
        if (!seen)
            print_field(key, v);
    }
    for (size_t i = 0; blocks && blocks[i]; i++)
        if (json_object_get(obj, blocks[i]))
            print_block(blocks[i], json_object_get(obj, blocks[i]));
}

/* Prints rows (array of objects) as a table of the given columns; a column
 * header "ATTEMPT" shows attempt/max_attempts. */
void print_table(const json_t *rows, const char *const *heads, const char *const *keys, size_t ncol)
{
    size_t nrow = json_array_size(rows);
    char **cell = xcalloc((nrow + 1) * ncol, sizeof(*cell));
    size_t width[16] = { 0 };
    for (size_t c = 0; c < ncol; c++) {
        cell[c] = xstrdup(heads[c]);
        width[c] = strlen(heads[c]);
    }
    for (size_t r = 0; r < nrow; r++) {
        json_t *row = json_array_get(rows, r);
        for (size_t c = 0; c < ncol; c++) {
            char *s;
            if (strcmp(keys[c], "attempt") == 0 && json_is_integer(json_object_get(row, "max_attempts")))
                s = xasprintf("%lld/%lld", (long long)json_integer_value(json_object_get(row, "attempt")),
                              (long long)json_integer_value(json_object_get(row, "max_attempts")));
            else
                s = show(json_object_get(row, keys[c]));
            /* One row, one line: a multi-line error would break the table. */
            for (char *p = s; *p; p++)
                if (*p == '\n' || *p == '\r' || *p == '\t')
                    *p = ' ';
            cell[(r + 1) * ncol + c] = s;
            if (strlen(s) > width[c])
                width[c] = strlen(s);
        }
    }
    for (size_t r = 0; r <= nrow; r++) {
        for (size_t c = 0; c < ncol; c++) {
            if (c + 1 < ncol)
                printf("%-*s  ", (int)width[c], cell[r * ncol + c]);
            else
                printf("%s\n", cell[r * ncol + c]);
        }
    }
    for (size_t i = 0; i < (nrow + 1) * ncol; i++)
        free(cell[i]);
    free(cell);
}

/* ---- commands ----------------------------------------------------------- */

char *ctl_read_all(const char *path, size_t *len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "devsysctl: cannot open %s: %s\n", path, strerror(errno));
        return NULL;
    }
    size_t cap = 8192, n = 0;
    char *buf = xmalloc(cap);
    size_t got;
    while ((got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap)
            buf = xrealloc(buf, cap *= 2);
    }
    int failed = ferror(f);
    if (f != stdin)
        fclose(f);
    if (failed) {
        fprintf(stderr, "devsysctl: cannot read %s\n", path);
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

static int cmd_submit(const struct ctl *ctl, const char *path)
{
    size_t len;
    char *body = ctl_read_all(path, &len);
    if (!body)
        return EXIT_OTHER;
    /* Catch a broken file here with a line number; the manager judges the rest. */
    json_error_t jerr;
    json_t *spec = json_loadb(body, len, 0, &jerr);
    if (!spec || !(json_is_object(spec) || json_is_array(spec))) {
        fprintf(stderr, "devsysctl: %s: %s%s (line %d)\n", strcmp(path, "-") == 0 ? "stdin" : path,
                spec ? "expected a spec object or an array of specs" : "invalid JSON: ",
                spec ? "" : jerr.text, spec ? 1 : jerr.line);
        json_decref(spec);
        free(body);
        return EXIT_OTHER;
    }
    json_decref(spec);
    int code;
    json_t *doc = ctl_call(ctl, "POST", "/v1/tasks", body, len, &code);
    free(body);
    if (!doc || ctl->json) {
        json_decref(doc);
        return code;
    }
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(doc, "tasks"), i, t) {
        const char *id = json_string_value(json_object_get(t, "id"));
        printf("%s\n", id ? id : "?");
        if (json_is_false(json_object_get(t, "created")))
            fprintf(stderr, "devsysctl: spec %zu: task %s already exists (same idempotency_key)\n", i, id ? id : "?");
    }
    json_decref(doc);
    return 0;
}

static int cmd_get(const struct ctl *ctl, const char *id)
{
    static const char *const order[] = { "id", "queue", "kind", "state", "attempt", "max_attempts",
                                         "priority", "idempotency_key", "lease_owner", "lease_expires_at",
                                         "created_at", "started_at", "finished_at", "last_error",
                                         "result", "spec", NULL };
    static const char *const blocks[] = { "output_tail", NULL };
    char *eid = enc(id);
    char *path = xasprintf("/v1/tasks/%s", eid);
    int code;
    json_t *task = ctl_get_doc(ctl, path, &code);
    if (!task) {
        free(eid);
        return code;
    }
    print_object(task, order, blocks);
    json_decref(task);

    /* Checkpoints are a separate, optional endpoint: a manager without it
     * (or an error there) must not spoil the task view, so ask quietly. */
    struct reply r;
    struct ctl quiet = *ctl;
    quiet.quiet = 1;
    path = xasprintf("/v1/tasks/%s/checkpoints", eid);
    free(eid);
    int ok = ctl_request(&quiet, "GET", path, NULL, 0, &r) == 0;
    free(path);
    if (!ok)
        return 0;
    json_t *doc = r.status == 200 ? json_loadb(r.body, r.len, 0, NULL) : NULL;
    json_t *cps = json_object_get(doc, "checkpoints");
    if (json_is_array(cps)) {
        printf("checkpoints:       %zu\n", json_array_size(cps));
        size_t i;
        json_t *cp;
        json_array_foreach(cps, i, cp) {
            char *at = show(json_object_get(cp, "created_at"));
            char *data = show(json_object_get(cp, "data"));
            printf("  attempt %lld at %s: %s\n", (long long)json_integer_value(json_object_get(cp, "attempt")),
                   at, data);
            free(at);
            free(data);
        }
    }
    json_decref(doc);
    free(r.body);
    return 0;
}

/* For actions whose answer shape is the manager's business (cancel, replay,
 * purge): the one-line verdict, then whatever scalar fields it sent back. */
int cmd_action(const struct ctl *ctl, const char *method, const char *path, const char *done)
{
    int code;
    json_t *doc = ctl_call(ctl, method, path, NULL, 0, &code);
    if (!doc || ctl->json) {
        json_decref(doc);
        return code;
    }
    printf("%s\n", done);
    if (json_is_object(doc))
        print_object(doc, NULL, NULL);
    json_decref(doc);
    return 0;
}

static int cmd_health(const struct ctl *ctl)
{
    struct reply r;
    if (ctl_request(ctl, "GET", "/healthz", NULL, 0, &r) != 0)
        return EXIT_UNREACHABLE;
    if (ctl->json && r.len)
        printf("%s%s", r.body, r.body[r.len - 1] == '\n' ? "" : "\n");
    json_t *doc = json_loadb(r.body, r.len, 0, NULL);
    if (!ctl->json && json_is_object(doc))
        print_object(doc, NULL, NULL);
    int code = 0;
    if (r.status != 200) {
        fprintf(stderr, "devsysctl: the manager is not healthy: %d\n", r.status);
        code = EXIT_REFUSED;
    } else if (!json_is_object(doc) && !ctl->json) {
        fputs("devsysctl: the manager's /healthz answer is not a JSON object\n", stderr);
        code = EXIT_OTHER;
    }
    json_decref(doc);
    free(r.body);
    return code;
}

/* ---- main --------------------------------------------------------------- */

int main(int argc, char **argv)
{
    enum { OPT_JSON = 256, OPT_URL, OPT_STATE, OPT_QUEUE, OPT_LIMIT, OPT_AFTER, OPT_ALL, OPT_XML, OPT_CONC, OPT_RATE,
           OPT_PER_KEY, OPT_FLAKY, OPT_BY_NAME, OPT_CHECK_URL, OPT_WATCH, OPT_TZ, OPT_CATCH_UP, OPT_NAME, OPT_TAG,
           OPT_SINCE, OPT_UNTIL };
    static const struct option opts[] = {
        { "json", no_argument, NULL, OPT_JSON },   { "url", required_argument, NULL, OPT_URL },
        { "help", no_argument, NULL, 'h' },        { "version", no_argument, NULL, 'V' },        { "state", required_argument, NULL, OPT_STATE },
        { "queue", required_argument, NULL, OPT_QUEUE }, { "limit", required_argument, NULL, OPT_LIMIT },
        { "after", required_argument, NULL, OPT_AFTER }, { "all", no_argument, NULL, OPT_ALL },
        { "xml", no_argument, NULL, OPT_XML },
        { "concurrency", required_argument, NULL, OPT_CONC }, { "rate", required_argument, NULL, OPT_RATE },
        { "per-key", no_argument, NULL, OPT_PER_KEY }, { "flaky", no_argument, NULL, OPT_FLAKY },
        { "by-name", no_argument, NULL, OPT_BY_NAME }, { "check-url", required_argument, NULL, OPT_CHECK_URL },
        { "watch", no_argument, NULL, OPT_WATCH },
        { "tz", required_argument, NULL, OPT_TZ }, { "catch-up", required_argument, NULL, OPT_CATCH_UP },
        { "name", required_argument, NULL, OPT_NAME }, { "tag", required_argument, NULL, OPT_TAG },
        { "since", required_argument, NULL, OPT_SINCE }, { "until", required_argument, NULL, OPT_UNTIL },
        { NULL, 0, NULL, 0 },
    };
    int access = access_main(argc, argv); /* token, secret, audit: their own options */
    if (access >= 0 || (access = approval_main(argc, argv)) >= 0 || (access = dlq_main(argc, argv)) >= 0)
        return access;
    struct ctl ctl = { .url = getenv("DEVSYS_URL"), .token = getenv("DEVSYS_TOKEN"), .timeout_s = 10 };
    const char *list_q[LIST_NQ] = { NULL };
    struct queue_set_opts qs = { NULL, NULL, 0 };
    struct schedule_opts so = { NULL, NULL };
    int all = 0, any_list_opt = 0, xml = 0, tests_opts = 0, watch = 0, o;
    const char *check_url = NULL;
    opterr = 0;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (o) {
        case 'h': fputs(usage_text, stdout); fputs(usage_text2, stdout); return 0;
        case 'V': printf("devsysctl %s\n", devsys_version()); return 0;
        case OPT_JSON: ctl.json = 1; break;
        case OPT_URL: ctl.url = optarg; break;
        case OPT_ALL: all = 1; break;
        case OPT_XML: xml = 1; break;
        case OPT_WATCH: watch = 1; break;
        case OPT_CONC: qs.concurrency = optarg; break;
        case OPT_RATE: qs.rate = optarg; break;
        case OPT_PER_KEY: qs.per_key = 1; break;
        case OPT_FLAKY: case OPT_BY_NAME: tests_opts |= o == OPT_FLAKY ? TESTS_FLAKY : TESTS_BY_NAME; break;
        case OPT_CHECK_URL: check_url = optarg; break;
        case OPT_TZ: so.tz = optarg; break;
        case OPT_CATCH_UP: so.catch_up = optarg; break;
        case OPT_STATE: case OPT_QUEUE: case OPT_LIMIT: case OPT_AFTER:
            list_q[o - OPT_STATE] = optarg;
            any_list_opt = 1;
            break;
        case OPT_NAME: case OPT_TAG: case OPT_SINCE: case OPT_UNTIL:
            list_q[4 + o - OPT_NAME] = optarg;
            any_list_opt = 1;
            break;
        default:
            die_usage("unknown option or missing value: %s", argv[optind - 1]);
        }
    }
    ctl_finish_opts(&ctl);
    if (list_q[2]) {
        char *end;
        long v = strtol(list_q[2], &end, 10);
        if (*end || v < 1)
            die_usage("--limit must be a positive integer, not '%s'", list_q[2]);
    }
    int nargs = argc - optind;
    char **args = argv + optind;
    if (nargs < 1)
        die_usage("missing command%s", "");
    const char *cmd = args[0];
    /* Argument counts including the command (dlq: dlq_main). */
    static const struct { const char *name; int nargs; } cmds[] = {
        { "submit", 2 }, { "get", 2 }, { "list", 1 }, { "cancel", 2 }, { "health", 1 },
        { "report", 2 }, { "queues", 1 }, { "queue", 3 }, { "tests", -1 }, { "pipeline", -1 },
        { "deploy", -1 }, { "rollback", -1 }, { "revisions", -1 },
        { "schedule", -1 },
        { "notify", -1 },
        { "monitors", -1 }, { "monitor", -1 }, { "incidents", -1 },
        { "retry", 2 },
    };
    size_t c = 0;
    while (c < sizeof(cmds) / sizeof(cmds[0]) && strcmp(cmds[c].name, cmd) != 0)
        c++;
    if (strcmp(cmd, "backup") == 0 || strcmp(cmd, "restore") == 0)
        die_usage("%s needs the database and the artifact store, not the API: run devsys-manager backup|restore"
                  " FILE on the manager's host (docs/runbook.md)", cmd);
    if (c == sizeof(cmds) / sizeof(cmds[0]))
        die_usage("unknown command '%s'", cmd);
    if (cmds[c].nargs >= 0 && nargs != cmds[c].nargs)
        die_usage("wrong number of arguments for %s", cmd);
    if (any_list_opt && strcmp(cmd, "list") != 0)
        die_usage("--state, --queue, --limit, --after, --name, --tag, --since and --until go with list, not %s",
                  cmd);
    if (all)
        die_usage("--all goes with dlq replay and dlq purge, not %s", cmd);
    if (strcmp(cmd, "tests") == 0 ? nargs < 2 || nargs > 3 : tests_opts != 0)
        die_usage("%s", tests_opts ? "--flaky and --by-name go with tests" : "tests takes PIPELINE [CLASS::NAME]");
    if (xml && strcmp(cmd, "report") != 0)
        die_usage("--xml goes with report, not %s", cmd);
    if (watch && strcmp(cmd, "pipeline") != 0)
        die_usage("--watch goes with pipeline ID, not %s", cmd);
    if ((qs.concurrency || qs.rate || qs.per_key) && !(strcmp(cmd, "queue") == 0 && strcmp(args[1], "set") == 0))
        die_usage("--concurrency, --rate and --per-key go with queue set, not %s", cmd);

    int code;
    if (strcmp(cmd, "submit") == 0) {
        code = cmd_submit(&ctl, args[1]);
    } else if (strcmp(cmd, "get") == 0) {
        code = cmd_get(&ctl, args[1]);
    } else if (strcmp(cmd, "list") == 0) {
        code = cmd_list(&ctl, list_q);
    } else if (strcmp(cmd, "cancel") == 0) {
        char *id = enc(args[1]);
        char *path = xasprintf("/v1/tasks/%s/cancel", id);
        char *done = xasprintf("cancelled %s", args[1]);
        code = cmd_action(&ctl, "POST", path, done);
        free(done);
        free(path);
        free(id);
    } else if (strcmp(cmd, "retry") == 0) {
        code = cmd_retry(&ctl, args[1]);
    } else if (strcmp(cmd, "report") == 0) {
        code = cmd_report(&ctl, args[1], xml);
    } else if (strcmp(cmd, "tests") == 0) {
        code = cmd_tests(&ctl, args[1], nargs > 2 ? args[2] : NULL, tests_opts);
    } else if (strcmp(cmd, "queues") == 0) {
        code = cmd_queues(&ctl);
    } else if (strcmp(cmd, "pipeline") == 0) {
        code = cmd_pipeline(&ctl, nargs - 1, args + 1, watch);
    } else if (strcmp(cmd, "queue") == 0) {
        code = cmd_queue(&ctl, args[1], args[2], &qs);
    } else if (check_url || strcmp(cmd, "deploy") == 0 || strcmp(cmd, "rollback") == 0 || strcmp(cmd, "revisions") == 0) {
        code = cmd_deploy_family(&ctl, nargs, args, check_url);
    } else if (strcmp(cmd, "schedule") == 0) {
        code = cmd_schedule(&ctl, nargs - 1, args + 1, &so);
    } else if (strcmp(cmd, "notify") == 0) {
        code = cmd_notify(&ctl, nargs - 1, args + 1);
    } else if (strncmp(cmd, "monitor", 7) == 0 || strcmp(cmd, "incidents") == 0) {
        code = cmd_monitor(&ctl, nargs, args);
    } else {
        code = cmd_health(&ctl);
    }
    free(ctl.host);
    free(ctl.prefix);
    return code;
}

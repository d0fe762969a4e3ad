/* devsysctl_dlq: `devsysctl dlq ls|show|replay|purge|groups` over /v1/dlq.
 * replay and purge take ID or --all; with --all, --error TEXT, --kind KIND,
 * --since TIME and --limit N narrow the bulk action (the API's filter, see
 * http_dlq_bulk.c); groups counts the letters by error and kind (same filter
 * but --limit). Its options are its own, as access_main's are. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "devsysctl.h"
#include "xalloc.h"

enum { F_ERROR, F_KIND, F_SINCE, F_LIMIT, F_N };
static const char *const fnames[F_N] = { "error", "kind", "since", "limit" };

/* Exits 2 naming the flag when a value cannot be what the API takes; an age
 * (90s, 30m, 2h, 7d) for --since becomes epoch seconds in buf. */
static void check_filter(const char *f[F_N], char *since_buf, size_t cap)
{
    if (f[F_ERROR] && (!f[F_ERROR][0] || strlen(f[F_ERROR]) > 4096))
        die_usage("--error must be 1 to 4096 bytes (a group's error, matched exactly), not '%.64s'", f[F_ERROR]);
    if (f[F_KIND]) {
        size_t n = strlen(f[F_KIND]);
        if (n < 1 || n > 64 || strspn(f[F_KIND], "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") != n)
            die_usage("--kind must be 1 to 64 characters of [A-Za-z0-9_.-], not '%.80s'", f[F_KIND]);
    }
    if (f[F_LIMIT]) {
        char *end;
        long v = strtol(f[F_LIMIT], &end, 10);
        if (!f[F_LIMIT][0] || *end || v < 1 || v > 10000)
            die_usage("--limit must be an integer from 1 to 10000, not '%.80s'", f[F_LIMIT]);
    }
    const char *s = f[F_SINCE];
    if (s) {
        char *end;
        double n = strtod(s, &end);
        static const char units[] = "smhd";
        static const double secs[] = { 1, 60, 3600, 86400 };
        const char *u = end != s && n >= 0 && end[0] && !end[1] ? strchr(units, end[0]) : NULL;
        if (u) {
            snprintf(since_buf, cap, "%.0f", (double)time(NULL) - n * secs[u - units]);
            f[F_SINCE] = since_buf;
        } else if (!(end != s && !*end) && strspn(s, "0123456789") != 4) {
            /* neither epoch seconds nor a date / RFC 3339 time (YYYY-...) */
            die_usage("--since must be a time: RFC 3339, a date (2026-12-02), epoch seconds or an age (2h, 7d),"
                      " not '%.80s'", s);
        }
    }
}

/* "?k=v&..." of the filter given ("" when none); caller frees. */
static char *filter_query(const char *const f[F_N])
{
    char *q = xstrdup("");
    for (int i = 0; i < F_N; i++) {
        if (!f[i])
            continue;
        char *e = enc(f[i]);
        char *next = xasprintf("%s%c%s=%s", q, *q ? '&' : '?', fnames[i], e);
        free(e);
        free(q);
        q = next;
    }
    return q;
}

static int groups(const struct ctl *ctl, const char *q, const char *query)
{
    int code;
    json_t *doc = ctl_get_doc(ctl, xasprintf("/v1/dlq/%s/groups%s", q, query), &code);
    if (!doc)
        return code;
    static const char *const heads[] = { "COUNT", "KIND", "FIRST_FAILED", "LAST_FAILED", "ERROR" };
    static const char *const keys[] = { "count", "kind", "first_failed_at", "last_failed_at", "error" };
    print_table(json_object_get(doc, "groups"), heads, keys, 5);
    if (json_is_true(json_object_get(doc, "truncated")))
        puts("(the largest groups only: narrow with --error, --kind or --since)");
    json_decref(doc);
    return 0;
}

static int cmd_dlq(const struct ctl *ctl, int argc, char **argv, int all, const char *f[F_N])
{
    const char *sub = argc > 0 ? argv[0] : "";
    int ls = strcmp(sub, "ls") == 0, show_ = strcmp(sub, "show") == 0, grp = strcmp(sub, "groups") == 0;
    int replay = strcmp(sub, "replay") == 0, purge = strcmp(sub, "purge") == 0;
    int filtered = f[F_ERROR] || f[F_KIND] || f[F_SINCE] || f[F_LIMIT];
    if (!(ls || show_ || replay || purge || grp))
        die_usage("dlq needs ls, show, groups, replay or purge, not '%s'", sub);
    if (ls ? argc > 2 || all : show_ ? argc != 3 || all : grp ? argc != 2 || all : argc != (all ? 2 : 3))
        die_usage("wrong arguments for dlq %s", sub);
    if (filtered && !(grp || all))
        die_usage("--error, --kind, --since and --limit go with dlq groups and dlq replay|purge QUEUE --all, not dlq %s",
                  sub);
    if (grp && f[F_LIMIT])
        die_usage("--limit goes with dlq replay|purge --all, not dlq %s (groups: the largest 100)", sub);
    char since_buf[32];
    check_filter(f, since_buf, sizeof since_buf);

    int code = 0;
    char *q = argc > 1 ? enc(argv[1]) : NULL;
    char *id = argc > 2 ? enc(argv[2]) : NULL;
    char *path = NULL, *done = NULL, *query = filter_query(f);
    json_t *doc = NULL;
    if (grp) {
        code = groups(ctl, q, query);
    } else if (ls) {
        path = q ? xasprintf("/v1/dlq/%s", q) : xstrdup("/v1/dlq");
        if (!(doc = ctl_call(ctl, "GET", path, NULL, 0, &code)) || ctl->json)
            goto out;
        if (!q) {
            static const char *const heads[] = { "QUEUE", "LENGTH" };
            static const char *const keys[] = { "queue", "length" };
            print_table(json_object_get(doc, "queues"), heads, keys, 2);
        } else {
            static const char *const heads[] = { "ENTRY", "TASK", "KIND", "ATTEMPTS", "FAILED", "ERROR" };
            static const char *const keys[] = { "entry_id", "id", "kind", "attempts", "failed_at", "error" };
            print_table(json_object_get(doc, "entries"), heads, keys, 6);
        }
    } else if (show_) {
        static const char *const order[] = { "entry_id", "id", "queue", "kind", "attempts", "failed_at",
                                             "agent", "source", "error", "spec", NULL };
        path = xasprintf("/v1/dlq/%s/%s", q, id);
        if (!(doc = ctl_call(ctl, "GET", path, NULL, 0, &code)) || ctl->json)
            goto out;
        json_t *entry = json_object_get(doc, "entry");
        print_object(json_is_object(entry) ? entry : doc, order, NULL);
    } else {
        path = all ? xasprintf("/v1/dlq/%s%s%s", q, replay ? "/replay" : "", query)
                   : xasprintf("/v1/dlq/%s/%s%s", q, id, replay ? "/replay" : "");
        done = all ? xasprintf("%s %s dead letters of %s", replay ? "replayed" : "purged",
                               filtered ? "the matching" : "all", argv[1])
                   : xasprintf("%s %s from %s", replay ? "replayed" : "purged", argv[2], argv[1]);
        code = cmd_action(ctl, replay ? "POST" : "DELETE", path, done);
    }
out:
    json_decref(doc);
    free(path);
    free(done);
    free(query);
    free(q);
    free(id);
    return code;
}

int dlq_main(int argc, char **argv)
{
    const char *cmd = ctl_command(argc, argv);
    if (!cmd || strcmp(cmd, "dlq") != 0)
        return -1;
    static const struct option opts[] = {
        { "json", no_argument, NULL, 'j' },        { "url", required_argument, NULL, 'u' },
        { "all", no_argument, NULL, 'a' },         { "error", required_argument, NULL, 'e' },
        { "kind", required_argument, NULL, 'k' },  { "since", required_argument, NULL, 's' },
        { "limit", required_argument, NULL, 'l' }, { NULL, 0, NULL, 0 },
    };
    struct ctl ctl = { .url = getenv("DEVSYS_URL"), .token = getenv("DEVSYS_TOKEN"), .timeout_s = 10 };
    const char *f[F_N] = { NULL };
    int all = 0, c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'j': ctl.json = 1; break;
        case 'u': ctl.url = optarg; break;
        case 'a': all = 1; break;
        case 'e': f[F_ERROR] = optarg; break;
        case 'k': f[F_KIND] = optarg; break;
        case 's': f[F_SINCE] = optarg; break;
        case 'l': f[F_LIMIT] = optarg; break;
        default: die_usage("unknown option or missing value: %s", argv[optind - 1]);
        }
    }
    ctl_finish_opts(&ctl);
    int code = cmd_dlq(&ctl, argc - optind - 1, argv + optind + 1, all, f);
    free(ctl.host);
    free(ctl.prefix);
    return code;
}

/* devsysctl_access: the access commands of the CLI — token (create, list,
 * revoke, rotate), secret (set from stdin, list, rm) and audit — over
 * /v1/tokens, /v1/secrets and /v1/audit (see devsysctl.h). They parse their
 * own options: --name takes a value here, unlike tests --name. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devsysctl.h"
#include "xalloc.h"

struct access_opts {
    const char *name, *role, *expires, *queues, *apps, *grace;
    const char *actor, *action, *target, *since, *limit, *after;
};

/* "30d", "12h", "15m", "90s" or plain seconds -> seconds; exits 2 on anything else. */
static double duration_s(const char *opt, const char *s)
{
    char *end;
    double v = strtod(s, &end);
    double unit = strcmp(end, "d") == 0 ? 86400 : strcmp(end, "h") == 0 ? 3600 : strcmp(end, "m") == 0 ? 60
                : strcmp(end, "s") == 0 || !*end ? 1 : 0;
    if (end == s || unit == 0 || !(v > 0))
        die_usage(opt, s);
    return v * unit;
}

/* POST/DELETE with a JSON body; prints the answer's fields (the token once). */
static int send_json(const struct ctl *ctl, const char *method, const char *path, json_t *body, const char *done)
{
    char *b = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    int code;
    json_t *doc = ctl_call(ctl, method, path, b, b ? strlen(b) : 0, &code);
    free(b);
    if (!doc || ctl->json) {
        json_decref(doc);
        return code;
    }
    const char *token = json_string_value(json_object_get(doc, "token"));
    if (token)
        printf("token: %s\n(shown once: keep it now)\n", token);
    printf("%s\n", done);
    json_object_del(doc, "token");
    print_object(doc, NULL, NULL);
    json_decref(doc);
    return 0;
}

static int list_rows(const struct ctl *ctl, const char *path, const char *member, const char *const *heads,
                     const char *const *keys, size_t n)
{
    int code;
    json_t *doc = ctl_call(ctl, "GET", path, NULL, 0, &code);
    if (!doc || ctl->json) {
        json_decref(doc);
        return code;
    }
    print_table(json_object_get(doc, member), heads, keys, n);
    const char *next = json_string_value(json_object_get(doc, "next"));
    if (next)
        printf("next: %s\n", next);
    json_decref(doc);
    return 0;
}

static int cmd_token(const struct ctl *ctl, int nargs, char **args, const struct access_opts *o)
{
    const char *sub = nargs > 1 ? args[1] : "";
    if (strcmp(sub, "create") == 0 && nargs == 2) {
        if (!o->name || !o->role)
            die_usage("%s", "token create needs --name and --role");
        json_t *b = json_pack("{s:s,s:s}", "name", o->name, "role", o->role);
        if (o->expires)
            json_object_set_new(b, "expires_s", json_real(duration_s("--expires must be like 30d, 12h or 90m, not '%s'",
                                                                     o->expires)));
        if (o->queues)
            json_object_set_new(b, "queues", ctl_csv(o->queues));
        if (o->apps)
            json_object_set_new(b, "apps", ctl_csv(o->apps));
        return send_json(ctl, "POST", "/v1/tokens", b, "created");
    }
    if (strcmp(sub, "list") == 0 && nargs == 2) {
        static const char *const heads[] = {"NAME", "ROLE", "STATE", "QUEUES", "APPS", "EXPIRES", "CREATED"};
        static const char *const keys[] = {"name", "role", "state", "queues", "apps", "expires_at", "created_at"};
        return list_rows(ctl, "/v1/tokens", "tokens", heads, keys, 7);
    }
    if ((strcmp(sub, "revoke") == 0 || strcmp(sub, "rotate") == 0) && nargs == 3) {
        char *name = enc(args[2]);
        int rotate = sub[1] == 'o';
        char *path = xasprintf("/v1/tokens/%s%s", name, rotate ? "/rotate" : "");
        json_t *b = rotate && o->grace
                        ? json_pack("{s:f}", "grace_s", duration_s("--grace must be like 1h or 10m, not '%s'", o->grace))
                        : NULL;
        int code = send_json(ctl, rotate ? "POST" : "DELETE", path, b, rotate ? "rotated" : "revoked");
        free(path);
        free(name);
        return code;
    }
    die_usage("%s", "token create|list|revoke NAME|rotate NAME");
}

static int cmd_secret(const struct ctl *ctl, int nargs, char **args)
{
    const char *sub = nargs > 1 ? args[1] : "";
    if (strcmp(sub, "set") == 0 && nargs == 3) {
        /* the value: stdin up to EOF, one trailing newline dropped (echo ... |) */
        size_t cap = 4096, len = 0, n;
        char *v = xmalloc(cap);
        while ((n = fread(v + len, 1, cap - len, stdin)) > 0) {
            len += n;
            if (len == cap)
                v = xrealloc(v, cap *= 2);
            if (len > 65536 + 1)
                break;
        }
        if (len > 0 && v[len - 1] == '\n')
            len--;
        json_t *b = json_pack("{s:s,s:s%}", "name", args[2], "value", v, len);
        memset(v, 0, len);
        free(v);
        if (!b) {
            fputs("devsysctl: the secret's value must be UTF-8 text\n", stderr);
            return EXIT_OTHER;
        }
        return send_json(ctl, "POST", "/v1/secrets", b, "set");
    }
    if (strcmp(sub, "list") == 0 && nargs == 2) {
        static const char *const heads[] = {"NAME", "KEY", "UPDATED", "BY"};
        static const char *const keys[] = {"name", "key_id", "updated_at", "updated_by"};
        return list_rows(ctl, "/v1/secrets", "secrets", heads, keys, 4);
    }
    if (strcmp(sub, "rekey") == 0 && nargs == 2)
        return send_json(ctl, "POST", "/v1/secrets/rekey", NULL, "re-encrypted under the current key");
    if (strcmp(sub, "rm") == 0 && nargs == 3) {
        char *name = enc(args[2]);
        char *path = xasprintf("/v1/secrets/%s", name);
        int code = send_json(ctl, "DELETE", path, NULL, "removed");
        free(path);
        free(name);
        return code;
    }
    die_usage("%s", "secret set NAME|list|rm NAME|rekey");
}

static int cmd_audit(const struct ctl *ctl, const struct access_opts *o)
{
    const char *names[] = {"actor", "action", "target", "since", "limit", "after"};
    const char *vals[] = {o->actor, o->action, o->target, o->since, o->limit, o->after};
    char *path = xstrdup("/v1/audit");
    for (size_t i = 0; i < 6; i++) {
        if (!vals[i])
            continue;
        char *v = enc(vals[i]);
        char *p = xasprintf("%s%c%s=%s", path, strchr(path, '?') ? '&' : '?', names[i], v);
        free(v);
        free(path);
        path = p;
    }
    static const char *const heads[] = {"ID", "AT", "ACTOR", "ROLE", "ACTION", "TARGET", "OUTCOME", "REMOTE", "REQUEST"};
    static const char *const keys[] = {"id", "at", "actor", "role", "action", "target", "outcome", "remote", "request_id"};
    int code = list_rows(ctl, path, "entries", heads, keys, 9);
    free(path);
    return code;
}

int access_main(int argc, char **argv)
{
    const char *cmd = ctl_command(argc, argv);
    if (!cmd || (strcmp(cmd, "token") != 0 && strcmp(cmd, "secret") != 0 && strcmp(cmd, "audit") != 0))
        return -1;
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},        {"url", required_argument, NULL, 'u'},
        {"name", required_argument, NULL, 'n'},  {"role", required_argument, NULL, 'r'},
        {"expires", required_argument, NULL, 'e'}, {"queues", required_argument, NULL, 'q'},
        {"apps", required_argument, NULL, 'a'},  {"grace", required_argument, NULL, 'g'},
        {"actor", required_argument, NULL, 'A'}, {"action", required_argument, NULL, 'X'},
        {"target", required_argument, NULL, 'T'}, {"since", required_argument, NULL, 'S'},
        {"limit", required_argument, NULL, 'L'}, {"after", required_argument, NULL, 'F'},
        {NULL, 0, NULL, 0},
    };
    struct ctl ctl = {.url = getenv("DEVSYS_URL"), .token = getenv("DEVSYS_TOKEN"), .timeout_s = 10};
    struct access_opts o = {0};
    const char **slot[128] = {0};
    slot['n'] = &o.name, slot['r'] = &o.role, slot['e'] = &o.expires, slot['q'] = &o.queues;
    slot['a'] = &o.apps, slot['g'] = &o.grace, slot['A'] = &o.actor, slot['X'] = &o.action;
    slot['T'] = &o.target, slot['S'] = &o.since, slot['L'] = &o.limit, slot['F'] = &o.after;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'j')
            ctl.json = 1;
        else if (c == 'u')
            ctl.url = optarg;
        else if (c > 0 && c < 128 && slot[c])
            *slot[c] = optarg;
        else
            die_usage("unknown option or missing value: %s", argv[optind - 1]);
    }
    ctl_finish_opts(&ctl);
    int nargs = argc - optind;
    char **args = argv + optind;
    int code = strcmp(cmd, "token") == 0    ? cmd_token(&ctl, nargs, args, &o)
               : strcmp(cmd, "secret") == 0 ? cmd_secret(&ctl, nargs, args)
                                            : cmd_audit(&ctl, &o);
    free(ctl.host);
    free(ctl.prefix);
    return code;
}

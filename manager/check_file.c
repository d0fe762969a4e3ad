/* check_file: YAML -> JSON with the line of every value, then each check
 * through check_def_parse (see check_file.h). Scalars follow YAML 1.2's core
 * schema: plain null/~/empty, true/false, integers and floats are typed;
 * quoted scalars are strings. */
#include "check_file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "check_def.h"
#include "checkdb.h"
#include "xalloc.h"

#define YAML_DEPTH_MAX 32

/* One conversion: the document, the line of each path, a node budget. */
struct conv {
    yaml_document_t *doc;
    json_t *lines; /* "checks[1].monitor.url" -> line (1-based) */
    long nodes;
    char err[600];
    long err_line;
};

static int conv_fail(struct conv *c, const yaml_node_t *n, const char *fmt, const char *arg)
{
    if (!c->err[0]) {
        snprintf(c->err, sizeof c->err, fmt, arg);
        c->err_line = n ? (long)n->start_mark.line + 1 : 0;
    }
    return -1;
}

static int full_match(const char *s, const char *chars_first, const char *chars)
{
    if (!*s || !strchr(chars_first, *s))
        return 0;
    return strspn(s + 1, chars) == strlen(s + 1);
}

static json_t *scalar(const yaml_node_t *n)
{
    const char *s = (const char *)n->data.scalar.value;
    size_t len = n->data.scalar.length;
    /* (the loader tags every untagged scalar !!str, so the tag says nothing) */
    if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return json_stringn(s, len);
    if (len == 0 || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 || strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0)
        return json_null();
    if (strcmp(s, "true") == 0 || strcmp(s, "True") == 0 || strcmp(s, "TRUE") == 0)
        return json_true();
    if (strcmp(s, "false") == 0 || strcmp(s, "False") == 0 || strcmp(s, "FALSE") == 0)
        return json_false();
    if (full_match(s, "-+0123456789", "0123456789") && strspn(s, "-+") < len) {
        errno = 0;
        long long v = strtoll(s, NULL, 10);
        if (errno == 0)
            return json_integer(v);
    }
    char *end;
    if (full_match(s, "-+.0123456789", "0123456789.eE-+")) {
        double d = strtod(s, &end);
        if (*end == '\0')
            return json_real(d);
    }
    return json_stringn(s, len);
}

static json_t *convert(struct conv *c, yaml_node_t *n, const char *path, int depth)
{
    if (!n) {
        conv_fail(c, NULL, "%sYAML: a value is missing", "");
        return NULL;
    }
    if (++c->nodes > CHECK_FILE_MAX_NODES || depth > YAML_DEPTH_MAX) {
        conv_fail(c, n, "%s: too deep or too many values (aliases expanded)", path[0] ? path : "file");
        return NULL;
    }
    if (path[0])
        json_object_set_new(c->lines, path, json_integer((json_int_t)n->start_mark.line + 1));
    if (n->type == YAML_SCALAR_NODE)
        return scalar(n);
    char sub[512];
    if (n->type == YAML_SEQUENCE_NODE) {
        json_t *a = json_array();
        for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
            snprintf(sub, sizeof sub, "%s[%zu]", path, json_array_size(a));
            json_t *v = convert(c, yaml_document_get_node(c->doc, *it), sub, depth + 1);
            if (!v) {
                json_decref(a);
                return NULL;
            }
            json_array_append_new(a, v);
        }
        return a;
    }
    json_t *o = json_object();
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
        if (!k || k->type != YAML_SCALAR_NODE || strlen((const char *)k->data.scalar.value) != k->data.scalar.length) {
            json_decref(o);
            conv_fail(c, k ? k : n, "%s: a key must be a plain string", path[0] ? path : "file");
            return NULL;
        }
        const char *key = (const char *)k->data.scalar.value;
        snprintf(sub, sizeof sub, "%s%s%.200s", path, path[0] ? "." : "", key);
        if (json_object_get(o, key)) {
            json_decref(o);
            conv_fail(c, k, "%s: duplicate key", sub);
            return NULL;
        }
        json_t *v = convert(c, yaml_document_get_node(c->doc, p->value), sub, depth + 1);
        if (!v) {
            json_decref(o);
            return NULL;
        }
        json_object_set_new(o, key, v);
    }
    return o;
}

/* The line of field (a path under prefix), or of its nearest parent known. */
static long line_of(const json_t *lines, const char *prefix, const char *field, size_t flen)
{
    char path[512];
    snprintf(path, sizeof path, "%s%s%.*s", prefix, flen ? "." : "", (int)flen, field);
    for (;;) {
        const json_t *l = json_object_get(lines, path);
        if (l)
            return (long)json_integer_value(l);
        char *cut = strrchr(path, '.'), *br = strrchr(path, '[');
        if (br > cut)
            cut = br;
        if (!cut)
            return 0;
        *cut = '\0';
    }
}

static json_t *checks_from(const char *name, const json_t *root, const json_t *lines, char *why, size_t cap)
{
    const json_t *list = json_object_get(root, "checks");
    if (!json_is_object(root) || json_object_size(root) != 1 || !json_is_array(list)) {
        snprintf(why, cap, "%s:%ld: the file must be a mapping with one key, checks: a list of checks", name,
                 line_of(lines, "checks", "", 0));
        return NULL;
    }
    if (json_array_size(list) > CHECKS_MAX) {
        snprintf(why, cap, "%s: more than %d checks", name, CHECKS_MAX);
        return NULL;
    }
    json_t *out = json_array();
    size_t i;
    json_t *c;
    json_array_foreach(list, i, c) {
        char err[512], prefix[32];
        snprintf(prefix, sizeof prefix, "checks[%zu]", i);
        json_t *d = check_def_parse(c, err, sizeof err);
        const char *dup = NULL;
        for (size_t j = 0; d && j < i; j++)
            if (json_equal(json_object_get(json_array_get(out, j), "name"), json_object_get(d, "name")))
                dup = json_string_value(json_object_get(d, "name"));
        if (dup)
            snprintf(err, sizeof err, "name: \"%s\" is defined twice", dup);
        if (!d || dup) {
            size_t flen = strcspn(err, ": ");
            snprintf(why, cap, "%s:%ld: %s.%s", name, line_of(lines, prefix, err, flen), prefix, err);
            json_decref(d);
            json_decref(out);
            return NULL;
        }
        json_array_append_new(out, d);
    }
    return out;
}

json_t *check_file_parse(const char *name, const char *text, size_t len, char *why, size_t cap)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        snprintf(why, cap, "%s:%zu:%zu: bad YAML: %s%s%s", name, parser.problem_mark.line + 1,
                 parser.problem_mark.column + 1, parser.problem ? parser.problem : "cannot parse",
                 parser.context ? " " : "", parser.context ? parser.context : "");
        yaml_parser_delete(&parser);
        return NULL;
    }
    struct conv c = {.doc = &doc, .lines = json_object()};
    json_t *out = NULL, *root = NULL;
    yaml_node_t *top = yaml_document_get_root_node(&doc);
    if (!top) {
        snprintf(why, cap, "%s:1: the file is empty (expected checks: a list of checks)", name);
    } else if (!(root = convert(&c, top, "", 0))) {
        snprintf(why, cap, "%s:%ld: %s", name, c.err_line, c.err);
    } else {
        out = checks_from(name, root, c.lines, why, cap);
    }
    json_decref(root);
    json_decref(c.lines);
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    return out;
}

json_t *check_file_load(const char *path, char *why, size_t cap)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(why, cap, "%s: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = xmalloc(CHECK_FILE_MAX_BYTES + 1);
    size_t n = fread(buf, 1, CHECK_FILE_MAX_BYTES + 1, f);
    int rerr = ferror(f);
    fclose(f);
    json_t *out = NULL;
    if (rerr)
        snprintf(why, cap, "%s: read error", path);
    else if (n > CHECK_FILE_MAX_BYTES)
        snprintf(why, cap, "%s: larger than %d bytes", path, CHECK_FILE_MAX_BYTES);
    else
        out = check_file_parse(path, buf, n, why, cap);
    free(buf);
    return out;
}

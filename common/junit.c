/* junit: JUnit XML reports -> one summary (see junit.h). libxml2 parses with
 * no network, no DTD loading, no entity substitution and its default (not
 * HUGE) limits; a DOCTYPE stops the parse before its internal subset is read,
 * so entity bombs and external entities never get a chance. */
#include "junit.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlerror.h>

#include "xalloc.h"

#define XML_OPTIONS (XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING)

enum outcome { PASSED, FAILED, ERRORED, SKIPPED };

struct failed {
    char *name, *classname, *message;
};

/* One testcase for the test history (junit_cases_json). */
struct case_row {
    char *test;    /* "classname::name" */
    char *message; /* failed or errored: the message; else NULL */
    double time_s;
    const char *outcome;
};

struct junit_summary {
    long tests, failures, errors, skipped, flaky;
    struct case_row *cases; /* at most JUNIT_HISTORY_MAX */
    int ncases, cases_cap;
    long cases_unrecorded;
    double time_s;
    struct failed failed[JUNIT_FAILED_LIST_MAX];
    int nfailed;       /* listed */
    long unlisted;     /* failed or errored past the list */
    int ndocs;
    char *first_xml;   /* the first document as parsed (serialized, UTF-8) */
    size_t first_len;
    xmlBufferPtr suites; /* every document's suites, for a combined document */
    int xml_over;      /* the combined document would exceed JUNIT_XML_MAX */
};

junit_summary_t *junit_summary_new(void)
{
    return xcalloc(1, sizeof(junit_summary_t));
}

static void failed_clear(struct failed *f, int n)
{
    for (int i = 0; i < n; i++) {
        free(f[i].name);
        free(f[i].classname);
        free(f[i].message);
    }
}

static void cases_clear(struct case_row *c, int n)
{
    for (int i = 0; i < n; i++) {
        free(c[i].test);
        free(c[i].message);
    }
}

void junit_summary_free(junit_summary_t *s)
{
    if (!s)
        return;
    failed_clear(s->failed, s->nfailed);
    cases_clear(s->cases, s->ncases);
    free(s->cases);
    free(s->first_xml);
    if (s->suites)
        xmlBufferFree(s->suites);
    free(s);
}

long junit_tests(const junit_summary_t *s)
{
    return s->tests;
}

long junit_failed_count(const junit_summary_t *s)
{
    return s->failures + s->errors;
}

/* ---- text helpers ---- */

/* A copy of s with control characters as spaces, leading blanks dropped,
 * cut at the first line break when first_line, and at most max bytes (at a
 * UTF-8 character boundary). libxml2 hands out valid UTF-8. Caller frees. */
static char *text_clip(const char *s, size_t max, int first_line)
{
    if (!s)
        return xstrdup("");
    while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
        s++;
    size_t n = first_line ? strcspn(s, "\r\n") : strlen(s);
    if (n > max) {
        n = max;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
    }
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        n--;
    char *out = xstrndup(s, n);
    for (char *p = out; *p; p++)
        if ((unsigned char)*p < 0x20)
            *p = ' ';
    return out;
}

static int is_elem(const xmlNode *n, const char *name)
{
    return n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, name) == 0;
}

static char *attr_clip(const xmlNode *n, const char *name, size_t max, int first_line)
{
    xmlChar *v = xmlGetProp(n, (const xmlChar *)name);
    char *out = v ? text_clip((const char *)v, max, first_line) : NULL;
    xmlFree(v);
    return out;
}

/* Seconds in a time="..." attribute; Surefire may write "1,234.5". 0 when
 * absent or not a sane number. */
static double attr_seconds(const xmlNode *n)
{
    xmlChar *v = xmlGetProp(n, (const xmlChar *)"time");
    if (!v)
        return 0;
    char buf[64];
    size_t j = 0;
    for (const xmlChar *p = v; *p && j + 1 < sizeof buf; p++)
        if (*p != ',')
            buf[j++] = (char)*p;
    buf[j] = '\0';
    xmlFree(v);
    char *end;
    double d = strtod(buf, &end);
    return j && *end == '\0' && isfinite(d) && d >= 0 && d < 1e9 ? d : 0;
}

/* The first line of the testcase's <system-out> (meson and ctest write an
 * empty <failure/> and the test's output there), or NULL. */
static char *output_line(const xmlNode *tc)
{
    for (const xmlNode *c = tc->children; c; c = c->next) {
        if (!is_elem(c, "system-out") && !is_elem(c, "system-err"))
            continue;
        xmlChar *text = xmlNodeGetContent(c);
        char *m = text_clip((const char *)text, JUNIT_MESSAGE_MAX, 1);
        xmlFree(text);
        if (m[0])
            return m;
        free(m);
    }
    return NULL;
}

/* The message of a <failure>/<error>: the first line of its message
 * attribute, else of its text, else of the test's output, else its type. */
static char *failure_message(const xmlNode *tc, const xmlNode *f)
{
    char *m = attr_clip(f, "message", JUNIT_MESSAGE_MAX, 1);
    if (m && m[0])
        return m;
    free(m);
    xmlChar *text = xmlNodeGetContent(f);
    m = text_clip((const char *)text, JUNIT_MESSAGE_MAX, 1);
    xmlFree(text);
    if (m[0])
        return m;
    free(m);
    if ((m = output_line(tc)) != NULL)
        return m;
    m = attr_clip(f, "type", JUNIT_MESSAGE_MAX, 1);
    return m ? m : xstrdup("");
}

/* ---- counting ---- */

/* Adds the testcase to s's history rows while there is room. */
static void case_record(junit_summary_t *s, const xmlNode *tc, const char *outcome, const xmlNode *why)
{
    if (s->ncases >= JUNIT_HISTORY_MAX) {
        s->cases_unrecorded++;
        return;
    }
    if (s->ncases == s->cases_cap) {
        s->cases_cap = s->cases_cap ? s->cases_cap * 2 : 64;
        s->cases = xrealloc(s->cases, (size_t)s->cases_cap * sizeof *s->cases);
    }
    char *name = attr_clip(tc, "name", JUNIT_NAME_MAX, 0), *cls = attr_clip(tc, "classname", JUNIT_NAME_MAX, 0);
    struct case_row *c = &s->cases[s->ncases++];
    c->test = xasprintf("%s::%s", cls ? cls : "", name ? name : "");
    c->message = why ? failure_message(tc, why) : NULL;
    c->time_s = attr_seconds(tc);
    c->outcome = outcome;
    free(name);
    free(cls);
}

struct walk {
    junit_summary_t *s; /* this document's counts, merged on success */
    char *err;
    size_t errlen;
    long limit; /* testcases this document may still add */
};

static void count_case(struct walk *w, const xmlNode *tc)
{
    const xmlNode *failure = NULL, *error = NULL, *rerun_f = NULL, *rerun_e = NULL;
    int skipped = 0, flaky = 0;
    for (const xmlNode *c = tc->children; c; c = c->next) {
        if (c->type != XML_ELEMENT_NODE)
            continue;
        if (is_elem(c, "failure") && !failure)
            failure = c;
        else if (is_elem(c, "error") && !error)
            error = c;
        else if (is_elem(c, "rerunFailure") && !rerun_f)
            rerun_f = c;
        else if (is_elem(c, "rerunError") && !rerun_e)
            rerun_e = c;
        else if (is_elem(c, "skipped"))
            skipped = 1;
        else if (is_elem(c, "flakyFailure") || is_elem(c, "flakyError"))
            flaky = 1;
    }
    /* ctest writes a disabled test with no <skipped/>, only its status */
    xmlChar *status = xmlGetProp(tc, (const xmlChar *)"status");
    if (status && (!strcmp((const char *)status, "disabled") || !strcmp((const char *)status, "notrun")))
        skipped = 1;
    xmlFree(status);
    junit_summary_t *s = w->s;
    s->tests++;
    s->time_s += attr_seconds(tc);
    const xmlNode *why = failure ? failure : error ? error : rerun_f ? rerun_f : rerun_e;
    enum outcome o = failure || (!error && rerun_f) ? FAILED : why ? ERRORED : skipped ? SKIPPED : PASSED;
    case_record(s, tc, o == SKIPPED ? "skipped" : o == PASSED ? (flaky ? "flaky" : "passed")
                                       : o == FAILED ? "failed" : "error", why);
    if (o == SKIPPED) {
        s->skipped++;
    } else if (o == PASSED) {
        s->flaky += flaky;
    } else {
        if (o == FAILED)
            s->failures++;
        else
            s->errors++;
        if (s->nfailed < JUNIT_FAILED_LIST_MAX) {
            struct failed *f = &s->failed[s->nfailed++];
            f->name = attr_clip(tc, "name", JUNIT_NAME_MAX, 0);
            f->classname = attr_clip(tc, "classname", JUNIT_NAME_MAX, 0);
            f->message = failure_message(tc, why);
            if (!f->name)
                f->name = xstrdup("");
            if (!f->classname)
                f->classname = xstrdup("");
        } else {
            s->unlisted++;
        }
    }
}

/* A <testsuite>: its testcases and nested suites (depth is bounded by
 * libxml2's own nesting limit). */
static int walk_suite(struct walk *w, const xmlNode *suite)
{
    for (const xmlNode *c = suite->children; c; c = c->next) {
        if (is_elem(c, "testcase")) {
            if (w->s->tests >= w->limit) {
                snprintf(w->err, w->errlen, "more than %d testcases", JUNIT_CASES_MAX);
                return -1;
            }
            count_case(w, c);
        } else if (is_elem(c, "testsuite") && walk_suite(w, c) < 0) {
            return -1;
        }
    }
    return 0;
}

/* ---- parsing ---- */

/* SAX hook: a DOCTYPE was seen. Stop before its internal subset (where
 * entities are declared) is parsed. */
static void refuse_doctype(void *ctx, const xmlChar *name, const xmlChar *ext, const xmlChar *sys)
{
    (void)name;
    (void)ext;
    (void)sys;
    xmlParserCtxtPtr ctxt = ctx;
    *(int *)ctxt->_private = 1;
    xmlStopParser(ctxt);
}

/* libxml2 reports encoding and I/O errors of the input without the parser
 * context: they go to the generic handler (stderr by default) and to the
 * global last error. Keep them off stderr; parse_doc reads them. */
static void quiet(void *ctx, const char *msg, ...)
{
    (void)ctx;
    (void)msg;
}

static void init_once(void)
{
    xmlInitParser();
}

/* Parses run on worker threads (agents/handler_testing.c): libxml2 is
 * initialised once, and its generic error handler is per thread. */
static xmlDocPtr parse_doc(const char *xml, size_t len, char *err, size_t errlen)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, init_once);
    xmlSetGenericErrorFunc(NULL, quiet);
    if (len > (size_t)INT32_MAX) {
        snprintf(err, errlen, "%zu bytes is too large to parse", len);
        return NULL;
    }
    xmlParserCtxtPtr ctxt = xmlNewParserCtxt();
    if (!ctxt)
        abort();
    int doctype = 0;
    ctxt->_private = &doctype;
    ctxt->sax->internalSubset = refuse_doctype;
    ctxt->sax->externalSubset = NULL;
    xmlResetLastError();
    xmlDocPtr doc = xmlCtxtReadMemory(ctxt, xml, (int)len, NULL, NULL, XML_OPTIONS);
    /* Bytes that are not valid in the document's encoding end libxml2's
     * input early without making the document malformed: what it parsed
     * would not be the report as written, so refuse it. */
    const xmlError *ge = xmlGetLastError();
    if (doc && !doctype && ge && (ge->domain == XML_FROM_I18N || ge->domain == XML_FROM_IO)) {
        snprintf(err, errlen, "line %d: the report is not valid in its declared encoding",
                 ctxt->input ? ctxt->input->line : 0);
        xmlFreeDoc(doc);
        doc = NULL;
    } else if (doctype) {
        snprintf(err, errlen, "line %d: a DOCTYPE is not allowed in a JUnit report (no DTDs or entities)",
                 ctxt->input ? ctxt->input->line : 0);
        xmlFreeDoc(doc);
        doc = NULL;
    } else if (!doc) {
        const xmlError *e = xmlCtxtGetLastError(ctxt);
        char msg[200] = "not well-formed XML";
        if (e && e->message) {
            snprintf(msg, sizeof msg, "%s", e->message);
            msg[strcspn(msg, "\n")] = '\0';
        }
        snprintf(err, errlen, "line %d: malformed XML: %s", e ? e->line : 0, msg);
    }
    xmlFreeParserCtxt(ctxt);
    return doc;
}

static void merge(junit_summary_t *s, junit_summary_t *d)
{
    s->tests += d->tests;
    s->failures += d->failures;
    s->errors += d->errors;
    s->skipped += d->skipped;
    s->flaky += d->flaky;
    s->time_s += d->time_s;
    s->unlisted += d->unlisted;
    for (int i = 0; i < d->nfailed; i++) {
        if (s->nfailed < JUNIT_FAILED_LIST_MAX) {
            s->failed[s->nfailed++] = d->failed[i];
        } else {
            failed_clear(&d->failed[i], 1);
            s->unlisted++;
        }
    }
    d->nfailed = 0;
    s->cases_unrecorded += d->cases_unrecorded;
    for (int i = 0; i < d->ncases; i++) {
        if (s->ncases >= JUNIT_HISTORY_MAX) {
            cases_clear(&d->cases[i], 1);
            s->cases_unrecorded++;
            continue;
        }
        if (s->ncases == s->cases_cap) {
            s->cases_cap = s->cases_cap ? s->cases_cap * 2 : 64;
            s->cases = xrealloc(s->cases, (size_t)s->cases_cap * sizeof *s->cases);
        }
        s->cases[s->ncases++] = d->cases[i];
    }
    d->ncases = 0;
}

/* Keeps the document for junit_summary_xml: the first one whole, every
 * one's suites for a combined document, while under JUNIT_XML_MAX. */
/* libxml2 writes a namespace declaration's URI without escaping it (2.9:
 * xmlNsDumpOutput), so a URI holding '<', '&' or '"' would come back as
 * malformed XML. Such a URI is no namespace anyone uses: percent-encode
 * those bytes (and controls) in place before the tree is written. */
static void escape_ns_uris(xmlNodePtr n)
{
    for (; n; n = n->next) {
        if (n->type != XML_ELEMENT_NODE)
            continue;
        for (xmlNsPtr ns = n->nsDef; ns; ns = ns->next) {
            const xmlChar *h = ns->href;
            if (!h || !h[strcspn((const char *)h, "<&\"\t\n\r")])
                continue;
            size_t len = strlen((const char *)h);
            char *out = xmalloc(len * 3 + 1), *o = out;
            for (const xmlChar *c = h; *c; c++)
                o += (*c == '<' || *c == '&' || *c == '"' || *c < 0x20) ? sprintf(o, "%%%02X", *c)
                                                                           : (*o = (char)*c, 1);
            *o = '\0';
            xmlFree((xmlChar *)ns->href);
            ns->href = xmlStrdup((const xmlChar *)out);
            free(out);
        }
        escape_ns_uris(n->children);
    }
}

static void keep_xml(junit_summary_t *s, xmlDocPtr doc, xmlNodePtr root)
{
    escape_ns_uris(root);
    if (s->ndocs++ == 0) {
        xmlChar *mem = NULL;
        int n = 0;
        xmlDocDumpMemoryEnc(doc, &mem, &n, "UTF-8");
        if (mem && (size_t)n <= JUNIT_XML_MAX) {
            s->first_xml = xstrndup((const char *)mem, (size_t)n);
            s->first_len = (size_t)n;
        } else {
            s->xml_over = 1;
        }
        xmlFree(mem);
    }
    if (s->xml_over)
        return;
    if (!s->suites)
        s->suites = xmlBufferCreate();
    int whole = is_elem(root, "testsuite");
    for (xmlNodePtr c = whole ? root : root->children; c; c = whole ? NULL : c->next) {
        if (c->type != XML_ELEMENT_NODE)
            continue;
        xmlNodeDump(s->suites, doc, c, 1, 0);
        xmlBufferCCat(s->suites, "\n");
        if ((size_t)xmlBufferLength(s->suites) > JUNIT_XML_MAX) {
            s->xml_over = 1;
            xmlBufferFree(s->suites);
            s->suites = NULL;
            return;
        }
    }
}

int junit_parse(junit_summary_t *s, const char *xml, size_t len, char *err, size_t errlen)
{
    xmlDocPtr doc = parse_doc(xml, len, err, errlen);
    if (!doc)
        return -1;
    int rc = -1;
    xmlNodePtr root = xmlDocGetRootElement(doc);
    junit_summary_t d = {0};
    struct walk w = {&d, err, errlen, JUNIT_CASES_MAX - s->tests};
    if (!root || !(is_elem(root, "testsuites") || is_elem(root, "testsuite"))) {
        snprintf(err, errlen, "the root element is <%.40s>, not <testsuites> or <testsuite>",
                 root ? (const char *)root->name : "");
        goto out;
    }
    if (walk_suite(&w, root) < 0)
        goto out;
    merge(s, &d);
    keep_xml(s, doc, root);
    rc = 0;
out:
    failed_clear(d.failed, d.nfailed);
    cases_clear(d.cases, d.ncases);
    free(d.cases);
    xmlFreeDoc(doc);
    return rc;
}

int junit_parse_file(junit_summary_t *s, const char *path, size_t max_bytes, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        snprintf(err, errlen, "%s", strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "not a regular file");
        close(fd);
        return -1;
    }
    if ((unsigned long long)st.st_size > max_bytes) {
        snprintf(err, errlen, "%lld bytes exceeds the limit of %zu bytes", (long long)st.st_size, max_bytes);
        close(fd);
        return -1;
    }
    /* the file may grow while read: never past the limit */
    char *buf = xmalloc((size_t)st.st_size + 1);
    size_t got = 0, want = (size_t)st.st_size;
    while (got < want) {
        ssize_t n = read(fd, buf + got, want - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    int rc = junit_parse(s, buf, got, err, errlen);
    free(buf);
    return rc;
}

/* ---- output ---- */

json_t *junit_summary_json(const junit_summary_t *s)
{
    json_t *failed = json_array();
    for (int i = 0; i < s->nfailed; i++)
        json_array_append_new(failed, json_pack("{s:s,s:s,s:s}", "name", s->failed[i].name, "classname",
                                                s->failed[i].classname, "message", s->failed[i].message));
    return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:f,s:o,s:I}", "tests", (json_int_t)s->tests, "failures",
                     (json_int_t)s->failures, "errors", (json_int_t)s->errors, "skipped",
                     (json_int_t)s->skipped, "flaky", (json_int_t)s->flaky, "passed",
                     (json_int_t)(s->tests - s->failures - s->errors - s->skipped), "time_s",
                     round(s->time_s * 1000) / 1000, "failed", failed, "failed_unlisted",
                     (json_int_t)s->unlisted);
}

char *junit_failed_line(const junit_summary_t *s, size_t max)
{
    long n = s->failures + s->errors;
    if (n == 0)
        return NULL;
    char *line = xasprintf("%ld test%s failed:", n, n == 1 ? "" : "s");
    for (int i = 0; i < s->nfailed; i++) {
        const struct failed *f = &s->failed[i];
        char *next = xasprintf("%s%s %s%s%s", line, i ? "," : "", f->classname, f->classname[0] ? "." : "",
                               f->name);
        if (strlen(next) > max && i > 0) {
            free(next);
            next = xasprintf("%s, ...", line);
            free(line);
            return next;
        }
        free(line);
        line = next;
    }
    if (s->unlisted) {
        char *next = xasprintf("%s, ...", line);
        free(line);
        line = next;
    }
    return line;
}

json_t *junit_cases_json(const junit_summary_t *s)
{
    json_t *a = json_array();
    for (int i = 0; i < s->ncases; i++) {
        const struct case_row *c = &s->cases[i];
        json_t *o = json_pack("{s:s,s:s,s:f}", "test", c->test, "outcome", c->outcome, "time_s",
                              round(c->time_s * 1000) / 1000);
        if (c->message)
            json_object_set_new(o, "message", json_string(c->message));
        json_array_append_new(a, o);
    }
    return a;
}

long junit_cases_unrecorded(const junit_summary_t *s)
{
    return s->cases_unrecorded;
}

char *junit_summary_xml(const junit_summary_t *s, size_t *len)
{
    *len = 0;
    if (s->ndocs == 0 || s->xml_over)
        return NULL;
    if (s->ndocs == 1) {
        *len = s->first_len;
        return xstrndup(s->first_xml, s->first_len);
    }
    static const char head[] = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n";
    static const char tail[] = "</testsuites>\n";
    size_t body = (size_t)xmlBufferLength(s->suites);
    size_t n = sizeof head - 1 + body + sizeof tail - 1;
    if (n > JUNIT_XML_MAX)
        return NULL;
    char *out = xmalloc(n + 1);
    memcpy(out, head, sizeof head - 1);
    memcpy(out + sizeof head - 1, xmlBufferContent(s->suites), body);
    memcpy(out + sizeof head - 1 + body, tail, sizeof tail);
    *len = n;
    return out;
}

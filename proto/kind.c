/* kind: the one table of task kinds (see kind.h). Adding a kind is a row
 * here, its handler in agents/ (one file, one row in agents/handlers.c) and,
 * when it has a section, its validator in kind_<name>.c. */
#include "kind.h"

#include <stdio.h>
#include <string.h>

static const kind_def_t kinds[] = {
    /* name      section  validator           flags */
    {"exec", NULL, NULL, KIND_NEEDS_COMMAND},
    {"coding", NULL, NULL, KIND_NEEDS_COMMAND},
    {"noop", "sleep", kind_sleep_section, KIND_INSTANT},
    {"sleep", "sleep", kind_sleep_section, 0},
    {"testing", "testing", kind_testing_section, KIND_NEEDS_COMMAND | KIND_NEEDS_SECTION},
    {"deploy", "deploy", kind_deploy_section, KIND_NEEDS_SECTION},
    {"notify", "notify", kind_notify_section, KIND_NEEDS_SECTION},
    {"monitor", "monitor", kind_monitor_section, KIND_NEEDS_SECTION},
};
#define NKINDS (sizeof kinds / sizeof kinds[0])

const kind_def_t *kind_find(const char *name)
{
    if (!name)
        return NULL;
    for (size_t i = 0; i < NKINDS; i++)
        if (strcmp(name, kinds[i].name) == 0)
            return &kinds[i];
    return NULL;
}

const kind_def_t *kind_at(size_t i)
{
    return i < NKINDS ? &kinds[i] : NULL;
}

/* Appends s to buf (holding *used bytes) as far as it fits. */
static void append(char *buf, size_t len, size_t *used, const char *s)
{
    int n = snprintf(buf + *used, len - *used, "%s", s);
    if (n > 0)
        *used += (size_t)n < len - *used ? (size_t)n : len - *used - 1;
}

int kind_bad(char *err, size_t errlen, const char *field, const char *rule)
{
    snprintf(err, errlen, "%s: %s", field, rule);
    return -1;
}

const char *kind_str_in(const json_t *v, size_t max)
{
    if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > max ||
        strlen(json_string_value(v)) != json_string_length(v))
        return NULL;
    return json_string_value(v);
}

char *kind_names(char *buf, size_t len)
{
    size_t used = 0;
    if (len == 0)
        return buf;
    buf[0] = '\0';
    for (size_t i = 0; i < NKINDS; i++) {
        if (i)
            append(buf, len, &used, ", ");
        append(buf, len, &used, kinds[i].name);
    }
    return buf;
}

int kind_section_known(const char *name)
{
    for (size_t i = 0; i < NKINDS; i++)
        if (kinds[i].section && strcmp(name, kinds[i].section) == 0)
            return 1;
    return 0;
}

char *kind_section_owners(const char *section, char *buf, size_t len)
{
    const char *own[NKINDS];
    size_t n = 0, used = 0;
    for (int pass = 0; pass < 2; pass++) /* the kind named like the section first */
        for (size_t i = 0; i < NKINDS; i++)
            if (kinds[i].section && strcmp(kinds[i].section, section) == 0 &&
                (strcmp(kinds[i].name, section) == 0) == (pass == 0))
                own[n++] = kinds[i].name;
    if (len == 0)
        return buf;
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (i)
            append(buf, len, &used, i + 1 == n ? " and " : ", ");
        append(buf, len, &used, own[i]);
    }
    return buf;
}

/* step_output: the $DEVSYS_RESULT document, the relative-path check and the
 * expected artifacts' matching, symlink and size rules, on files made here. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "step_output.h"

static char dir[64];

static void write_file(const char *rel, const char *content)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(content, f);
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/test_step_output.XXXXXX");
    assert_non_null(mkdtemp(dir));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_relpath(void **state)
{
    (void)state;
    assert_true(sout_relpath_ok("a"));
    assert_true(sout_relpath_ok("dist/site.tgz"));
    assert_true(sout_relpath_ok("a/.hidden/b..c"));
    assert_false(sout_relpath_ok(""));
    assert_false(sout_relpath_ok("/etc/passwd"));
    assert_false(sout_relpath_ok(".."));
    assert_false(sout_relpath_ok("a/../../b"));
    assert_false(sout_relpath_ok("a/./b"));
    assert_false(sout_relpath_ok("a//b"));
    assert_false(sout_relpath_ok("a/"));
    assert_false(sout_relpath_ok(NULL));
}

static void test_result_read(void **state)
{
    (void)state;
    char path[128], err[300];
    json_t *out;
    snprintf(path, sizeof path, "%s/r.json", dir);
    assert_int_equal(sout_result_read(path, 100, &out, err, sizeof err), 0); /* none: no output */
    assert_null(out);
    write_file("r.json", "{\"version\": \"1.2\", \"n\": [1, 2]}");
    assert_int_equal(sout_result_read(path, 100, &out, err, sizeof err), 1);
    assert_string_equal(json_string_value(json_object_get(out, "version")), "1.2");
    json_decref(out);
    write_file("r.json", "42");
    assert_int_equal(sout_result_read(path, 100, &out, err, sizeof err), 1); /* any JSON value */
    json_decref(out);
    write_file("r.json", "{\"a\": ");
    assert_int_equal(sout_result_read(path, 100, &out, err, sizeof err), -1);
    assert_non_null(strstr(err, "$DEVSYS_RESULT is not valid JSON: line 1"));
    write_file("r.json", "[\"0123456789012345678901234567890123456789\"]");
    assert_int_equal(sout_result_read(path, 20, &out, err, sizeof err), -1);
    assert_string_equal(err, "result: $DEVSYS_RESULT is 44 bytes, over the 20-byte limit");
}

static void test_collect(void **state)
{
    (void)state;
    char sub[128], err[600];
    snprintf(sub, sizeof sub, "%s/dist", dir);
    mkdir(sub, 0700);
    write_file("dist/a.txt", "abc");
    write_file("dist/b.txt", "hello\n");
    write_file("report.html", "<p>ok</p>");
    json_t *pats = json_pack("[s,s]", "dist/*.txt", "report.html");
    sout_file_t *files;
    size_t n;
    assert_int_equal(sout_collect(dir, pats, 1 << 20, &files, &n, err, sizeof err), 0);
    assert_int_equal(n, 3);
    assert_string_equal(files[0].rel, "dist/a.txt");
    assert_string_equal(files[1].rel, "dist/b.txt");
    assert_string_equal(files[2].rel, "report.html");
    assert_int_equal(files[1].size, 6);
    long long size;
    assert_int_equal(sout_hash_file(files[0].path, files[0].sha256, &size, err, sizeof err), 0);
    assert_string_equal(files[0].sha256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_int_equal(size, 3);
    sout_files_free(files, n);
    json_decref(pats);

    /* every missing one is named */
    pats = json_pack("[s,s,s]", "dist/site.tgz", "report.html", "out/*.xml");
    assert_int_equal(sout_collect(dir, pats, 1 << 20, &files, &n, err, sizeof err), -1);
    assert_string_equal(err, "expected artifacts missing: dist/site.tgz, out/*.xml");
    json_decref(pats);

    /* over the size limit */
    pats = json_pack("[s]", "dist/b.txt");
    assert_int_equal(sout_collect(dir, pats, 5, &files, &n, err, sizeof err), -1);
    assert_non_null(strstr(err, "dist/b.txt: 6 bytes, over the 5-byte limit"));
    json_decref(pats);

    /* a symlink inside is followed; one pointing outside is refused */
    char link[160];
    snprintf(link, sizeof link, "%s/in", dir);
    assert_int_equal(symlink("dist/a.txt", link), 0);
    snprintf(link, sizeof link, "%s/out", dir);
    assert_int_equal(symlink("/etc/hostname", link), 0);
    pats = json_pack("[s]", "in");
    assert_int_equal(sout_collect(dir, pats, 1 << 20, &files, &n, err, sizeof err), 0);
    assert_int_equal(n, 1);
    sout_files_free(files, n);
    json_decref(pats);
    pats = json_pack("[s]", "out");
    assert_int_equal(sout_collect(dir, pats, 1 << 20, &files, &n, err, sizeof err), -1);
    assert_non_null(strstr(err, "expected artifact out: a symlink pointing outside the workspace"));
    json_decref(pats);

    /* a path climbing out is refused before any file is looked at */
    pats = json_pack("[s]", "../x");
    assert_int_equal(sout_collect(dir, pats, 1 << 20, &files, &n, err, sizeof err), -1);
    assert_non_null(strstr(err, "expected_artifacts[0]: \"../x\" must be a relative path"));
    json_decref(pats);
    /* a directory is not an artifact */
    pats = json_pack("[s]", "dist");
    assert_int_equal(sout_collect(dir, pats, 1 << 20, &files, &n, err, sizeof err), -1);
    assert_non_null(strstr(err, "dist: not a regular file"));
    json_decref(pats);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_relpath),
        cmocka_unit_test(test_result_read),
        cmocka_unit_test(test_collect),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

/* test_queue_decode: the one stream-entry decoder (queue_read.c) on replies
 * as Redis sends them (RESP read by hiredis): XREADGROUP of several streams,
 * pending entries deleted from the stream, malformed elements, and the dead
 * letter JSON built from a decoded entry. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "entry_check.h"
#include "queue_internal.h"

#include <hiredis/read.h>

static redisReply *parse(const char *resp, size_t len)
{
    redisReader *r = redisReaderCreate();
    redisReaderFeed(r, resp, len);
    void *reply = NULL;
    assert_int_equal(redisReaderGetReply(r, &reply), REDIS_OK);
    assert_non_null(reply);
    redisReaderFree(r);
    return reply;
}

#define PARSE(s) parse(s, sizeof(s) - 1)

/* Two streams; the second entry of the first is pending but deleted. */
static const char xreadgroup[] =
    "*2\r\n"
    "*2\r\n$14\r\ndevsys:{a}:str\r\n*2\r\n"
    "*2\r\n$3\r\n1-1\r\n*4\r\n$2\r\nid\r\n$1\r\nx\r\n$4\r\nspec\r\n$3\r\na\0b\r\n"
    "*2\r\n$3\r\n1-2\r\n$-1\r\n"
    "*2\r\n$14\r\ndevsys:{b}:str\r\n*1\r\n"
    "*2\r\n$3\r\n2-1\r\n*2\r\n$4\r\nspec\r\n$2\r\n{}\r\n";

static void test_streams(void **state)
{
    (void)state;
    redisReply *r = PARSE(xreadgroup);
    size_t n;
    queue_entry_t *e = queue_decode_streams(r, &n);
    assert_int_equal(n, 3);
    assert_string_equal(e[0].stream, "devsys:{a}:str");
    assert_string_equal(e[0].id, "1-1");
    assert_int_equal(e[0].deleted, 0);
    assert_int_equal(e[0].nfields, 2);
    assert_string_equal(e[0].fields[0].name, "id");
    assert_int_equal(e[0].fields[1].val_len, 3);
    assert_memory_equal(e[0].fields[1].val, "a\0b", 3);
    /* nothing copied: the strings are the reply's own */
    const redisReply *f = r->element[0]->element[1]->element[0]->element[1];
    assert_ptr_equal(e[0].fields[1].val, f->element[3]->str);
    assert_ptr_equal(e[0].stream, r->element[0]->element[0]->str);
    assert_string_equal(e[1].id, "1-2");
    assert_int_equal(e[1].deleted, 1);
    assert_int_equal(e[1].nfields, 0);
    assert_string_equal(e[2].stream, "devsys:{b}:str");
    assert_string_equal(e[2].id, "2-1");
    assert_int_equal(e[2].nfields, 1);
    free(e);
    freeReplyObject(r);
}

/* A timed-out XREADGROUP is nil: no entries. */
static void test_nil(void **state)
{
    (void)state;
    redisReply *r = PARSE("*-1\r\n");
    size_t n = 99;
    queue_entry_t *e = queue_decode_streams(r, &n);
    assert_int_equal(n, 0);
    free(e);
    freeReplyObject(r);
}

/* Elements that are not [string, array|nil] are left out, and so is a field
 * pair that is not two strings; the rest of the entry is kept. */
static void test_malformed(void **state)
{
    (void)state;
    redisReply *r = PARSE("*4\r\n"
                          ":5\r\n"
                          "*1\r\n$3\r\n1-1\r\n"
                          "*2\r\n:7\r\n*0\r\n"
                          "*2\r\n$3\r\n1-2\r\n*4\r\n$1\r\nk\r\n:3\r\n$1\r\nf\r\n$1\r\nv\r\n");
    size_t n;
    queue_entry_t *e = queue_decode_entries(r, NULL, &n);
    assert_int_equal(n, 1);
    assert_null(e[0].stream);
    assert_string_equal(e[0].id, "1-2");
    assert_int_equal(e[0].nfields, 1);
    assert_string_equal(e[0].fields[0].name, "f");
    assert_string_equal(e[0].fields[0].val, "v");
    free(e);
    freeReplyObject(r);
}

/* A dead letter as the manager shows it: strings made valid UTF-8, a field
 * named entry_id cannot hide the real one; a deleted entry is no letter. */
static void test_dlq_json(void **state)
{
    (void)state;
    redisReply *r = PARSE("*2\r\n"
                          "*2\r\n$3\r\n9-9\r\n*6\r\n$5\r\nerror\r\n$2\r\n\xff\x41\r\n$8\r\nentry_id\r\n$1\r\nx\r\n"
                          "$2\r\nid\r\n$1\r\nt\r\n"
                          "*2\r\n$3\r\n9-8\r\n$-1\r\n");
    size_t n;
    queue_entry_t *e = queue_decode_entries(r, NULL, &n);
    assert_int_equal(n, 2);
    json_t *j = entry_dlq_json(&e[0]);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "entry_id")), "9-9");
    assert_string_equal(json_string_value(json_object_get(j, "id")), "t");
    const char *err = json_string_value(json_object_get(j, "error"));
    assert_non_null(err);
    assert_int_equal(err[strlen(err) - 1], 'A');
    json_decref(j);
    assert_null(entry_dlq_json(&e[1]));
    free(e);
    freeReplyObject(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_streams),
        cmocka_unit_test(test_nil),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_dlq_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

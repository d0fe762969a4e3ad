/* fuzz_lua_entries: libFuzzer target for the entry formats Redis Lua scripts
 * handle. Byte 0 picks the mode (mod 3), the rest is its input:
 *   0  spec JSON -> queue_pack_envelope -> entry_check_delayed ->
 *      envelope_decode must give back the same envelope (the retry round trip);
 *   1  arbitrary bytes as a devsys:{Q}:delayed member: what entry_check_delayed
 *      accepts, msgpack-c must read as the same strings, and the envelope an
 *      agent decodes from it must survive a second round trip;
 *   2  a RESP reply (one entry, as XRANGE of a dead-letter stream returns it)
 *      read by hiredis, decoded by the one stream-entry decoder
 *      (queue_decode_entries) and turned into the JSON the manager shows and
 *      replays from. */
#include <hiredis/hiredis.h>
#include <hiredis/read.h>
#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "entry_check.h"
#include "envelope.h"
#include "queue.h"
#include "queue_internal.h"
#include "spec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* msgpack-c, a second decoder, must read an accepted member as the same
 * strings. Only run on accepted input: msgpack-c trusts declared lengths. */
static void same_in_msgpack_c(const char *buf, size_t len, const envelope_field_t *f, size_t nf)
{
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    if (msgpack_unpack_next(&u, buf, len, &off) != MSGPACK_UNPACK_SUCCESS || off != len ||
        u.data.type != MSGPACK_OBJECT_ARRAY || u.data.via.array.size != 2 * nf)
        abort();
    for (size_t i = 0; i < 2 * nf; i++) {
        const msgpack_object *o = &u.data.via.array.ptr[i];
        const char *s = i % 2 ? f[i / 2].val : f[i / 2].name;
        size_t n = i % 2 ? f[i / 2].val_len : f[i / 2].name_len;
        const char *ptr = o->type == MSGPACK_OBJECT_STR ? o->via.str.ptr
                          : o->type == MSGPACK_OBJECT_BIN ? o->via.bin.ptr : NULL;
        size_t size = o->type == MSGPACK_OBJECT_STR ? o->via.str.size : o->via.bin.size;
        if (!ptr && n) /* an empty string may come back with a NULL pointer */
            abort();
        if ((o->type != MSGPACK_OBJECT_STR && o->type != MSGPACK_OBJECT_BIN) || size != n ||
            (n && memcmp(ptr, s, n) != 0))
            abort();
    }
    msgpack_unpacked_destroy(&u);
}

/* Packs env as a delayed member and checks that it decodes to env again. */
static void round_trip(const envelope_t *env)
{
    size_t len, nf;
    char *packed = queue_pack_envelope(env->id, env->kind[0] ? env->kind : NULL, env->attempt, env->enqueued_at,
                                       env->spec, &len);
    if (!packed)
        return; /* too deep for msgpack: queue_retry refuses it the same way */
    envelope_field_t f[ENTRY_MAX_STRINGS / 2];
    char err[256];
    if (entry_check_delayed(packed, len, f, &nf, err, sizeof err) < 0)
        abort(); /* what we write, the promote script must accept */
    same_in_msgpack_c(packed, len, f, nf);
    envelope_t back;
    if (envelope_decode("fuzz", "1-1", f, nf, &back, err, sizeof err) < 0 || strcmp(back.id, env->id) != 0 ||
        back.attempt != env->attempt || back.enqueued_at != env->enqueued_at || back.hand_pushed ||
        (env->kind[0] && strcmp(back.kind, env->kind) != 0) || !json_equal(back.spec, env->spec))
        abort();
    envelope_clear(&back);
    free(packed);
}

static void fuzz_pack(const uint8_t *data, size_t size)
{
    char err[SPEC_ERR_MAX];
    spec_t *s = spec_parse((const char *)data, size, err, sizeof err);
    if (!s)
        return;
    envelope_t env = {.attempt = (long)(size % 1001), .enqueued_at = 1700000000000LL + (long long)size};
    envelope_derive_id("fuzz", "1-1", env.id);
    snprintf(env.kind, sizeof env.kind, "%s", s->kind);
    env.spec = s->json;
    round_trip(&env);
    spec_free(s);
}

static void fuzz_member(const uint8_t *data, size_t size)
{
    envelope_field_t f[ENTRY_MAX_STRINGS / 2];
    size_t nf;
    char err[256];
    if (entry_check_delayed((const char *)data, size, f, &nf, err, sizeof err) < 0) {
        if (err[0] == '\0' || nf != 0)
            abort();
        return;
    }
    same_in_msgpack_c((const char *)data, size, f, nf);
    envelope_t env;
    if (envelope_decode("fuzz", "1-1", f, nf, &env, err, sizeof err) == 0) {
        spec_t *s = spec_from_json(env.spec, err, sizeof err);
        if (s) /* an agent would run it: a retry of it must promote intact */
            round_trip(&env);
        spec_free(s);
    }
    envelope_clear(&env);
}

/* hiredis 0.14 allocates the array a "*N" header declares before reading it
 * (maxelements came in 1.0). Redis is trusted, so the reader is only a way to
 * build replies here: inputs declaring more than a few thousand are skipped. */
static int counts_small(const uint8_t *data, size_t size)
{
    for (size_t i = 0; i < size; i++) {
        if ((i == 0 || data[i - 1] == '\n') && (data[i] == '*' || data[i] == '$')) {
            unsigned long n = 0;
            for (size_t k = i + 1; k < size && data[k] >= '0' && data[k] <= '9' && n <= 4096; k++)
                n = n * 10 + (unsigned long)(data[k] - '0');
            if (n > 4096)
                return 0;
        }
    }
    return 1;
}

static void fuzz_dead_letter(const uint8_t *data, size_t size)
{
    if (!counts_small(data, size))
        return;
    redisReader *r = redisReaderCreate();
    redisReaderFeed(r, (const char *)data, size);
    void *reply = NULL;
    if (redisReaderGetReply(r, &reply) == REDIS_OK && reply) {
        redisReply *e = reply;
        /* the entry as one element of an XRANGE reply */
        redisReply *elements[1] = {e};
        redisReply range = {.type = REDIS_REPLY_ARRAY, .elements = 1, .element = elements};
        size_t n;
        queue_entry_t *decoded = queue_decode_entries(&range, NULL, &n);
        if (n > 1)
            abort();
        json_t *j = n ? entry_dlq_json(&decoded[0]) : NULL;
        if (j) {
            const char *k;
            json_t *v;
            json_object_foreach(j, k, v)
            {
                if (!json_is_string(v))
                    abort();
            }
            if (!json_is_string(json_object_get(j, "entry_id")))
                abort();
            char *text = json_dumps(j, JSON_COMPACT); /* what GET /v1/dlq/{Q}/{id} sends */
            if (!text)
                abort();
            free(text);
            json_decref(j);
        } else if (e->type == REDIS_REPLY_ARRAY && e->elements == 2 && e->element[0]->type == REDIS_REPLY_STRING &&
                   e->element[1]->type == REDIS_REPLY_ARRAY) {
            abort(); /* an entry-shaped reply must be read */
        }
        free(decoded);
        freeReplyObject(reply);
    }
    redisReaderFree(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    switch (data[0] % 3) {
    case 0:
        fuzz_pack(data + 1, size - 1);
        break;
    case 1:
        fuzz_member(data + 1, size - 1);
        break;
    default:
        fuzz_dead_letter(data + 1, size - 1);
        break;
    }
    return 0;
}

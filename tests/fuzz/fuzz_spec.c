/* fuzz_spec: libFuzzer target for spec_parse. A spec it accepts must survive
 * the trip to the stream: msgpack encode, decode, validate again. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kind.h"
#include "mpack.h"
#include "spec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[SPEC_ERR_MAX];
    spec_t *s = spec_parse((const char *)data, size, err, sizeof err);
    if (!s) {
        if (err[0] == '\0')
            abort();
        return 0;
    }
    if (!s->kind || !kind_find(s->kind) || !spec_queue_name_ok(s->queue))
        abort();
    for (size_t i = 0; i < s->argc; i++)
        if (!s->argv[i])
            abort();
    if (s->argv && s->argv[s->argc])
        abort();

    size_t len;
    char *mp = mpack_from_json(s->json, &len);
    if (!mp)
        abort();
    json_t *back = mpack_to_json(mp, len, err, sizeof err);
    if (!back || !json_equal(back, s->json))
        abort();
    spec_t *again = spec_from_json(back, err, sizeof err);
    if (!again || strcmp(again->queue, s->queue) != 0 || again->argc != s->argc)
        abort();
    spec_free(again);
    json_decref(back);
    free(mp);
    spec_free(s);
    return 0;
}

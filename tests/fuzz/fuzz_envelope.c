/* fuzz_envelope: libFuzzer target for envelope_decode. Input layout: byte 0 =
 * number of fields (up to 255, so the field limit is exercised), then per
 * field a 1-byte name length, the name, a 2-byte little-endian value length
 * and the value; lengths are clipped to what is left. An accepted entry must
 * re-encode and decode to the same envelope. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "uuid.h"
#include "spec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t take(size_t want, size_t *off, size_t size)
{
    size_t left = size - *off;
    return want < left ? want : left;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t nfields = data[0], off = 1;
    envelope_field_t *f = calloc(nfields ? nfields : 1, sizeof *f);
    for (size_t i = 0; i < nfields; i++) {
        size_t nl = off < size ? data[off++] : 0;
        nl = take(nl, &off, size);
        f[i].name = (const char *)data + off;
        f[i].name_len = nl;
        off += nl;
        size_t vl = 0;
        if (size - off >= 2) {
            vl = (size_t)data[off] | (size_t)data[off + 1] << 8;
            off += 2;
        }
        vl = take(vl, &off, size);
        f[i].val = (const char *)data + off;
        f[i].val_len = vl;
        off += vl;
    }

    char err[256];
    envelope_t env;
    int rc = envelope_decode("fuzz", "1700000000000-0", f, nfields, &env, err, sizeof err);
    if (!uuid_valid(env.id, strlen(env.id)))
        abort(); /* even a rejected entry has a usable id */
    if (rc < 0) {
        if (env.spec || err[0] == '\0')
            abort();
    } else {
        spec_t *s = spec_from_json(env.spec, err, sizeof err);
        if (s) {
            const char *argv[12];
            size_t argvlen[12];
            char *storage;
            if (envelope_encode(env.id, env.kind, env.attempt, env.enqueued_at, env.spec, argv,
                                argvlen, &storage) != 12)
                abort();
            envelope_field_t g[6];
            for (int i = 0; i < 6; i++)
                g[i] = (envelope_field_t){argv[2 * i], argvlen[2 * i], argv[2 * i + 1],
                                          argvlen[2 * i + 1]};
            envelope_t back;
            if (envelope_decode("other", "1-1", g, 6, &back, err, sizeof err) < 0 ||
                strcmp(back.id, env.id) != 0 || strcmp(back.kind, env.kind) != 0 ||
                back.attempt != env.attempt || back.enqueued_at != env.enqueued_at ||
                back.hand_pushed || !json_equal(back.spec, env.spec))
                abort();
            envelope_clear(&back);
            free(storage);
            spec_free(s);
        }
    }
    envelope_clear(&env);
    free(f);
    return 0;
}

/* fuzz_mpack: libFuzzer target for mpack_to_json. Beyond "no crash", checks
 * that whatever it accepts re-encodes and decodes to an equal value. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "mpack.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    json_t *j = mpack_to_json((const char *)data, size, err, sizeof err);
    if (!j) {
        if (err[0] == '\0')
            abort(); /* every rejection carries a message */
        return 0;
    }
    size_t len, bytes, items;
    char *mp = mpack_from_json(j, &len);
    if (!mp || mpack_measure(j, &bytes, &items) < 0 || bytes != len)
        abort();
    json_t *back = mpack_to_json(mp, len, err, sizeof err);
    if (!back || !json_equal(j, back))
        abort();
    json_decref(back);
    free(mp);
    json_decref(j);
    return 0;
}

/* mpack: JSON <-> msgpack for task specs, with a decoder that never trusts
 * the input. msgpack-c believes declared lengths (an 8-byte message can ask
 * for 256 GiB), so mpack_to_json walks the bytes itself first and checks
 * every declared string/array/map length against the bytes left and against
 * hard limits, before anything is allocated. No I/O. */
#ifndef DEVSYS_MPACK_H
#define DEVSYS_MPACK_H

#include <jansson.h>
#include <stddef.h>

#define MPACK_MAX_BYTES (1024 * 1024) /* = SPEC_MAX_BYTES */
#define MPACK_MAX_DEPTH 32
#define MPACK_MAX_ITEMS 100000        /* total values in one message */

/* Encode a JSON value as msgpack. Integers stay integers, reals become
 * float64, true/false/null map to their msgpack types. Returns a new buffer
 * (caller frees with free()) and its length in *len, or NULL if j is too deep. */
char *mpack_from_json(const json_t *j, size_t *len);

/* What mpack_from_json(j) would produce, without encoding: its size in bytes
 * and its number of values (every key, value and container counts). Returns
 * 0, or -1 if j is too deep. Lets a validator refuse, at the edge, a spec
 * whose msgpack form mpack_to_json would reject (float64 takes 9 bytes, so a
 * 1 MiB JSON text can need more than MPACK_MAX_BYTES). */
int mpack_measure(const json_t *j, size_t *bytes, size_t *items);

/* Decode exactly one msgpack value that fills buf[0..len). Map keys must be
 * strings; bin/ext types, trailing bytes, depth, item and size limits are
 * errors. So are strings or keys that are not UTF-8 or contain a NUL byte,
 * duplicate keys, NaN/Inf floats and uint64 values above INT64_MAX (none of
 * which a JSON spec can hold). Returns a new reference or NULL with a
 * readable message in err naming the offset, e.g.
 * "msgpack: string length 4294967295 at offset 0 exceeds the 3 bytes left". */
json_t *mpack_to_json(const char *buf, size_t len, char *err, size_t errlen);

#endif

/* envelope: the task envelope on devsys:{Q}:stream (proto version 1).
 * Fields: v, id (task UUID), kind, attempt, enqueued_at (ms), spec (msgpack map).
 * An entry pushed by hand carries only `spec` as JSON text; its task id is then
 * derived from the queue and entry id, so a redelivery is the same task. No I/O. */
#ifndef DEVSYS_ENVELOPE_H
#define DEVSYS_ENVELOPE_H

#include <jansson.h>
#include <stddef.h>

#define ENVELOPE_VERSION 1
#define ENVELOPE_MAX_FIELDS 6

typedef struct envelope {
    char id[37];              /* task UUID, lower-case canonical form */
    int hand_pushed;          /* 1 when the entry had no id (id derived) */
    long attempt;             /* attempt recorded by the publisher (0 if absent) */
    long long enqueued_at;    /* ms since epoch (0 if absent) */
    char kind[64];            /* from the field, else from the spec, else "" */
    json_t *spec;             /* decoded spec object (owned), NULL on error */
} envelope_t;

/* One stream field (name/value as raw bytes, as XREADGROUP returns them). */
typedef struct envelope_field {
    const char *name;
    size_t name_len;
    const char *val;
    size_t val_len;
} envelope_field_t;

/* Decode the fields of stream entry `entry_id` read from queue `queue`.
 * Always fills out->id (derived from queue + entry id when the entry has no
 * valid id) and whatever else it could read, so that even a rejected entry can
 * be recorded against a stable task id. Returns 0, or -1 with a readable reason
 * in err (e.g. "spec: invalid JSON at line 1 column 9: ..."); out->spec is then NULL.
 * The spec is only decoded here (JSON or msgpack), not validated: run
 * spec_from_json on out->spec. Release with envelope_clear.
 * Unknown fields are ignored (forward compatible), but an entry may have at
 * most 64 fields, names up to 256 bytes and values up to SPEC_MAX_BYTES;
 * a repeated known field is an error. */
int envelope_decode(const char *queue, const char *entry_id, const envelope_field_t *fields,
                    size_t nfields, envelope_t *out, char *err, size_t errlen);
void envelope_clear(envelope_t *env);

/* Encode an envelope as XADD field/value pairs: fills names/vals/lens for
 * ENVELOPE_MAX_FIELDS pairs (12 strings) and returns the number of strings
 * (12). The strings live in *storage, which the caller frees with free().
 * kind NULL means spec["kind"]. Returns -1 (storage NULL) when the spec is
 * nested deeper than MPACK_MAX_DEPTH. argv/argvlen have room for 12. */
int envelope_encode(const char *id, const char *kind, long attempt, long long enqueued_at,
                    const json_t *spec, const char **argv, size_t *argvlen, char **storage);

/* Derive a task UUID from queue + stream entry id (deterministic, version 8). */
void envelope_derive_id(const char *queue, const char *entry_id, char out[37]);

#endif

/* entry_check: the Redis entry formats that Lua scripts handle, checked in C.
 * A member of devsys:{Q}:delayed is what queue_retry stores and the promote
 * script unpacks (cmsgpack) and hands to XADD; a dead letter is what the
 * bury script writes and the manager reads back for show and replay. */
#ifndef DEVSYS_ENTRY_CHECK_H
#define DEVSYS_ENTRY_CHECK_H

#include <jansson.h>
#include <stddef.h>

#include "envelope.h"
#include "queue.h"

/* Strings in one delayed member: 32 field/value pairs, as the promote script
 * in queue.c allows (an envelope has 6). */
#define ENTRY_MAX_STRINGS 64

/* Checks a delayed member the way the promote script must before its XADD,
 * and documents those rules (keep the two in step): exactly one msgpack array
 * filling buf (no trailing bytes), of an even number from 2 to
 * ENTRY_MAX_STRINGS of strings (msgpack str or bin, both Lua strings; a
 * number, nil, boolean or table would make XADD fail or be converted), with
 * an "id" and a "spec" field, as promote_lua in queue.c checks. Every
 * declared length is checked against the bytes left. On success fills
 * fields[0..*nfields) (name/value pointing into buf; fields has room for
 * ENTRY_MAX_STRINGS / 2) and returns 0; else -1 with a reason in err,
 * e.g. "delayed member: 3 strings, expected an even number". */
int entry_check_delayed(const char *buf, size_t len, envelope_field_t *fields, size_t *nfields, char *err,
                        size_t errlen);

/* A dead letter (an entry of devsys:{Q}:dlq as queue_dlq_range decodes it)
 * as {"entry_id": id, f1: v1, ...}: values as strings (invalid UTF-8 and NUL
 * replaced, as redis-cli shows them), a field named "entry_id" skipped.
 * New reference; NULL for a deleted entry (no fields). */
json_t *entry_dlq_json(const queue_entry_t *e);

#endif

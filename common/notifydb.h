/* notifydb: the statements of notifications (migrations/012_notifications.sql):
 * destinations, the events each destination sees, and the flush that groups
 * pending events into deliveries (notify tasks, inserted by the SQL function
 * notify_flush in the same transaction that marks their events queued).
 * Results are read by column name (taskdb_col). */
#ifndef DEVSYS_NOTIFYDB_H
#define DEVSYS_NOTIFYDB_H

#include "pgc.h"

/* The event types a destination may subscribe to, NULL-terminated. */
extern const char *const notifydb_event_types[];
int notifydb_event_type_ok(const char *type);

/* Create or replace a destination from dest_json, an object with every
 * column of notify_destinations the API sets (name, url, events, format,
 * secret_ref, rate_per_s, burst, group_by, group_wait_s, group_interval_s,
 * repeat_interval_s, max_listed, max_attempts, retry_initial_s, retry_max_s,
 * timeout_s). Result: created (t/f), destination (JSON text). */
void notifydb_dest_put(pgc_t *pg, const char *dest_json, pgc_result_fn *fn, void *arg);
/* Result: destination (JSON text), one row each, by name. */
void notifydb_dest_list(pgc_t *pg, pgc_result_fn *fn, void *arg);
/* Deletes a destination with its events' rows. Result: no row when absent;
 * else name, pending (events it still had pending: dropped with it). */
void notifydb_dest_delete(pgc_t *pg, const char *name, pgc_result_fn *fn, void *arg);

/* Events as destinations see them, newest first: destination and state may
 * be NULL (all); after: an event id cursor (NULL: from the newest); limit as
 * text. Result, one row: answer, the JSON text {"events": [{"event_id",
 * "type", "at", "subject", "queue", "data", "destination", "state",
 * "delivery": {"id", "events", "state", "error"} or null}], "counts":
 * {state: n} (of the destination, or of all)}. Only the events in the scope
 * of queues and apps (PostgreSQL text array literals, NULL: all;
 * devsys_event_in_scope), in the list and the counts. */
void notifydb_events(pgc_t *pg, const char *destination, const char *state, const char *after,
                     const char *limit, const char *queues, const char *apps, pgc_result_fn *fn, void *arg);

/* One pass of grouping (see notify_flush): batch = events per delivery at
 * most, keep_s = how long settled events are kept (both as text). Result:
 * the notify tasks it inserted: id, queue, kind, attempt, spec (JSON text). */
void notifydb_flush(pgc_t *pg, const char *batch, const char *keep_s, pgc_result_fn *fn, void *arg);

#endif

/* retention: the manager's job that keeps `tasks` small. Finished tasks move
 * to the history tables after their state's period, history days older than
 * the keep are dropped, and old audit rows are deleted (migrations/003_history.sql). */
#ifndef DEVSYS_RETENTION_H
#define DEVSYS_RETENTION_H

struct event_base;
typedef struct retention retention_t;

/* Reads its settings (DEVSYS_RETENTION_*, DEVSYS_HISTORY_KEEP_DAYS; README)
 * and opens its own PostgreSQL connection to db_url (copied), so a batch
 * never waits in line with API queries. base must outlive it. Returns NULL
 * when DEVSYS_RETENTION_S is 0 (off) or db_url does not parse. */
retention_t *retention_new(struct event_base *base, const char *db_url);
void retention_free(retention_t *r);

#endif

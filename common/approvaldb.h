/* approvaldb: the approval gates of pipeline steps in PostgreSQL
 * (migrations/014_pipeline_gates.sql): decide one, list them. A decision
 * advances its pipeline in the same statement; the caller publishes what it
 * created (pipelinedb_publish). */
#ifndef DEVSYS_APPROVALDB_H
#define DEVSYS_APPROVALDB_H

#include "pgc.h"

/* verdict "approved" | "rejected" on approval id by actor, whose role
 * ("viewer" | "operator" | "admin") must be at least the approval's.
 * comment may be NULL. Result: one row, result: NULL when there is no such
 * approval, else JSON {"id", "pipeline", "step", "role", "state" (after),
 * "decided" (this call decided it), "refused" (the role is too low),
 * "created" (tasks)}. */
void approvaldb_decide(pgc_t *pg, const char *id, const char *verdict, const char *actor, const char *role,
                       const char *comment, pgc_result_fn *fn, void *arg);

/* Approvals with their pipeline's name, as JSON rows (column json): state
 * "pending" (oldest deadline first) or "all" (newest first), at most limit;
 * with queues or apps (PostgreSQL text[] literals, NULL: any) those whose
 * gated step's nodes are all in them. */
void approvaldb_list(pgc_t *pg, const char *state, const char *limit, const char *queues, const char *apps,
                     pgc_result_fn *fn, void *arg);

#endif

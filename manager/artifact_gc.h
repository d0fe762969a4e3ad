/* artifact_gc: the artifact store's garbage collection. Every
 * DEVSYS_ARTIFACT_GC_S the manager sweeps its store (one aa/ directory per
 * step) and removes each file older than DEVSYS_ARTIFACT_RETENTION_S (age
 * from its last put) that no task referenced within that retention
 * (artifact_refs, migrations/019_scope_artifacts.sql), then deletes the
 * references older than it. */
#ifndef DEVSYS_ARTIFACT_GC_H
#define DEVSYS_ARTIFACT_GC_H

#include "artifact_store.h"
#include "pgc.h"

#define AGC_RETENTION_DEFAULT (14.0 * 86400)
#define AGC_PERIOD_DEFAULT 600.0
#define AGC_BATCH 512 /* files one step looks up and may remove */

typedef struct agc agc_t;

struct event_base;

/* Reads DEVSYS_ARTIFACT_GC_S (600; 0: off) and DEVSYS_ARTIFACT_RETENTION_S
 * (14 days, at least 600 s). NULL when off. store and pg must outlive it. */
agc_t *agc_new(struct event_base *base, pgc_t *pg, astore_t *store);
/* Stops it; a step waiting for PostgreSQL finds it closing and stops. */
void agc_free(agc_t *g);

#endif

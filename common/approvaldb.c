/* approvaldb: the statements on the approvals table (see approvaldb.h); the
 * decisions themselves are SQL (devsys_approval_decide), so one statement
 * records the decision and creates the approved step's tasks. */
#include "approvaldb.h"

#include <string.h>

void approvaldb_decide(pgc_t *pg, const char *id, const char *verdict, const char *actor, const char *role,
                       const char *comment, pgc_result_fn *fn, void *arg)
{
    const char *p[5] = {id, verdict, actor, role, comment};
    pgc_query(pg, "SELECT devsys_approval_decide($1::uuid, $2, $3, $4, $5)::text AS result", 5, p, fn, arg);
}

/* An approval a token scoped to $2 queues and $3 apps sees: every node of the
 * step it gates is in the scope. */
#define APPROVAL_IN_SCOPE                                                                                  \
    " AND (($2::text[] IS NULL AND $3::text[] IS NULL) OR NOT EXISTS (SELECT 1 FROM pipeline_nodes n"    \
    "  WHERE n.pipeline_id = a.pipeline_id AND n.step = a.step AND NOT devsys_spec_in_scope(n.spec ||"   \
    "  jsonb_build_object('queue', n.queue), $2::text[], $3::text[])))"

void approvaldb_list(pgc_t *pg, const char *state, const char *limit, const char *queues, const char *apps,
                     pgc_result_fn *fn, void *arg)
{
    const char *p[3] = {limit, queues, apps};
    pgc_query(pg,
              strcmp(state, "pending") == 0
                  ? "SELECT jsonb_build_object('id', a.id, 'pipeline', a.pipeline_id, 'name', p.name, 'step', a.step,"
                    "  'run', a.run, 'role', a.role, 'state', 'pending', 'requested_at', a.requested_at,"
                    "  'deadline', a.deadline)::text AS json"
                    " FROM approvals a JOIN pipelines p ON p.id = a.pipeline_id WHERE a.decision IS NULL"
                    APPROVAL_IN_SCOPE " ORDER BY a.deadline, a.id LIMIT $1::int"
                  : "SELECT jsonb_build_object('id', a.id, 'pipeline', a.pipeline_id, 'name', p.name, 'step', a.step,"
                    "  'run', a.run, 'role', a.role, 'state', coalesce(a.decision, 'pending'),"
                    "  'requested_at', a.requested_at, 'deadline', a.deadline, 'decided_by', a.decided_by,"
                    "  'decided_at', a.decided_at, 'comment', a.comment)::text AS json"
                    " FROM approvals a JOIN pipelines p ON p.id = a.pipeline_id WHERE true" APPROVAL_IN_SCOPE
                    " ORDER BY a.requested_at DESC, a.id DESC LIMIT $1::int",
              3, p, fn, arg);
}

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

void approvaldb_list(pgc_t *pg, const char *state, const char *limit, pgc_result_fn *fn, void *arg)
{
    const char *p[2] = {limit, NULL};
    pgc_query(pg,
              strcmp(state, "pending") == 0
                  ? "SELECT jsonb_build_object('id', a.id, 'pipeline', a.pipeline_id, 'name', p.name, 'step', a.step,"
                    "  'run', a.run, 'role', a.role, 'state', 'pending', 'requested_at', a.requested_at,"
                    "  'deadline', a.deadline)::text AS json"
                    " FROM approvals a JOIN pipelines p ON p.id = a.pipeline_id WHERE a.decision IS NULL"
                    " ORDER BY a.deadline, a.id LIMIT $1::int"
                  : "SELECT jsonb_build_object('id', a.id, 'pipeline', a.pipeline_id, 'name', p.name, 'step', a.step,"
                    "  'run', a.run, 'role', a.role, 'state', coalesce(a.decision, 'pending'),"
                    "  'requested_at', a.requested_at, 'deadline', a.deadline, 'decided_by', a.decided_by,"
                    "  'decided_at', a.decided_at, 'comment', a.comment)::text AS json"
                    " FROM approvals a JOIN pipelines p ON p.id = a.pipeline_id"
                    " ORDER BY a.requested_at DESC, a.id DESC LIMIT $1::int",
              1, p, fn, arg);
}

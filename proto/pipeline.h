/* pipeline: parse and validate a pipeline document (a DAG of steps) and
 * expand it into nodes, each a validated task spec. No I/O. The format is in
 * README "Pipelines"; messages name the field, e.g.
 *   "steps.deploy.needs[0]: unknown step \"tset\"". */
#ifndef DEVSYS_PIPELINE_H
#define DEVSYS_PIPELINE_H

#include <jansson.h>
#include <stddef.h>

#include "spec.h"

#define PIPELINE_STEPS_MAX 100     /* steps of one pipeline */
#define PIPELINE_NODES_MAX 1000    /* nodes (tasks of one run) of one pipeline */
#define PIPELINE_NAME_MAX 128      /* bytes of "name" */
#define PIPELINE_MATRIX_VARS_MAX 8 /* variables of one step's matrix */
#define PIPELINE_VALUE_MAX 256     /* bytes of one matrix value */
#define PIPELINE_ERR_MAX 320
#define PIPELINE_GROUP_MAX 128     /* bytes of concurrency.group */
#define PIPELINE_APPROVAL_TIMEOUT_DEFAULT 86400 /* s: an approval without timeout_s */
#define PIPELINE_APPROVAL_TIMEOUT_MAX (30 * 86400)

enum pipeline_if { PIPELINE_IF_SUCCESS, PIPELINE_IF_FAILURE, PIPELINE_IF_ALWAYS };

/* One task of a step: node i of step s is named "s" (a step of one node) or
 * "s[i]". spec is the step's spec with env DEVSYS_SHARD/DEVSYS_SHARDS (shards)
 * and DEVSYS_MATRIX_<VAR> (matrix) and "pipeline" {"id","name","step",
 * "index"} filled in, validated by spec_from_json; kind, queue, priority and
 * max_attempts are read from it. */
typedef struct pipeline_node {
    char name[96];
    int index;
    json_t *spec;
    char kind[64];
    char queue[72];
    int priority;
    int max_attempts;
} pipeline_node_t;

/* Who may approve a step with "approval" (PIPELINE_APPROVAL_NONE: no gate). */
enum pipeline_approval { PIPELINE_APPROVAL_NONE, PIPELINE_APPROVAL_OPERATOR, PIPELINE_APPROVAL_ADMIN };

typedef struct pipeline_step {
    char name[72];
    enum pipeline_if cond;
    enum pipeline_approval approval; /* "approval": {"role", "timeout_s"} */
    int approval_timeout_s;
    char group[PIPELINE_GROUP_MAX + 1]; /* "concurrency": {"group"}; "" for none */
    int cancel_in_progress;             /* "concurrency": {"cancel_in_progress"} */
    size_t nneeds;
    int *needs;               /* indices into pipeline_t.steps */
    size_t nnodes;
    pipeline_node_t *nodes;
} pipeline_step_t;

/* A validated pipeline; steps in a topological order (a step after all it
 * needs; ties in document order). */
typedef struct pipeline {
    json_t *doc;              /* the document as given */
    char name[PIPELINE_NAME_MAX + 1];
    char group[PIPELINE_GROUP_MAX + 1]; /* "concurrency": {"group"}; "" for none */
    int cancel_in_progress;             /* "concurrency": {"cancel_in_progress"} */
    size_t nsteps;
    pipeline_step_t *steps;
    size_t nnodes;
} pipeline_t;

/* Parse JSON text (len bytes) and validate it (pipeline_from_json). */
pipeline_t *pipeline_parse(const char *text, size_t len, const char *id, char *err, size_t errlen);

/* Validate doc {"name": str, "concurrency": {"group": str,
 * "cancel_in_progress": bool}, "steps": {"<step>": {"needs": [step...], "if":
 * "success"|"failure"|"always", "matrix": {"<VAR>": [values]}, "shards": N,
 * "approval": {"role": "operator"|"admin", "timeout_s": N}, "concurrency":
 * {"group": str, "cancel_in_progress": bool}, "spec": <task
 * spec>}}} and expand it; id (a UUID) goes into each node's
 * "pipeline". Takes a new reference to doc. Returns the pipeline (caller
 * frees with pipeline_free) or NULL with a message in err: unknown fields,
 * unknown or repeated needs, a cycle (named: "steps: cycle a -> b -> a"),
 * more than PIPELINE_STEPS_MAX steps, SPEC_FANOUT_MAX nodes per step,
 * PIPELINE_NODES_MAX nodes, SPEC_INPUTS_MAX inputs of one step. */
pipeline_t *pipeline_from_json(json_t *doc, const char *id, char *err, size_t errlen);

/* The pipeline a task spec with "next" stands for: step "main" (the spec
 * without next), then "next-1", "next-2", ... (next flattened in order, each
 * entry's own next after it), each needing the one before. Named after the
 * spec's name, or "next". Returns NULL with a message when spec has no next
 * or the result is invalid. */
pipeline_t *pipeline_from_next(const json_t *spec, const char *id, char *err, size_t errlen);

void pipeline_free(pipeline_t *p);

/* "operator", "admin" (NULL for none). */
const char *pipeline_approval_name(enum pipeline_approval a);

/* "success", "failure", "always". */
const char *pipeline_if_name(enum pipeline_if c);

#endif

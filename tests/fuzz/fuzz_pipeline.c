/* fuzz_pipeline: libFuzzer target for pipeline_parse. A pipeline it accepts
 * keeps every bound, lists its steps after what they need, and each node's
 * spec is one spec_from_json accepts again, carrying its node's identity;
 * parsing the document again gives the same pipeline. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ID "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"

static void check_node(const pipeline_t *p, const pipeline_step_t *st, size_t j)
{
    const pipeline_node_t *nd = &st->nodes[j];
    char want[96];
    if (st->nnodes == 1)
        snprintf(want, sizeof want, "%s", st->name);
    else
        snprintf(want, sizeof want, "%s[%zu]", st->name, j);
    if (nd->index != (int)j || strcmp(nd->name, want) != 0)
        abort();
    const json_t *pl = json_object_get(nd->spec, "pipeline");
    if (strcmp(json_string_value(json_object_get(pl, "id")), ID) != 0 ||
        strcmp(json_string_value(json_object_get(pl, "step")), st->name) != 0 ||
        strcmp(json_string_value(json_object_get(pl, "name")), p->name) != 0 ||
        json_integer_value(json_object_get(pl, "index")) != (json_int_t)j || json_object_get(nd->spec, "next") ||
        json_object_get(nd->spec, "inputs"))
        abort();
    char err[SPEC_ERR_MAX];
    spec_t *s = spec_from_json(nd->spec, err, sizeof err);
    if (!s || strcmp(s->kind, nd->kind) != 0 || strcmp(s->queue, nd->queue) != 0 ||
        s->retry.max_attempts != nd->max_attempts || s->priority != nd->priority)
        abort();
    spec_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[PIPELINE_ERR_MAX];
    err[0] = '\0';
    pipeline_t *p = pipeline_parse((const char *)data, size, ID, err, sizeof err);
    if (!p) {
        if (err[0] == '\0' || strlen(err) >= sizeof err)
            abort();
        return 0;
    }
    if (p->nsteps < 1 || p->nsteps > PIPELINE_STEPS_MAX || p->nnodes > PIPELINE_NODES_MAX || !p->name[0])
        abort();
    size_t total = 0;
    for (size_t i = 0; i < p->nsteps; i++) {
        const pipeline_step_t *st = &p->steps[i];
        if (st->nnodes < 1 || st->nnodes > SPEC_FANOUT_MAX)
            abort();
        size_t inputs = 0;
        for (size_t m = 0; m < st->nneeds; m++) {
            if (st->needs[m] < 0 || (size_t)st->needs[m] >= i) /* needs come first */
                abort();
            inputs += p->steps[st->needs[m]].nnodes;
        }
        if (inputs > SPEC_INPUTS_MAX)
            abort();
        for (size_t k = 0; k < i; k++)
            if (strcmp(p->steps[k].name, st->name) == 0)
                abort();
        for (size_t j = 0; j < st->nnodes; j++)
            check_node(p, st, j);
        total += st->nnodes;
    }
    if (total != p->nnodes)
        abort();
    /* the document as accepted parses to the same pipeline */
    char *again_text = json_dumps(p->doc, JSON_COMPACT);
    pipeline_t *again = again_text ? pipeline_parse(again_text, strlen(again_text), ID, err, sizeof err) : NULL;
    if (!again || again->nsteps != p->nsteps || again->nnodes != p->nnodes)
        abort();
    for (size_t i = 0; i < p->nsteps; i++)
        if (strcmp(again->steps[i].name, p->steps[i].name) != 0 || again->steps[i].cond != p->steps[i].cond)
            abort();
    pipeline_free(again);
    free(again_text);
    pipeline_free(p);
    return 0;
}

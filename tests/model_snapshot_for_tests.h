/* Every parameter and state value, and the counters, of a model, in graph order: what tests
 * compare bit for bit between two runs. Include after <cmocka.h>. */
#ifndef NABLA_TESTS_MODEL_SNAPSHOT_FOR_TESTS_H
#define NABLA_TESTS_MODEL_SNAPSHOT_FOR_TESTS_H

#include <string.h>

#include "nabla.h"

/* Writes at most cap floats to out (fails the test beyond); returns how many. */
static inline size_t model_snapshot(const nb_model *m, float *out, size_t cap)
{
    size_t at = 0;
    for (int i = 0; i < nb_graph_named_count(m->graph); i++) {
        nb_named t = nb_graph_named(m->graph, i);
        if (t.kind == NB_KIND_COUNTER) {
            assert_true(at < cap);
            out[at++] = (float)*t.counter;
            continue;
        }
        nb_tensor v = nb_node_value(t.node);
        size_t n = nb_tensor_numel(&v);
        assert_true(at + n <= cap);
        memcpy(out + at, v.data, n * sizeof *out);
        at += n;
    }
    return at;
}

#endif

/* A model spec for unit tests: inputs, classes, hidden widths as --layers writes them ("16,8"),
 * the activation, its leaky slope and the batch-norm flag. Include after <cmocka.h>. */
#ifndef NABLA_TESTS_MODEL_SPEC_FOR_TESTS_H
#define NABLA_TESTS_MODEL_SPEC_FOR_TESTS_H

#include <string.h>

#include "nabla.h"

static inline nb_model_spec make_spec(int inputs, int classes, const char *layers,
                                      nb_activation act, float slope, int batchnorm)
{
    nb_model_spec s;
    memset(&s, 0, sizeof s);
    s.inputs = inputs;
    s.classes = classes;
    nb_error err;
    assert_int_equal(nb_parse_layers(layers, &s, &err), 0);
    s.activation = act;
    s.leaky_slope = slope;
    s.batchnorm = batchnorm;
    return s;
}

#endif

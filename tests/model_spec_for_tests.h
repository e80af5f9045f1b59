/* Model specs for unit tests, the MLP way (nb_mlp: inputs, classes, hidden widths, activation,
 * leaky slope, batch norm) or from --layers widths. Include after <cmocka.h>. */
#ifndef NABLA_TESTS_MODEL_SPEC_FOR_TESTS_H
#define NABLA_TESTS_MODEL_SPEC_FOR_TESTS_H

#include <string.h>

#include "nabla.h"

static inline nb_model_spec mlp_spec(nb_mlp mlp)
{
    nb_model_spec s;
    nb_error err;
    if (nb_model_spec_mlp(&s, &mlp, &err) != 0)
        fail_msg("nb_model_spec_mlp: %s", err.msg);
    return s;
}

static inline nb_model_spec make_spec(int inputs, int classes, const char *layers,
                                      nb_activation act, float slope, int batchnorm)
{
    nb_mlp m;
    memset(&m, 0, sizeof m);
    m.inputs = inputs;
    m.classes = classes;
    nb_error err;
    assert_int_equal(nb_parse_layers(layers, &m, &err), 0);
    m.activation = act;
    m.leaky_slope = slope;
    m.batchnorm = batchnorm;
    return mlp_spec(m);
}

#endif

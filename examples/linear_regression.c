/* Build a graph op by op and write the training loop by hand: fit y = 3x - 2 with one dense
 * unit, mean squared error and plain gradient descent. Gradients come from nb_graph_backward. */
#include <math.h>
#include <stdio.h>

#include "nabla.h"

int main(void)
{
    enum { N = 64 };
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, 1), *target = nb_input(g, 1);
    int wshape[2] = {1, 1}, bshape[1] = {1};
    nb_node *w = nb_param(g, "w", 2, wshape), *b = nb_param(g, "b", 1, bshape);
    nb_node *loss = nb_mse(g, nb_bias_add(g, nb_matmul(g, x, w), b), target);
    nb_error err;
    if (nb_graph_compile(g, N, &err) != 0)
        return fprintf(stderr, "%s\n", err.msg), 1;

    float *xs = nb_node_value(x).data, *ys = nb_node_value(target).data;
    for (int i = 0; i < N; i++) {
        xs[i] = (float)i / N;
        ys[i] = 3.0f * xs[i] - 2.0f;
    }
    nb_optim_config sgd = {.kind = NB_SGD};
    nb_optimizer opt;
    size_t n;
    float *params = nb_graph_params(g, &n), *grads = nb_graph_grads(g, NULL);
    if (nb_optimizer_init(&opt, &sgd, n, &err) != 0)
        return fprintf(stderr, "%s\n", err.msg), 1;
    for (int step = 0; step < 2000; step++) {
        nb_graph_forward(g, N);
        nb_graph_backward(g, loss);
        nb_optimizer_step(&opt, params, grads, 0.5f);
    }
    float wv = nb_node_value(w).data[0], bv = nb_node_value(b).data[0];
    printf("w = %.4f, b = %.4f, loss = %.2e\n", wv, bv, nb_node_scalar(loss));
    nb_optimizer_free(&opt);
    nb_graph_free(g);
    return fabsf(wv - 3.0f) < 1e-3f && fabsf(bv + 2.0f) < 1e-3f ? 0 : 1;
}

/* Tests for src/train/optim.c: values worked by hand, a double-precision textbook reference run over
 * several steps, and weights produced by torch.optim for the PyTorch equivalences of DESIGN.md. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "nabla.h"

/* |got - want| <= rel * |want| */
static void assert_rel(double got, double want, double rel)
{
    double err = fabs(got - want), lim = rel * fabs(want);
    if (!(err <= lim))
        fail_msg("got %.9g, want %.9g (error %.3g > %.3g)", got, want, err, lim);
}

static nb_optim_config config(nb_optimizer_kind kind, float beta, float beta2, float eps,
                              float wd)
{
    nb_optim_config c;
    memset(&c, 0, sizeof c);
    c.kind = kind;
    c.beta = beta;
    c.beta2 = beta2;
    c.eps = eps;
    c.weight_decay = wd;
    return c;
}

static void init_ok(nb_optimizer *o, const nb_optim_config *c, size_t n)
{
    nb_error err = {{0}};
    if (nb_optimizer_init(o, c, n, &err) != 0)
        fail_msg("nb_optimizer_init failed: %s", err.msg);
}

/* ---- names ---------------------------------------------------------------------------- */

static void test_names_round_trip(void **state)
{
    (void)state;
    const char *names[] = {"sgd", "momentum", "nesterov", "rmsprop", "adam", "adamw"};
    const nb_optimizer_kind kinds[] = {NB_SGD,     NB_MOMENTUM, NB_NESTEROV,
                                       NB_RMSPROP, NB_ADAM,     NB_ADAMW};
    for (int i = 0; i < 6; i++) {
        nb_optimizer_kind k = NB_SGD;
        assert_string_equal(nb_optimizer_name(kinds[i]), names[i]);
        assert_int_equal(nb_optimizer_parse(names[i], &k), 0);
        assert_int_equal(k, kinds[i]);
    }
}

static void test_parse_rejects_unknown(void **state)
{
    (void)state;
    nb_optimizer_kind k = NB_ADAM;
    assert_int_equal(nb_optimizer_parse("Adam", &k), -1);
    assert_int_equal(nb_optimizer_parse("", &k), -1);
    assert_int_equal(nb_optimizer_parse("adam ", &k), -1);
    assert_int_equal(nb_optimizer_parse(NULL, &k), -1);
    assert_int_equal(k, NB_ADAM); /* untouched on failure */
    assert_string_equal(nb_optimizer_name((nb_optimizer_kind)42), "unknown");
}

/* ---- init and free -------------------------------------------------------------------- */

static void test_init_allocates_only_needed_state(void **state)
{
    (void)state;
    struct {
        nb_optimizer_kind kind;
        int has_v, has_s;
    } cases[] = {
        {NB_SGD, 0, 0},     {NB_MOMENTUM, 1, 0}, {NB_NESTEROV, 1, 0},
        {NB_RMSPROP, 0, 1}, {NB_ADAM, 1, 1},     {NB_ADAMW, 1, 1},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        nb_optim_config cfg = config(cases[c].kind, 0.9f, 0.999f, 1e-8f, 0.0f);
        nb_optimizer o;
        init_ok(&o, &cfg, 11);
        assert_int_equal(o.n, 11);
        assert_int_equal(o.t, 0);
        assert_int_equal(o.v != NULL, cases[c].has_v);
        assert_int_equal(o.s != NULL, cases[c].has_s);
        for (int i = 0; i < 11; i++) {
            if (o.v)
                assert_true(o.v[i] == 0.0f);
            if (o.s)
                assert_true(o.s[i] == 0.0f);
        }
        nb_optimizer_free(&o);
        assert_null(o.v);
        assert_null(o.s);
        nb_optimizer_free(&o); /* twice is harmless */
    }
}

static void expect_init_error(nb_optim_config c, const char *fragment)
{
    nb_optimizer o;
    nb_error err = {{0}};
    assert_int_equal(nb_optimizer_init(&o, &c, 4, &err), -1);
    if (!strstr(err.msg, fragment))
        fail_msg("message \"%s\" does not mention \"%s\"", err.msg, fragment);
    assert_null(o.v); /* a failed init leaves nothing to free... */
    assert_null(o.s);
    nb_optimizer_free(&o); /* ...and freeing it anyway is safe */
}

static void test_init_rejects_bad_hyperparameters(void **state)
{
    (void)state;
    expect_init_error(config(NB_MOMENTUM, 1.0f, 0.0f, 0.0f, 0.0f), "beta");
    expect_init_error(config(NB_NESTEROV, -0.1f, 0.0f, 0.0f, 0.0f), "beta");
    expect_init_error(config(NB_ADAM, NAN, 0.999f, 1e-8f, 0.0f), "beta");
    expect_init_error(config(NB_ADAM, 0.9f, 1.0f, 1e-8f, 0.0f), "beta2");
    expect_init_error(config(NB_RMSPROP, 0.0f, -0.5f, 1e-8f, 0.0f), "beta2");
    expect_init_error(config(NB_RMSPROP, 0.0f, 0.9f, 0.0f, 0.0f), "eps");
    expect_init_error(config(NB_ADAMW, 0.9f, 0.999f, -1e-8f, 0.0f), "eps");
    expect_init_error(config(NB_ADAM, 0.9f, 0.999f, INFINITY, 0.0f), "eps");
    expect_init_error(config(NB_SGD, 0.0f, 0.0f, 0.0f, -0.01f), "weight decay");
    expect_init_error(config(NB_ADAMW, 0.9f, 0.999f, 1e-8f, NAN), "weight decay");
    expect_init_error(config((nb_optimizer_kind)17, 0.9f, 0.999f, 1e-8f, 0.0f), "unknown");

    /* eps and beta2 do not matter to momentum, beta does not matter to sgd/rmsprop. */
    nb_optimizer o;
    nb_optim_config c = config(NB_MOMENTUM, 0.0f, 7.0f, 0.0f, 0.0f);
    init_ok(&o, &c, 3);
    nb_optimizer_free(&o);
    c = config(NB_RMSPROP, 3.0f, 0.9f, 1e-8f, 0.0f);
    init_ok(&o, &c, 3);
    nb_optimizer_free(&o);
}

static void test_free_is_safe_on_zeroed_struct(void **state)
{
    (void)state;
    nb_optimizer o;
    memset(&o, 0, sizeof o);
    nb_optimizer_free(&o);
    nb_optimizer_free(NULL);
}

static void test_empty_parameter_buffer(void **state)
{
    (void)state;
    nb_optimizer o;
    nb_optim_config c = config(NB_ADAM, 0.9f, 0.999f, 1e-8f, 0.0f);
    init_ok(&o, &c, 0);
    float w = 5.0f, g = 1.0f;
    nb_optimizer_step(&o, &w, &g, 0.1f);
    assert_true(w == 5.0f);
    assert_int_equal(o.t, 1);
    nb_optimizer_free(&o);
}

/* ---- values worked by hand ------------------------------------------------------------- */

static void test_sgd_by_hand(void **state)
{
    (void)state;
    /* g' = 0.5 + 0.1*1 = 0.6, w = 1 - 0.1*0.6 = 0.94; second weight: g' = -2 + 0.1*(-3) = -2.3,
     * w = -3 + 0.23 = -2.77. */
    nb_optimizer o;
    nb_optim_config c = config(NB_SGD, 0.0f, 0.0f, 0.0f, 0.1f);
    init_ok(&o, &c, 2);
    float w[2] = {1.0f, -3.0f}, g[2] = {0.5f, -2.0f};
    nb_optimizer_step(&o, w, g, 0.1f);
    assert_rel(w[0], 0.94, 1e-6);
    assert_rel(w[1], -2.77, 1e-6);
    nb_optimizer_free(&o);
}

static void test_momentum_by_hand(void **state)
{
    (void)state;
    /* beta 0.9, lr 0.1, g = 1 each step, w starts at 0:
     * v1 = 0.1,  w1 = -0.01;  v2 = 0.09 + 0.1 = 0.19, w2 = -0.01 - 0.019 = -0.029;
     * v3 = 0.171 + 0.1 = 0.271, w3 = -0.029 - 0.0271 = -0.0561. */
    nb_optimizer o;
    nb_optim_config c = config(NB_MOMENTUM, 0.9f, 0.0f, 0.0f, 0.0f);
    init_ok(&o, &c, 1);
    float w = 0.0f, g = 1.0f;
    const double want_w[3] = {-0.01, -0.029, -0.0561}, want_v[3] = {0.1, 0.19, 0.271};
    for (int t = 0; t < 3; t++) {
        nb_optimizer_step(&o, &w, &g, 0.1f);
        assert_rel(w, want_w[t], 1e-6);
        assert_rel(o.v[0], want_v[t], 1e-6);
    }
    nb_optimizer_free(&o);

    /* With bias correction a constant gradient moves w by exactly lr*g per step:
     * v_t = (1 - 0.9^t)*g, divided by (1 - 0.9^t). */
    c.bias_correction = 1;
    init_ok(&o, &c, 1);
    w = 0.0f;
    for (int t = 1; t <= 5; t++) {
        nb_optimizer_step(&o, &w, &g, 0.1f);
        assert_rel(w, -0.1 * t, 1e-6);
    }
    nb_optimizer_free(&o);
}

static void test_nesterov_by_hand(void **state)
{
    (void)state;
    /* beta 0.9, lr 0.1, g = 1, w0 = 0: v1 = 0.1, w1 = -0.1*(0.1*1 + 0.9*0.1) = -0.019;
     * v2 = 0.19, w2 = -0.019 - 0.1*(0.1 + 0.171) = -0.0461. */
    nb_optimizer o;
    nb_optim_config c = config(NB_NESTEROV, 0.9f, 0.0f, 0.0f, 0.0f);
    init_ok(&o, &c, 1);
    float w = 0.0f, g = 1.0f;
    nb_optimizer_step(&o, &w, &g, 0.1f);
    assert_rel(w, -0.019, 1e-6);
    nb_optimizer_step(&o, &w, &g, 0.1f);
    assert_rel(w, -0.0461, 1e-6);
    nb_optimizer_free(&o);
}

static void test_rmsprop_by_hand(void **state)
{
    (void)state;
    /* beta2 0.75 (exact in binary), g = 2: s1 = 0.25*4 = 1, w -= 0.01*2/(1 + eps) = 0.02.
     * g = -2: s2 = 0.75*1 + 1 = 1.75, w -= 0.01*(-2)/sqrt(1.75), i.e. w += 0.0151186. */
    nb_optimizer o;
    nb_optim_config c = config(NB_RMSPROP, 0.0f, 0.75f, 1e-8f, 0.0f);
    init_ok(&o, &c, 1);
    float w = 1.0f, g = 2.0f;
    nb_optimizer_step(&o, &w, &g, 0.01f);
    assert_rel(o.s[0], 1.0, 1e-6);
    assert_rel(w, 0.98, 1e-6);
    g = -2.0f;
    nb_optimizer_step(&o, &w, &g, 0.01f);
    assert_rel(o.s[0], 1.75, 1e-6);
    assert_rel(w, 0.98 + 0.02 / sqrt(1.75), 1e-6);
    nb_optimizer_free(&o);

    /* eps sits outside the square root: with eps 1 and s1 = 1 the step is 0.01*2/(1 + 1) =
     * 0.01 (inside it would be 0.01*2/sqrt(2) = 0.01414). */
    c.eps = 1.0f;
    init_ok(&o, &c, 1);
    w = 1.0f;
    g = 2.0f;
    nb_optimizer_step(&o, &w, &g, 0.01f);
    assert_rel(w, 0.99, 1e-6);
    nb_optimizer_free(&o);
}

static void test_adam_first_step_is_lr_sign(void **state)
{
    (void)state;
    /* Step 1: mhat = g and shat = g^2 exactly, so w moves by lr*g/(|g| + eps), almost exactly
     * lr*sign(g) whatever the size of g. */
    nb_optimizer o;
    nb_optim_config c = config(NB_ADAM, 0.9f, 0.999f, 1e-8f, 0.0f);
    init_ok(&o, &c, 4);
    float w[4] = {1.0f, 1.0f, 1.0f, 1.0f}, g[4] = {0.5f, -3.0f, 1e-3f, -40.0f};
    nb_optimizer_step(&o, w, g, 0.001f);
    assert_rel(w[0], 0.999, 1e-6);
    assert_rel(w[1], 1.001, 1e-6);
    assert_rel(w[2], 1.0 - 0.001 * 1e-3 / (1e-3 + 1e-8), 1e-6); /* eps shows at |g| = 1e-3 */
    assert_rel(w[3], 1.001, 1e-6);
    nb_optimizer_free(&o);
}

static void test_adam_constant_gradient(void **state)
{
    (void)state;
    /* With a constant gradient the bias-corrected moments stay exactly g and g^2, so every
     * step moves w by lr*sign(g): after 20 steps of lr 0.01, w has moved by 0.2. */
    nb_optimizer o;
    nb_optim_config c = config(NB_ADAM, 0.9f, 0.999f, 1e-8f, 0.0f);
    init_ok(&o, &c, 2);
    float w[2] = {1.0f, -1.0f}, g[2] = {0.25f, -4.0f};
    for (int t = 0; t < 20; t++)
        nb_optimizer_step(&o, w, g, 0.01f);
    assert_rel(w[0], 0.8, 1e-5);
    assert_rel(w[1], -0.8, 1e-5);
    assert_int_equal(o.t, 20);
    nb_optimizer_free(&o);
}

static void test_adamw_by_hand(void **state)
{
    (void)state;
    /* Decoupled decay first: w = 2*(1 - 0.1*0.5) = 1.9, then the first Adam step moves it by
     * lr*sign(g) = 0.1: w = 1.8. Adam with the same weight decay as L2 instead sees
     * g' = 1 + 0.5*2 = 2 and still moves by lr*sign(g') only: w = 1.9. */
    nb_optimizer o;
    nb_optim_config c = config(NB_ADAMW, 0.9f, 0.999f, 1e-8f, 0.5f);
    init_ok(&o, &c, 1);
    float w = 2.0f, g = 1.0f;
    nb_optimizer_step(&o, &w, &g, 0.1f);
    assert_rel(w, 1.8, 1e-6);
    nb_optimizer_free(&o);

    c.kind = NB_ADAM;
    init_ok(&o, &c, 1);
    w = 2.0f;
    nb_optimizer_step(&o, &w, &g, 0.1f);
    assert_rel(w, 1.9, 1e-6);
    nb_optimizer_free(&o);
}

/* ---- a double-precision reference in textbook form ----------------------------------- */

#define REF_N 37
#define REF_STEPS 8

/* One step of the course's equations, element by element, in double. */
static void reference_step(const nb_optim_config *c, int n, double *w, const double *g,
                           double *v, double *s, int t, double lr)
{
    const double beta = c->beta, beta2 = c->beta2, eps = c->eps, wd = c->weight_decay;
    for (int i = 0; i < n; i++) {
        double gp = g[i] + wd * w[i];
        switch (c->kind) {
        case NB_SGD:
            w[i] = w[i] - lr * gp;
            break;
        case NB_MOMENTUM:
            v[i] = beta * v[i] + (1 - beta) * gp;
            if (c->bias_correction)
                w[i] = w[i] - lr * v[i] / (1 - pow(beta, t));
            else
                w[i] = w[i] - lr * v[i];
            break;
        case NB_NESTEROV:
            v[i] = beta * v[i] + (1 - beta) * gp;
            w[i] = w[i] - lr * ((1 - beta) * gp + beta * v[i]);
            break;
        case NB_RMSPROP:
            s[i] = beta2 * s[i] + (1 - beta2) * gp * gp;
            w[i] = w[i] - lr * gp / (sqrt(s[i]) + eps);
            break;
        case NB_ADAM:
        case NB_ADAMW: {
            if (c->kind == NB_ADAMW) {
                w[i] = w[i] - lr * wd * w[i];
                gp = g[i];
            }
            v[i] = beta * v[i] + (1 - beta) * gp;
            s[i] = beta2 * s[i] + (1 - beta2) * gp * gp;
            double mhat = v[i] / (1 - pow(beta, t));
            double shat = s[i] / (1 - pow(beta2, t));
            w[i] = w[i] - lr * mhat / (sqrt(shat) + eps);
            break;
        }
        }
    }
}

/* Runs the library and the reference side by side for REF_STEPS steps with gradients that
 * change sign and size from step to step, and a learning rate that changes too. An odd
 * REF_N exercises the scalar tail of vectorized loops. */
static void compare_with_reference(nb_optim_config c)
{
    float w[REF_N], g[REF_N];
    double rw[REF_N], rg[REF_N], rv[REF_N] = {0}, rs[REF_N] = {0};
    for (int i = 0; i < REF_N; i++) {
        w[i] = (float)((i % 2 ? -1.0 : 1.0) * (0.5 + 0.05 * i));
        rw[i] = w[i];
    }
    nb_optimizer o;
    init_ok(&o, &c, REF_N);
    for (int t = 1; t <= REF_STEPS; t++) {
        float lr = 0.01f / (float)t;
        for (int i = 0; i < REF_N; i++) {
            g[i] = (float)(sin(1.3 * i + 0.7 * t) * (1.0 + 0.1 * i));
            rg[i] = g[i];
        }
        nb_optimizer_step(&o, w, g, lr);
        reference_step(&c, REF_N, rw, rg, rv, rs, t, lr);
    }
    for (int i = 0; i < REF_N; i++)
        assert_rel(w[i], rw[i], 1e-6);
    nb_optimizer_free(&o);
}

static void test_reference_sgd(void **state)
{
    (void)state;
    compare_with_reference(config(NB_SGD, 0.0f, 0.0f, 0.0f, 0.05f));
}

static void test_reference_momentum(void **state)
{
    (void)state;
    compare_with_reference(config(NB_MOMENTUM, 0.9f, 0.0f, 0.0f, 0.05f));
    nb_optim_config c = config(NB_MOMENTUM, 0.8f, 0.0f, 0.0f, 0.05f);
    c.bias_correction = 1;
    compare_with_reference(c);
}

static void test_reference_nesterov(void **state)
{
    (void)state;
    compare_with_reference(config(NB_NESTEROV, 0.9f, 0.0f, 0.0f, 0.05f));
}

static void test_reference_rmsprop(void **state)
{
    (void)state;
    compare_with_reference(config(NB_RMSPROP, 0.0f, 0.9f, 1e-8f, 0.05f));
}

static void test_reference_adam(void **state)
{
    (void)state;
    compare_with_reference(config(NB_ADAM, 0.9f, 0.999f, 1e-8f, 0.05f));
    compare_with_reference(config(NB_ADAM, 0.5f, 0.9f, 1e-3f, 0.0f));
}

static void test_reference_adamw(void **state)
{
    (void)state;
    compare_with_reference(config(NB_ADAMW, 0.9f, 0.999f, 1e-8f, 0.5f));
}

/* ---- PyTorch equivalences ------------------------------------------------------------- */

/* The expected weights were produced once with torch 1.13 (Debian python3-torch, CPU, float32)
 * and pasted here: p = torch.tensor(W0), then for each row of TORCH_G: p.grad = row;
 * opt.step(), with every hyperparameter first rounded to float32 (float(np.float32(x))):
 *   momentum  torch.optim.SGD(lr=0.1*(1-0.9), momentum=0.9, weight_decay=0.01)
 *   nesterov  torch.optim.SGD(lr=0.1*(1-0.9), momentum=0.9, nesterov=True, weight_decay=0.01)
 *   rmsprop   torch.optim.RMSprop(lr=0.01, alpha=0.9, eps=1e-8, weight_decay=0.01)
 *   adam      torch.optim.Adam(lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
 *   adamw     torch.optim.AdamW(lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1) */
static const float TORCH_W0[5] = {0.5f, -1.25f, 2.0f, -0.75f, 1.5f};
static const float TORCH_G[4][5] = {
    {0.3f, -0.2f, 0.05f, 1.0f, -0.6f},
    {0.25f, 0.1f, -0.4f, 0.8f, -0.5f},
    {-0.1f, 0.3f, 0.2f, 0.6f, 0.7f},
    {0.4f, -0.05f, 0.15f, -0.9f, 0.2f},
};

static void compare_with_torch(nb_optim_config c, float lr, const float want[5])
{
    float w[5];
    memcpy(w, TORCH_W0, sizeof w);
    nb_optimizer o;
    init_ok(&o, &c, 5);
    for (int t = 0; t < 4; t++)
        nb_optimizer_step(&o, w, TORCH_G[t], lr);
    for (int i = 0; i < 5; i++)
        assert_rel(w[i], want[i], 1e-6);
    nb_optimizer_free(&o);
}

static void test_torch_momentum(void **state)
{
    (void)state;
    static const float want[5] = {0.480359167f, -1.24990225f, 2.00201011f, -0.807778776f,
                                  1.51752019f};
    compare_with_torch(config(NB_MOMENTUM, 0.9f, 0.0f, 0.0f, 0.01f), 0.1f, want);
}

static void test_torch_nesterov(void **state)
{
    (void)state;
    static const float want[5] = {0.473628491f, -1.25091314f, 2.00100803f, -0.816681623f,
                                  1.51715958f};
    compare_with_torch(config(NB_NESTEROV, 0.9f, 0.0f, 0.0f, 0.01f), 0.1f, want);
}

static void test_torch_rmsprop(void **state)
{
    (void)state;
    static const float want[5] = {0.431810677f, -1.25083673f, 1.97102523f, -0.797615647f,
                                  1.52280736f};
    compare_with_torch(config(NB_RMSPROP, 0.0f, 0.9f, 1e-8f, 0.01f), 0.01f, want);
}

static void test_torch_adam(void **state)
{
    (void)state;
    static const float want[5] = {0.466562629f, -1.24176836f, 1.99568868f, -0.782952547f,
                                  1.52088606f};
    compare_with_torch(config(NB_ADAM, 0.9f, 0.999f, 1e-8f, 0.01f), 0.01f, want);
}

static void test_torch_adamw(void **state)
{
    (void)state;
    static const float want[5] = {0.464823693f, -1.23866045f, 1.98975718f, -0.779982746f,
                                  1.51537514f};
    compare_with_torch(config(NB_ADAMW, 0.9f, 0.999f, 1e-8f, 0.1f), 0.01f, want);
}

/* A buffer split between 1, 2 and 3 threads: every element must get the reference's update,
 * whatever share it fell in; and stepping from one buffer into another (step_to) must give
 * the weights the in-place step gives while leaving the source as it was. */
static void test_threads_and_out_of_place(void **state)
{
    (void)state;
    enum { N = 3 * 4096 + 37, STEPS = 4 };
    nb_optim_config c = config(NB_ADAM, 0.9f, 0.999f, 1e-8f, 0.01f);
    float *w = malloc(N * sizeof *w), *g = malloc(N * sizeof *g), *before = malloc(N * sizeof *w);
    float *buf[2] = {malloc(N * sizeof *w), malloc(N * sizeof *w)};
    double *rw = malloc(N * sizeof *rw), *rg = malloc(N * sizeof *rg);
    double *rv = calloc(N, sizeof *rv), *rs = calloc(N, sizeof *rs);
    assert_true(w && g && before && buf[0] && buf[1] && rw && rg && rv && rs);
    for (int threads = 1; threads <= 3; threads++) {
        nb_set_threads(threads);
        for (int i = 0; i < N; i++) {
            w[i] = buf[0][i] = (float)(0.5 + sin(0.37 * i));
            rw[i] = w[i];
            rv[i] = rs[i] = 0.0;
        }
        nb_optimizer a, b;
        init_ok(&a, &c, N);
        init_ok(&b, &c, N);
        for (int t = 1; t <= STEPS; t++) {
            for (int i = 0; i < N; i++) {
                g[i] = (float)cos(0.11 * i + t);
                rg[i] = g[i];
            }
            float *from = buf[(t - 1) % 2], *to = buf[t % 2];
            memcpy(before, from, N * sizeof *from);
            nb_optimizer_step(&a, w, g, 0.01f);
            nb_optimizer_step_to(&b, from, g, 0.01f, to);
            reference_step(&c, N, rw, rg, rv, rs, t, 0.01f);
            assert_memory_equal(from, before, N * sizeof *from);
            assert_memory_equal(to, w, N * sizeof *w);
        }
        for (int i = 0; i < N; i++)
            assert_true(fabs(w[i] - rw[i]) <= 1e-6 * (1.0 + fabs(rw[i])));
        nb_optimizer_free(&a);
        nb_optimizer_free(&b);
    }
    free(w); free(g); free(before); free(buf[0]); free(buf[1]);
    free(rw); free(rg); free(rv); free(rs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_round_trip),
        cmocka_unit_test(test_parse_rejects_unknown),
        cmocka_unit_test(test_init_allocates_only_needed_state),
        cmocka_unit_test(test_init_rejects_bad_hyperparameters),
        cmocka_unit_test(test_free_is_safe_on_zeroed_struct),
        cmocka_unit_test(test_empty_parameter_buffer),
        cmocka_unit_test(test_sgd_by_hand),
        cmocka_unit_test(test_momentum_by_hand),
        cmocka_unit_test(test_nesterov_by_hand),
        cmocka_unit_test(test_rmsprop_by_hand),
        cmocka_unit_test(test_adam_first_step_is_lr_sign),
        cmocka_unit_test(test_adam_constant_gradient),
        cmocka_unit_test(test_adamw_by_hand),
        cmocka_unit_test(test_reference_sgd),
        cmocka_unit_test(test_reference_momentum),
        cmocka_unit_test(test_reference_nesterov),
        cmocka_unit_test(test_reference_rmsprop),
        cmocka_unit_test(test_reference_adam),
        cmocka_unit_test(test_reference_adamw),
        cmocka_unit_test(test_torch_momentum),
        cmocka_unit_test(test_torch_nesterov),
        cmocka_unit_test(test_torch_rmsprop),
        cmocka_unit_test(test_torch_adam),
        cmocka_unit_test(test_torch_adamw),
        cmocka_unit_test(test_threads_and_out_of_place),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Tests for src/train/schedule.c: every decay kind against values worked by hand, warm-up, what a
 * schedule does past its horizon, and the validation of schedule parameters. (The CLI test
 * tests/cli/test_schedule_resume.sh compares the rates a run logs with PyTorch's schedulers.) */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "nabla.h"

static void assert_lr(const nb_schedule *s, int epoch, double want)
{
    double got = nb_lr_at(s, epoch);
    /* float result: relative 1e-6, or absolutely 1e-9 near 0 */
    if (!(fabs(got - want) <= 1e-6 * fabs(want) + 1e-9))
        fail_msg("%s decay, epoch %d: got %.9g, want %.9g", nb_decay_name(s->kind), epoch, got,
                 want);
}

static nb_schedule schedule(nb_decay_kind kind, float lr, float rate, int interval)
{
    nb_schedule s;
    memset(&s, 0, sizeof s);
    s.kind = kind;
    s.lr = lr;
    s.rate = rate;
    s.interval = interval;
    return s;
}

static void test_names_round_trip(void **state)
{
    (void)state;
    const char *names[] = {"none", "inverse", "exp", "inverse-sqrt", "interval", "step",
                           "cosine"};
    const nb_decay_kind kinds[] = {NB_DECAY_NONE,     NB_DECAY_INVERSE, NB_DECAY_EXP,
                                   NB_DECAY_INVERSE_SQRT, NB_DECAY_INTERVAL, NB_DECAY_STEP,
                                   NB_DECAY_COSINE};
    for (int i = 0; i < 7; i++) {
        nb_decay_kind k = NB_DECAY_NONE;
        assert_string_equal(nb_decay_name(kinds[i]), names[i]);
        assert_int_equal(nb_decay_parse(names[i], &k), 0);
        assert_int_equal(k, kinds[i]);
    }
    nb_decay_kind k = NB_DECAY_STEP;
    assert_int_equal(nb_decay_parse("exponential", &k), -1);
    assert_int_equal(nb_decay_parse("inverse_sqrt", &k), -1);
    assert_int_equal(nb_decay_parse("", &k), -1);
    assert_int_equal(nb_decay_parse(NULL, &k), -1);
    assert_int_equal(k, NB_DECAY_STEP);
    assert_string_equal(nb_decay_name((nb_decay_kind)99), "unknown");
}

static void test_none(void **state)
{
    (void)state;
    nb_schedule s = schedule(NB_DECAY_NONE, 0.05f, 0.0f, 0);
    for (int e = 0; e < 50; e += 7)
        assert_lr(&s, e, 0.05);
}

static void test_inverse_course_example(void **state)
{
    (void)state;
    /* The course's example: lr0 0.2, decay rate 1, lr = lr0/(1 + rate*epoch). */
    nb_schedule s = schedule(NB_DECAY_INVERSE, 0.2f, 1.0f, 0);
    assert_lr(&s, 0, 0.2);
    assert_lr(&s, 1, 0.1);
    assert_lr(&s, 2, 0.2 / 3.0); /* 0.0667 */
    assert_lr(&s, 3, 0.05);
    /* rate 0.5: 1/(1 + 0.5*4) = 1/3 */
    s.rate = 0.5f;
    assert_lr(&s, 4, 0.2 / 3.0);
}

static void test_exp(void **state)
{
    (void)state;
    /* 0.95^e: 1, 0.95, 0.9025, 0.857375 */
    nb_schedule s = schedule(NB_DECAY_EXP, 0.2f, 0.95f, 0);
    assert_lr(&s, 0, 0.2);
    assert_lr(&s, 1, 0.19);
    assert_lr(&s, 2, 0.1805);
    assert_lr(&s, 3, 0.171475);
    assert_lr(&s, 10, 0.2 * 0.598736939); /* 0.95^10 */
}

static void test_inverse_sqrt(void **state)
{
    (void)state;
    nb_schedule s = schedule(NB_DECAY_INVERSE_SQRT, 1.0f, 0.0f, 0);
    assert_lr(&s, 0, 1.0);
    assert_lr(&s, 1, 0.707106781);
    assert_lr(&s, 2, 0.577350269);
    assert_lr(&s, 3, 0.5);
    assert_lr(&s, 99, 0.1);
}

static void test_interval_boundaries(void **state)
{
    (void)state;
    /* lr0/(1 + 1*floor(e/3)): epochs 0-2 at 0.2, 3-5 at 0.1, 6 at 0.0667 */
    nb_schedule s = schedule(NB_DECAY_INTERVAL, 0.2f, 1.0f, 3);
    assert_lr(&s, 0, 0.2);
    assert_lr(&s, 2, 0.2);
    assert_lr(&s, 3, 0.1);
    assert_lr(&s, 5, 0.1);
    assert_lr(&s, 6, 0.2 / 3.0);
    /* interval <= 0 counts as 1: plain inverse decay */
    s.interval = 0;
    assert_lr(&s, 1, 0.1);
    s.interval = -4;
    assert_lr(&s, 3, 0.05);
}

static void test_step_boundaries(void **state)
{
    (void)state;
    /* lr0 * 0.5^floor(e/2): 0.1, 0.1, 0.05, 0.05, 0.025 */
    nb_schedule s = schedule(NB_DECAY_STEP, 0.1f, 0.5f, 2);
    assert_lr(&s, 0, 0.1);
    assert_lr(&s, 1, 0.1);
    assert_lr(&s, 2, 0.05);
    assert_lr(&s, 3, 0.05);
    assert_lr(&s, 4, 0.025);
    s.interval = 0; /* as 1 */
    assert_lr(&s, 3, 0.0125);
}

static void test_cosine_endpoints_and_midpoint(void **state)
{
    (void)state;
    nb_schedule s = schedule(NB_DECAY_COSINE, 0.1f, 0.0f, 0);
    s.epochs = 10;
    assert_lr(&s, 0, 0.1);
    assert_lr(&s, 5, 0.05);                        /* cos(pi/2) = 0 */
    assert_lr(&s, 9, 0.05 * (1.0 - 0.951056516)); /* cos(0.9 pi) = -0.951056516 */
    /* Past the horizon it holds epoch 9's rate: not 0, and not rising again as a periodic
     * cosine (torch's CosineAnnealingLR past T_max) would. */
    assert_lr(&s, 10, 0.05 * (1.0 - 0.951056516));
    assert_lr(&s, 15, 0.05 * (1.0 - 0.951056516));
    assert_lr(&s, 1000000, 0.05 * (1.0 - 0.951056516));
    /* quarter point: (1 + cos(pi/4))/2 = 0.853553391 */
    s.epochs = 4;
    assert_lr(&s, 1, 0.0853553391);
}

static void test_warmup(void **state)
{
    (void)state;
    /* Linear ramp lr*(e+1)/w over w = 4 epochs, then the base rate. */
    nb_schedule s = schedule(NB_DECAY_NONE, 0.1f, 0.0f, 0);
    s.warmup_epochs = 4;
    assert_lr(&s, 0, 0.025);
    assert_lr(&s, 1, 0.05);
    assert_lr(&s, 2, 0.075);
    assert_lr(&s, 3, 0.1);
    assert_lr(&s, 4, 0.1);

    /* The decay starts at epoch w as if it were epoch 0: inverse on e - 2. */
    s = schedule(NB_DECAY_INVERSE, 0.2f, 1.0f, 0);
    s.warmup_epochs = 2;
    assert_lr(&s, 0, 0.1);
    assert_lr(&s, 1, 0.2);
    assert_lr(&s, 2, 0.2);
    assert_lr(&s, 3, 0.1);
    assert_lr(&s, 4, 0.2 / 3.0);

    /* Step decay counts its intervals from the end of the warm-up too. */
    s = schedule(NB_DECAY_STEP, 0.1f, 0.5f, 2);
    s.warmup_epochs = 1;
    assert_lr(&s, 0, 0.1);
    assert_lr(&s, 2, 0.1);
    assert_lr(&s, 3, 0.05);

    /* Cosine over the E - w epochs left: w = 2, E = 12, so the midpoint is epoch 7. */
    s = schedule(NB_DECAY_COSINE, 0.1f, 0.0f, 0);
    s.warmup_epochs = 2;
    s.epochs = 12;
    assert_lr(&s, 0, 0.05);
    assert_lr(&s, 2, 0.1);
    assert_lr(&s, 7, 0.05);
    assert_lr(&s, 11, 0.05 * (1.0 - 0.951056516)); /* e - w = 9 of 10 */
    assert_lr(&s, 12, 0.05 * (1.0 - 0.951056516)); /* past the horizon: epoch 11's */
}

/* The horizon (s.epochs) is where a cosine schedule ends: the rates before it do not depend on
 * what comes after, and from it on the rate is the last epoch's, warm-up or not. */
static void test_cosine_past_the_horizon(void **state)
{
    (void)state;
    /* The run: lr 0.01 over 4 epochs, extended. */
    nb_schedule s = schedule(NB_DECAY_COSINE, 0.01f, 0.0f, 0);
    s.epochs = 4;
    const double four[] = {0.01, 0.00853553391, 0.005, 0.00146446609};
    for (int e = 0; e < 4; e++)
        assert_lr(&s, e, four[e]);
    for (int e = 4; e < 40; e++)
        assert_lr(&s, e, four[3]);

    /* A one-epoch horizon is a constant rate. */
    s.epochs = 1;
    for (int e = 0; e < 5; e++)
        assert_lr(&s, e, 0.01);

    /* With a warm-up: w = 1 and E = 3, cosine over the 2 epochs after it. */
    s.epochs = 3;
    s.warmup_epochs = 1;
    assert_lr(&s, 0, 0.01);
    assert_lr(&s, 1, 0.01);
    assert_lr(&s, 2, 0.005);
    assert_lr(&s, 3, 0.005);
    assert_lr(&s, 9, 0.005);

    /* A warm-up that fills the horizon: the ramp stops where the horizon ends. */
    s.epochs = 2;
    s.warmup_epochs = 4;
    assert_lr(&s, 0, 0.0025);
    assert_lr(&s, 1, 0.005);
    assert_lr(&s, 2, 0.005);
    assert_lr(&s, 7, 0.005);

    /* A horizon longer than the run changes nothing about the epochs the run has. */
    nb_schedule longer = schedule(NB_DECAY_COSINE, 0.01f, 0.0f, 0);
    longer.epochs = 8;
    assert_lr(&longer, 3, 0.005 * (1.0 + 0.382683432)); /* cos(3 pi / 8) */
    assert_lr(&longer, 4, 0.005);
}

/* Every other kind ignores the horizon: its rates are the same whatever s.epochs says, so a
 * run extended with more epochs is the longer run, warm-up included. */
static void test_other_kinds_have_no_horizon(void **state)
{
    (void)state;
    const nb_decay_kind kinds[] = {NB_DECAY_NONE,         NB_DECAY_INVERSE, NB_DECAY_EXP,
                                   NB_DECAY_INVERSE_SQRT, NB_DECAY_INTERVAL, NB_DECAY_STEP};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++)
        for (int w = 0; w <= 2; w++) {
            nb_schedule short_run = schedule(kinds[k], 0.1f, 0.5f, 2);
            short_run.warmup_epochs = w;
            short_run.epochs = 3;
            nb_schedule long_run = short_run;
            long_run.epochs = 30;
            for (int e = 0; e < 40; e++)
                if (nb_lr_at(&short_run, e) != nb_lr_at(&long_run, e))
                    fail_msg("%s decay, warm-up %d, epoch %d: %.9g with 3 epochs, %.9g with 30",
                             nb_decay_name(kinds[k]), w, e, (double)nb_lr_at(&short_run, e),
                             (double)nb_lr_at(&long_run, e));
        }
}

static void test_negative_epoch_is_epoch_zero(void **state)
{
    (void)state;
    nb_schedule s = schedule(NB_DECAY_INVERSE, 0.2f, 1.0f, 0);
    assert_lr(&s, -3, 0.2);
}

/* ---- validation ----------------------------------------------------------------------- */

static void expect_valid(nb_schedule s)
{
    nb_error err = {{0}};
    if (nb_schedule_validate(&s, &err) != 0)
        fail_msg("%s schedule rejected: %s", nb_decay_name(s.kind), err.msg);
}

static void expect_invalid(nb_schedule s, const char *fragment)
{
    nb_error err = {{0}};
    assert_int_equal(nb_schedule_validate(&s, &err), -1);
    if (!strstr(err.msg, fragment))
        fail_msg("message \"%s\" does not mention \"%s\"", err.msg, fragment);
}

static void test_validate_accepts(void **state)
{
    (void)state;
    expect_valid(schedule(NB_DECAY_NONE, 0.01f, 0.0f, 0)); /* interval unused */
    expect_valid(schedule(NB_DECAY_INVERSE, 0.2f, 0.0f, 0));
    expect_valid(schedule(NB_DECAY_INVERSE, 0.2f, 3.0f, 0));
    expect_valid(schedule(NB_DECAY_EXP, 0.2f, 1.0f, 0));
    expect_valid(schedule(NB_DECAY_EXP, 0.2f, 0.95f, 0));
    expect_valid(schedule(NB_DECAY_INVERSE_SQRT, 0.2f, -5.0f, 0)); /* rate unused */
    expect_valid(schedule(NB_DECAY_INTERVAL, 0.2f, 1.0f, 1));
    expect_valid(schedule(NB_DECAY_STEP, 0.2f, 0.1f, 10));
    nb_schedule s = schedule(NB_DECAY_COSINE, 0.2f, 0.0f, 0);
    s.epochs = 1;
    s.warmup_epochs = 3;
    expect_valid(s);
}

static void test_validate_rejects(void **state)
{
    (void)state;
    expect_invalid(schedule(NB_DECAY_NONE, 0.0f, 0.0f, 0), "learning rate");
    expect_invalid(schedule(NB_DECAY_NONE, -0.1f, 0.0f, 0), "learning rate");
    expect_invalid(schedule(NB_DECAY_NONE, NAN, 0.0f, 0), "learning rate");
    expect_invalid(schedule(NB_DECAY_NONE, INFINITY, 0.0f, 0), "learning rate");
    expect_invalid(schedule(NB_DECAY_INVERSE, 0.1f, -1.0f, 0), "rate");
    expect_invalid(schedule(NB_DECAY_INTERVAL, 0.1f, NAN, 2), "rate");
    expect_invalid(schedule(NB_DECAY_INTERVAL, 0.1f, INFINITY, 2), "rate");
    expect_invalid(schedule(NB_DECAY_EXP, 0.1f, 0.0f, 0), "(0, 1]");
    expect_invalid(schedule(NB_DECAY_EXP, 0.1f, 1.5f, 0), "(0, 1]");
    expect_invalid(schedule(NB_DECAY_STEP, 0.1f, -0.5f, 2), "(0, 1]");
    expect_invalid(schedule(NB_DECAY_STEP, 0.1f, 0.5f, 0), "interval");
    expect_invalid(schedule(NB_DECAY_INTERVAL, 0.1f, 1.0f, -1), "interval");
    expect_invalid(schedule(NB_DECAY_COSINE, 0.1f, 0.0f, 0), "epochs");
    expect_invalid(schedule((nb_decay_kind)12, 0.1f, 0.0f, 0), "unknown");
    nb_schedule s = schedule(NB_DECAY_NONE, 0.1f, 0.0f, 0);
    s.warmup_epochs = -1;
    expect_invalid(s, "warm-up");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_round_trip),
        cmocka_unit_test(test_none),
        cmocka_unit_test(test_inverse_course_example),
        cmocka_unit_test(test_exp),
        cmocka_unit_test(test_inverse_sqrt),
        cmocka_unit_test(test_interval_boundaries),
        cmocka_unit_test(test_step_boundaries),
        cmocka_unit_test(test_cosine_endpoints_and_midpoint),
        cmocka_unit_test(test_warmup),
        cmocka_unit_test(test_cosine_past_the_horizon),
        cmocka_unit_test(test_other_kinds_have_no_horizon),
        cmocka_unit_test(test_negative_epoch_is_epoch_zero),
        cmocka_unit_test(test_validate_accepts),
        cmocka_unit_test(test_validate_rejects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

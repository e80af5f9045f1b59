/* Tests for src/search/prune.c: the median and ASHA rules on scripted dev accuracies, with the
 * expected decisions worked out by hand. Trials are taken in number order, each compared with
 * the earlier ones that reached the same epoch, as `nabla tune` does. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "nabla.h"

static void test_names(void **state)
{
    (void)state;
    nb_prune_kind k;
    assert_int_equal(nb_prune_parse("median", &k), 0);
    assert_int_equal(k, NB_PRUNE_MEDIAN);
    assert_int_equal(nb_prune_parse("asha", &k), 0);
    assert_int_equal(k, NB_PRUNE_ASHA);
    assert_int_equal(nb_prune_parse("none", &k), 0);
    assert_int_equal(k, NB_PRUNE_NONE);
    assert_int_equal(nb_prune_parse("hyperband", &k), -1);
    assert_string_equal(nb_prune_name(NB_PRUNE_ASHA), "asha");
}

static void test_asha_rungs(void **state)
{
    (void)state;
    nb_pruner p = {NB_PRUNE_ASHA, 0, 1, 3};
    const int rung[] = {1, 3, 9, 27, 81};
    const int not_rung[] = {0, 2, 4, 6, 8, 10, 26, 28};
    for (size_t i = 0; i < sizeof rung / sizeof rung[0]; i++)
        assert_true(nb_asha_is_rung(&p, rung[i]));
    for (size_t i = 0; i < sizeof not_rung / sizeof not_rung[0]; i++)
        assert_false(nb_asha_is_rung(&p, not_rung[i]));
    nb_pruner q = {NB_PRUNE_ASHA, 0, 2, 3};
    assert_false(nb_asha_is_rung(&q, 1));
    assert_true(nb_asha_is_rung(&q, 2));
    assert_false(nb_asha_is_rung(&q, 3));
    assert_true(nb_asha_is_rung(&q, 6));
    assert_true(nb_asha_is_rung(&q, 18));
}

/* Epoch-1 dev accuracies of nine trials, in trial order. */
static const double EPOCH1[9] = {0.5, 0.6, 0.4, 0.7, 0.55, 0.8, 0.3, 0.65, 0.9};

/* Decides epoch 1 for trials 0..8 in order, comparing each with all earlier ones (every trial
 * reports epoch 1, pruned or not). */
static void decide_epoch1(const nb_pruner *p, int epochs, int *stopped)
{
    for (int t = 0; t < 9; t++)
        stopped[t] = nb_prune_should_stop(p, 1, epochs, EPOCH1[t], EPOCH1, t);
}

static void test_asha_scripted(void **state)
{
    (void)state;
    nb_pruner p = {NB_PRUNE_ASHA, 0, 1, 3};
    int stopped[9];
    decide_epoch1(&p, 4, stopped);
    /* n competitors (earlier + itself); the best max(1, n/3) go on:
     * t0 alone; t1 best of 2; t2 0.4 < 0.6; t3 best of 4; t4 0.55 < 0.7; t5 0.8 in top 2 of 6;
     * t6 0.3 not in top 2 of 7 (0.8, 0.7); t7 0.65 not in top 2 of 8; t8 0.9 in top 3 of 9. */
    const int want[9] = {0, 0, 1, 0, 1, 0, 1, 1, 0};
    for (int t = 0; t < 9; t++)
        if (stopped[t] != want[t])
            fail_msg("asha, trial %d: stopped %d, expected %d", t, stopped[t], want[t]);
    /* Epoch 2 is no rung: nothing stops there, whatever the values. */
    assert_false(nb_prune_should_stop(&p, 2, 4, 0.0, EPOCH1, 9));
    /* Epoch 3 is: among 4 (3 earlier + itself), only the best. */
    const double e3[3] = {0.7, 0.8, 0.75};
    assert_true(nb_prune_should_stop(&p, 3, 4, 0.79, e3, 3));
    assert_false(nb_prune_should_stop(&p, 3, 4, 0.81, e3, 3));
    /* A tie with the last promoted value goes on. */
    assert_false(nb_prune_should_stop(&p, 3, 4, 0.8, e3, 3));
    /* At the last epoch, a trial is complete, never pruned. */
    assert_false(nb_prune_should_stop(&p, 1, 1, 0.0, EPOCH1, 9));
}

static void test_median_scripted(void **state)
{
    (void)state;
    nb_pruner p = {NB_PRUNE_MEDIAN, 2, 1, 3};
    int stopped[9];
    decide_epoch1(&p, 3, stopped);
    /* t0, t1: fewer than 2 others. t2: median(0.5, 0.6) = 0.55 > 0.4. t3: median 0.5 < 0.7.
     * t4: median(0.5, 0.6, 0.4, 0.7) = 0.55, not above 0.55. t5: 0.8 above.
     * t6: median of 0.5 0.6 0.4 0.7 0.55 0.8 = 0.575 > 0.3. t7: median of seven = 0.55 < 0.65.
     * t8: above. */
    const int want[9] = {0, 0, 1, 0, 0, 0, 1, 0, 0};
    for (int t = 0; t < 9; t++)
        if (stopped[t] != want[t])
            fail_msg("median, trial %d: stopped %d, expected %d", t, stopped[t], want[t]);
    /* NaN values among the others are left out: the median of {0.5, 0.9} is 0.7. */
    const double with_nan[3] = {0.5, NAN, 0.9};
    assert_true(nb_prune_should_stop(&p, 1, 3, 0.69, with_nan, 3));
    assert_false(nb_prune_should_stop(&p, 1, 3, 0.71, with_nan, 3));
    /* ... and do not count towards min_trials. */
    const double one_real[2] = {0.9, NAN};
    assert_false(nb_prune_should_stop(&p, 1, 3, 0.1, one_real, 2));
    /* Never at the last epoch. */
    assert_false(nb_prune_should_stop(&p, 3, 3, 0.0, EPOCH1, 9));
}

static void test_none_never_prunes(void **state)
{
    (void)state;
    nb_pruner p = {NB_PRUNE_NONE, 0, 1, 3};
    for (int t = 0; t < 9; t++)
        assert_false(nb_prune_should_stop(&p, 1, 5, 0.0, EPOCH1, 9));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_asha_rungs),
        cmocka_unit_test(test_asha_scripted),
        cmocka_unit_test(test_median_scripted),
        cmocka_unit_test(test_none_never_prunes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

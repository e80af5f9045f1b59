/* Tests for src/search/tpe.c, the TPE sampler: its first points are random search's, its
 * points are a pure function of its arguments, every value is one a random point could have
 * (kind, range, rounding), the ranking of completed, pruned and failed trials, its refusals,
 * and that it finds better points than random search on synthetic objectives (fixed seeds, so
 * the comparison is the same on every run).
 *
 * `test_tpe --suggest SPEC SEED INDEX COUNT` reads finished trials from stdin, one a line
 * (`pruned_epoch score v1 v2 ...`, a choice as its index) and prints COUNT points, with seeds
 * SEED, SEED + 1, ...: tests/tpe_optuna_check.py compares them with Optuna's TPESampler. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "nabla.h"

/* Every kind of distribution, a one-value int and a one-value choice among them. */
#define ALL_KINDS                                                                                \
    "lr=log(1e-5,1); beta=1-log(0.5,0.9999); opt=choice(sgd,momentum,adam,rmsprop); "           \
    "depth=int(1,8); drop=uniform(0,0.8); one=int(4,4); only=choice(x); wide=int(-1000,1000)"

/* The synthetic objective (higher is better): a bowl in log10 lr and log10(1 - beta), a best
 * depth, a best dropout and one better optimizer; its best value is 0. Parameters are those of
 * ALL_KINDS by position. */
static double objective(const nb_search_point *p)
{
    static const double opt_bonus[4] = {-0.6, -0.3, 0, -0.45};
    double a = log10(p->v[0]) + 2.5, b = log10(1 - p->v[1]) + 2;
    double d = (p->v[3] - 3) / 4, r = (p->v[4] - 0.2) / 0.8, w = p->v[7] / 1000;
    return -(a * a / 4 + b * b / 4 + d * d + r * r + w * w) + opt_bonus[(int)p->v[2]];
}

static void parse_ok(nb_search_space *s, const char *spec)
{
    nb_error err = {{0}};
    if (nb_search_space_parse(s, spec, &err) != 0)
        fail_msg("\"%s\" did not parse: %s", spec, err.msg);
}

static void suggest_ok(const nb_search_space *s, const nb_tpe_config *cfg,
                       const nb_tpe_trial *done, int n, uint64_t seed, int64_t index,
                       nb_search_point *out)
{
    nb_error err = {{0}};
    if (nb_tpe_suggest(s, cfg, done, n, seed, index, out, &err) != 0)
        fail_msg("nb_tpe_suggest failed: %s", err.msg);
}

/* n trials at random points of ALL_KINDS (seed 1000 + seed), scored by objective(). */
static void random_history(const nb_search_space *s, int n, uint64_t seed, nb_tpe_trial *t)
{
    for (int i = 0; i < n; i++) {
        memset(&t[i], 0, sizeof t[i]);
        nb_search_sample(s, 1000 + seed, i, &t[i].point);
        t[i].score = objective(&t[i].point);
    }
}

/* Runs a study of n trials: trial i is given trials 0..i-1. Returns the best score. */
static double run_study(const nb_search_space *s, int tpe, int n, uint64_t seed,
                        nb_tpe_trial *trials)
{
    double best = -INFINITY;
    for (int i = 0; i < n; i++) {
        memset(&trials[i], 0, sizeof trials[i]);
        if (tpe)
            suggest_ok(s, NULL, trials, i, seed, i, &trials[i].point);
        else
            nb_search_sample(s, seed, i, &trials[i].point);
        trials[i].score = objective(&trials[i].point);
        best = trials[i].score > best ? trials[i].score : best;
    }
    return best;
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, compare_doubles);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* ---- the rule's pieces ---------------------------------------------------------------------- */

static void test_defaults_are_optunas(void **state)
{
    (void)state;
    nb_tpe_config c = nb_tpe_defaults();
    assert_int_equal(c.n_startup, 10);
    assert_int_equal(c.n_candidates, 24);
    assert_true(c.gamma == 0.1);
    assert_int_equal(c.max_good, 25);
    assert_true(c.prior_weight == 1.0);
}

/* While fewer than n_startup trials are given, the point is random search's, whatever they are. */
static void test_startup_is_random_search(void **state)
{
    (void)state;
    nb_search_space s;
    parse_ok(&s, ALL_KINDS);
    nb_tpe_trial done[12];
    random_history(&s, 12, 7, done);
    for (int n = 0; n < 10; n++)
        for (int64_t index = 0; index < 30; index += 7) {
            nb_search_point got, want;
            suggest_ok(&s, NULL, done, n, 42, index, &got);
            nb_search_sample(&s, 42, index, &want);
            assert_memory_equal(&got, &want, sizeof got);
        }
    /* From the tenth trial on, it learns: some point differs from random search's. */
    int differ = 0;
    for (int64_t index = 0; index < 10; index++) {
        nb_search_point got, want;
        suggest_ok(&s, NULL, done, 10, 42, index, &got);
        nb_search_sample(&s, 42, index, &want);
        differ += memcmp(&got, &want, sizeof got) != 0;
    }
    assert_int_equal(differ, 10);
    /* n_startup is the configuration's. */
    nb_tpe_config c = nb_tpe_defaults();
    c.n_startup = 3;
    nb_search_point got, want;
    suggest_ok(&s, &c, done, 2, 5, 9, &got);
    nb_search_sample(&s, 5, 9, &want);
    assert_memory_equal(&got, &want, sizeof got);
    suggest_ok(&s, &c, done, 3, 5, 9, &got);
    assert_memory_not_equal(&got, &want, sizeof got);
}

/* The same arguments give the same point bit for bit; the seed and the index each change it. */
static void test_deterministic(void **state)
{
    (void)state;
    nb_search_space s;
    parse_ok(&s, ALL_KINDS);
    nb_tpe_trial done[40], copy[40];
    random_history(&s, 40, 3, done);
    done[5].pruned_epoch = 2;
    done[9].score = NAN;
    memcpy(copy, done, sizeof done);
    nb_search_point a, b;
    memset(&b, 0xff, sizeof b); /* what out held before does not matter */
    suggest_ok(&s, NULL, done, 40, 11, 40, &a);
    for (int k = 0; k < 3; k++) {
        suggest_ok(&s, NULL, copy, 40, 11, 40, &b);
        assert_memory_equal(&a, &b, sizeof a);
    }
    assert_memory_equal(done, copy, sizeof done); /* the trials are only read */
    suggest_ok(&s, NULL, done, 40, 12, 40, &b);
    assert_memory_not_equal(&a, &b, sizeof a);
    suggest_ok(&s, NULL, done, 40, 11, 41, &b);
    assert_memory_not_equal(&a, &b, sizeof a);
    /* The values of the unused slots of a point are 0, as nb_search_sample leaves them. */
    for (int i = s.n; i < NB_SEARCH_MAX_PARAMS; i++)
        assert_true(a.v[i] == 0);
}

/* Every value is one random search could give: of its kind, in range, and exactly the number
 * its text reads back as. Trials with NaN values, choice indices that name nothing and values
 * outside the range (an earlier, wider space) are accepted. */
static void test_values_in_range_and_rounded(void **state)
{
    (void)state;
    nb_search_space s;
    parse_ok(&s, ALL_KINDS);
    static nb_tpe_trial done[120];
    for (int n = 10; n <= 120; n += 22) {
        random_history(&s, n, (uint64_t)n, done);
        done[0].point.v[0] = NAN;
        done[1].point.v[2] = 7;   /* no such choice */
        done[2].point.v[2] = 1.5; /* not an index */
        done[3].point.v[4] = 5;   /* beyond uniform(0,0.8) */
        done[4].point.v[7] = -5000;
        done[6].pruned_epoch = 1;
        done[7].score = NAN;
        for (int64_t index = 0; index < 25; index++) {
            nb_search_point p;
            suggest_ok(&s, NULL, done, n, 99, index, &p);
            for (int i = 0; i < s.n; i++) {
                const nb_search_param *q = &s.p[i];
                double v = p.v[i];
                if (!(v >= q->lo && v <= q->hi))
                    fail_msg("%s = %.17g is outside [%g, %g]", q->name, v, q->lo, q->hi);
                if (q->kind == NB_DIST_INT || q->kind == NB_DIST_CHOICE)
                    assert_true(v == floor(v));
                char text[NB_SEARCH_VALUE_MAX];
                nb_search_value_text(q, v, text, sizeof text);
                double back;
                nb_error err = {{0}};
                assert_int_equal(nb_search_value_parse(q, text, &back, &err), 0);
                if (back != v)
                    fail_msg("%s = %.17g prints as %s", q->name, v, text);
                if (q->kind != NB_DIST_CHOICE && q->kind != NB_DIST_INT) {
                    /* At most 6 significant digits, except 1-log's 1 - x. */
                    char six[40];
                    snprintf(six, sizeof six, "%.6g", v);
                    if (q->kind != NB_DIST_ONE_MINUS_LOG)
                        assert_true(strtod(six, NULL) == v);
                }
            }
        }
    }
}

/* The good trial (1 of 10: ceil(0.1 * 10)) shows in a choice: only it has value "a", only the
 * runner-up "b", the 8 others (failed: ranked last) "c"; TPE then suggests "a". */
static int suggested_choice(const nb_tpe_trial *t)
{
    nb_search_space s;
    parse_ok(&s, "pick=choice(a,b,c)");
    nb_search_point p;
    suggest_ok(&s, NULL, t, 10, 1, 10, &p);
    return (int)p.v[0];
}

static void set_trials(nb_tpe_trial *t, int pruned_x, double score_x, int pruned_y, double score_y)
{
    for (int i = 0; i < 10; i++) {
        memset(&t[i], 0, sizeof t[i]);
        t[i].point.v[0] = 2;
        t[i].score = NAN;
    }
    /* x is trial 3 (value a), y trial 6 (value b). */
    t[3] = (nb_tpe_trial){.point = {{0}}, .score = score_x, .pruned_epoch = pruned_x};
    t[6] = (nb_tpe_trial){.point = {{1}}, .score = score_y, .pruned_epoch = pruned_y};
}

static void test_ranking_of_trials(void **state)
{
    (void)state;
    nb_tpe_trial t[10];
    /* Completed trials by score, higher first. */
    set_trials(t, 0, 0.5, 0, 0.9);
    assert_int_equal(suggested_choice(t), 1);
    set_trials(t, 0, 0.9, 0, 0.5);
    assert_int_equal(suggested_choice(t), 0);
    /* A completed trial before a pruned one, whatever the scores. */
    set_trials(t, 0, 0.1, 4, 0.9);
    assert_int_equal(suggested_choice(t), 0);
    set_trials(t, 3, 0.9, 0, 0.1);
    assert_int_equal(suggested_choice(t), 1);
    /* Pruned trials: the later epoch first, then the score at it. */
    set_trials(t, 2, 0.9, 5, 0.1);
    assert_int_equal(suggested_choice(t), 1);
    set_trials(t, 5, 0.1, 2, 0.9);
    assert_int_equal(suggested_choice(t), 0);
    set_trials(t, 3, 0.4, 3, 0.6);
    assert_int_equal(suggested_choice(t), 1);
    /* Equal: the earlier one (x, trial 3). */
    set_trials(t, 0, 0.7, 0, 0.7);
    assert_int_equal(suggested_choice(t), 0);
    set_trials(t, 2, 0.7, 2, 0.7);
    assert_int_equal(suggested_choice(t), 0);
    /* A trial without a score is never good, even when nothing else is: with x failed too,
     * the good group is y alone; with y failed too, it is empty and "a" and "b" are as bad
     * as each other's densities say (a and b once each among the failed, c 8 times: never c). */
    set_trials(t, 0, NAN, 1, -5);
    assert_int_equal(suggested_choice(t), 1);
    set_trials(t, 0, NAN, 0, NAN);
    assert_int_not_equal(suggested_choice(t), 2);
}

/* The good fraction: with gamma 0.25 and 8 trials, the best 2 are good; max_good caps it. */
static void test_gamma_and_max_good(void **state)
{
    (void)state;
    nb_search_space s;
    parse_ok(&s, "pick=choice(a,b,c)");
    nb_tpe_trial t[8];
    for (int i = 0; i < 8; i++)
        t[i] = (nb_tpe_trial){.point = {{2}}, .score = 0, .pruned_epoch = 0};
    t[2] = (nb_tpe_trial){.point = {{0}}, .score = 3, .pruned_epoch = 0};
    t[5] = (nb_tpe_trial){.point = {{1}}, .score = 2, .pruned_epoch = 0};
    /* With 2 good, a and b each get good weight and no bad: the 24 candidates show both. */
    nb_tpe_config c = nb_tpe_defaults();
    c.n_startup = 1;
    c.gamma = 0.25;
    int count[3] = {0};
    for (uint64_t seed = 0; seed < 40; seed++) {
        nb_search_point p;
        suggest_ok(&s, &c, t, 8, seed, 8, &p);
        count[(int)p.v[0]]++;
    }
    assert_true(count[0] > 5 && count[1] > 5 && count[2] == 0);
    /* max_good 1: b is among the bad, a alone is suggested. */
    c.max_good = 1;
    memset(count, 0, sizeof count);
    for (uint64_t seed = 0; seed < 40; seed++) {
        nb_search_point p;
        suggest_ok(&s, &c, t, 8, seed, 8, &p);
        count[(int)p.v[0]]++;
    }
    assert_int_equal(count[0], 40);
}

static void expect_refusal(const nb_search_space *s, const nb_tpe_config *c,
                           const nb_tpe_trial *t, int n, const char *want)
{
    nb_error err = {{0}};
    nb_search_point p, before;
    memset(&p, 0x5a, sizeof p);
    before = p;
    assert_int_equal(nb_tpe_suggest(s, c, t, n, 1, 0, &p, &err), -1);
    if (!strstr(err.msg, want))
        fail_msg("message \"%s\" does not say \"%s\"", err.msg, want);
    assert_memory_equal(&p, &before, sizeof p); /* out untouched */
}

static void test_refusals(void **state)
{
    (void)state;
    nb_search_space s;
    parse_ok(&s, ALL_KINDS);
    nb_tpe_trial t[12];
    random_history(&s, 12, 1, t);
    nb_tpe_config c;
    c = nb_tpe_defaults(), c.n_startup = -1;
    expect_refusal(&s, &c, t, 12, "n_startup must be >= 0, not -1");
    c = nb_tpe_defaults(), c.n_candidates = 0;
    expect_refusal(&s, &c, t, 12, "n_candidates must be >= 1, not 0");
    c = nb_tpe_defaults(), c.gamma = 0;
    expect_refusal(&s, &c, t, 12, "gamma must be in (0, 1], not 0");
    c = nb_tpe_defaults(), c.gamma = 1.5;
    expect_refusal(&s, &c, t, 12, "gamma must be in (0, 1], not 1.5");
    c = nb_tpe_defaults(), c.gamma = NAN;
    expect_refusal(&s, &c, t, 12, "gamma must be in (0, 1]");
    c = nb_tpe_defaults(), c.max_good = 0;
    expect_refusal(&s, &c, t, 12, "max_good must be >= 1, not 0");
    c = nb_tpe_defaults(), c.prior_weight = 0;
    expect_refusal(&s, &c, t, 12, "prior_weight must be a positive number, not 0");
    c = nb_tpe_defaults(), c.prior_weight = INFINITY;
    expect_refusal(&s, &c, t, 12, "prior_weight must be a positive number, not inf");
    expect_refusal(&s, NULL, t, -1, "n >= 0 finished trials (n is -1)");
    expect_refusal(&s, NULL, NULL, 3, "n >= 0 finished trials (n is 3)");
    t[4].pruned_epoch = -2;
    expect_refusal(&s, NULL, t, 12, "trial 4 of the list has pruned_epoch -2");
    nb_search_space bad = s;
    bad.n = NB_SEARCH_MAX_PARAMS + 1;
    expect_refusal(&bad, NULL, t, 12, "0 to 16 parameters, not 17");
    /* No trials at all, and no startup: the prior alone, a point in range. */
    c = nb_tpe_defaults(), c.n_startup = 0;
    nb_search_point p;
    suggest_ok(&s, &c, NULL, 0, 1, 0, &p);
    assert_true(p.v[0] >= 1e-5 && p.v[0] <= 1);
}

/* ---- it learns -------------------------------------------------------------------------------- */

/* On the objective over every kind, 40 trials: TPE's median best over 11 seeds beats random
 * search's, and so does its median score of the last 20 trials (it samples where it is good). */
static void test_beats_random_search(void **state)
{
    (void)state;
    nb_search_space s;
    parse_ok(&s, ALL_KINDS);
    enum { SEEDS = 11, TRIALS = 40 };
    static nb_tpe_trial trials[TRIALS];
    double best_tpe[SEEDS], best_random[SEEDS], late_tpe[SEEDS], late_random[SEEDS];
    int tpe_wins = 0;
    for (int k = 0; k < SEEDS; k++) {
        double late[TRIALS / 2];
        best_tpe[k] = run_study(&s, 1, TRIALS, (uint64_t)k, trials);
        for (int i = 0; i < TRIALS / 2; i++)
            late[i] = trials[TRIALS / 2 + i].score;
        late_tpe[k] = median(late, TRIALS / 2);
        best_random[k] = run_study(&s, 0, TRIALS, (uint64_t)k, trials);
        for (int i = 0; i < TRIALS / 2; i++)
            late[i] = trials[TRIALS / 2 + i].score;
        late_random[k] = median(late, TRIALS / 2);
        tpe_wins += best_tpe[k] > best_random[k];
    }
    double mt = median(best_tpe, SEEDS), mr = median(best_random, SEEDS);
    double lt = median(late_tpe, SEEDS), lr = median(late_random, SEEDS);
    print_message("median best over %d seeds of %d trials: tpe %.4f, random %.4f (tpe better on "
                  "%d seeds); median score of the last %d trials: tpe %.4f, random %.4f\n",
                  SEEDS, TRIALS, mt, mr, tpe_wins, TRIALS / 2, lt, lr);
    assert_true(mt > mr);
    assert_true(lt > lr);
}

/* ---- the comparison with Optuna: suggestions for a history read from stdin ------------------- */

static int suggest_from_stdin(const char *spec, const char *seed_text, const char *index_text,
                              const char *count_text)
{
    nb_search_space s;
    nb_error err = {{0}};
    if (nb_search_space_parse(&s, spec, &err) != 0) {
        fprintf(stderr, "test_tpe: %s\n", err.msg);
        return 2;
    }
    uint64_t seed = strtoull(seed_text, NULL, 10);
    int64_t index = strtoll(index_text, NULL, 10);
    int count = atoi(count_text);
    int cap = 64, n = 0;
    nb_tpe_trial *t = malloc((size_t)cap * sizeof *t);
    for (;;) {
        if (n == cap) {
            cap *= 2;
            nb_tpe_trial *grown = realloc(t, (size_t)cap * sizeof *t);
            if (!grown) {
                free(t);
                return 1;
            }
            t = grown;
        }
        memset(&t[n], 0, sizeof t[n]);
        if (scanf("%d %lf", &t[n].pruned_epoch, &t[n].score) != 2)
            break;
        for (int i = 0; i < s.n; i++)
            if (scanf("%lf", &t[n].point.v[i]) != 1) {
                fprintf(stderr, "test_tpe: trial %d has too few values\n", n);
                free(t);
                return 2;
            }
        n++;
    }
    for (int k = 0; k < count; k++) {
        nb_search_point p;
        if (nb_tpe_suggest(&s, NULL, t, n, seed + (uint64_t)k, index, &p, &err) != 0) {
            fprintf(stderr, "test_tpe: %s\n", err.msg);
            free(t);
            return 1;
        }
        for (int i = 0; i < s.n; i++)
            printf("%s%.17g", i ? " " : "", p.v[i]);
        printf("\n");
    }
    free(t);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 6 && strcmp(argv[1], "--suggest") == 0)
        return suggest_from_stdin(argv[2], argv[3], argv[4], argv[5]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_are_optunas),
        cmocka_unit_test(test_startup_is_random_search),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_values_in_range_and_rounded),
        cmocka_unit_test(test_ranking_of_trials),
        cmocka_unit_test(test_gamma_and_max_good),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_beats_random_search),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

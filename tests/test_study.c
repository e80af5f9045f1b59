/* Tests for the study engine (src/study/, nabla.h: nb_study) on a synthetic objective, without
 * processes: trials are simulated, several at once, advancing one epoch at a time in an order
 * drawn from a seed, as trial processes would report in whatever order they run. Checked:
 * every sampler and pruner gives the same trials, states and results however many trials run
 * at once and in whatever order they report; a study stopped at any point and opened again
 * goes on to the same end; TPE waits for exactly the results its lag names; the journal is
 * read back as written and damage in it is refused with its line; the API refuses misuse. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "nabla.h"

#define SPACE "lr=log(1e-4,1); depth=int(1,4); act=choice(relu,tanh)"
#define EPOCHS 4
#define MAX_TRIALS 40

/* Dev accuracy of a configuration after epoch e: best near lr = 0.01, depth 2, relu; it grows
 * with the epochs. */
static double accuracy_at(const nb_search_point *p, int e)
{
    double a = log10(p->v[0]) + 2, d = p->v[1] - 2, act = p->v[2] == 0 ? 0 : 0.05;
    double best = 0.95 - 0.08 * a * a - 0.03 * d * d - act;
    return (best < 0.05 ? 0.05 : best) * (1 - 0.5 / (1 << e));
}

static nb_trial_figures figures_at(const nb_search_point *p, int e)
{
    nb_trial_figures f;
    f.accuracy = accuracy_at(p, e);
    f.loss = 1 - f.accuracy;
    f.objective = f.accuracy;
    return f;
}

static nb_study_config config(nb_sampler sampler, nb_prune_kind prune, int trials)
{
    nb_study_config c = nb_study_defaults();
    nb_error err;
    assert_int_equal(nb_search_space_parse(&c.space, SPACE, &err), 0);
    c.trials = trials;
    c.sampler = sampler;
    c.prune = prune;
    c.seed = 7;
    c.epochs = EPOCHS;
    c.tpe.n_startup = 5;
    return c;
}

static char *temp_dir(void)
{
    char *d = strdup("/tmp/nabla_test_study_XXXXXX");
    assert_non_null(mkdtemp(d));
    return d;
}

static void remove_dir(char *d)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", d);
    assert_int_equal(system(cmd), 0);
    free(d);
}

/* A simulated run of a trial: its number and the epochs it has reported. */
typedef struct running {
    int trial, epoch;
    nb_search_point point;
} running;

static uint64_t next_random(uint64_t *state)
{
    *state = *state * 6364136223846793005ULL + 1442695040888963407ULL;
    return *state >> 33;
}

/* Runs the study in dir (NULL: in memory) with `workers` trials at once, each step advancing a
 * trial drawn from order_seed by one epoch, until it is done or `steps` steps have passed (a
 * stop: the runs are dropped, as a killed tuner's are). Returns whether it is done. */
static int drive(nb_study *s, int trials, int workers, uint64_t order_seed, int steps)
{
    running run[16];
    int n_run = 0, ended[MAX_TRIALS], n_ended;
    nb_error err;
    for (int step = 0; step < steps; step++) {
        assert_int_equal(nb_study_decide(s, ended, &n_ended, &err), 0);
        for (int k = 0; k < n_ended; k++) /* a pruned trial's run is stopped */
            for (int j = 0; j < n_run; j++)
                if (run[j].trial == ended[k])
                    run[j--] = run[--n_run];
        while (n_run < workers) {
            running r = {0, 0, {{0}}};
            int asked = nb_study_ask(s, &r.trial, &r.point, &err);
            assert_true(asked >= 0);
            if (asked == 0)
                break;
            assert_int_equal(nb_study_started(s, r.trial, NULL, 0, -1, 0, &err), 0);
            run[n_run++] = r;
        }
        if (n_run == 0)
            return nb_study_finished(s) == trials;
        int j = (int)(next_random(&order_seed) % (uint64_t)n_run);
        running *r = &run[j];
        r->epoch++;
        assert_true(nb_study_tell_epoch(s, r->trial, r->epoch, EPOCHS,
                                        figures_at(&r->point, r->epoch), r->epoch, &err) >= 0);
        if (r->epoch == EPOCHS) {
            assert_int_equal(nb_study_tell_end(s, r->trial, NB_TRIAL_COMPLETE,
                                               figures_at(&r->point, EPOCHS), EPOCHS, EPOCHS,
                                               NULL, &err), 0);
            run[j] = run[--n_run];
        }
    }
    return 0;
}

/* What a study ended with, trial by trial. */
typedef struct outcome {
    nb_trial_info t[MAX_TRIALS];
    int best;
} outcome;

static void outcome_of(const nb_study *s, int trials, outcome *o)
{
    for (int i = 0; i < trials; i++)
        assert_int_equal(nb_study_trial(s, i, &o->t[i]), 0);
    o->best = nb_study_best(s);
}

static void assert_same_outcome(const outcome *a, const outcome *b, int trials)
{
    for (int i = 0; i < trials; i++) {
        if (a->t[i].state != b->t[i].state || a->t[i].epochs != b->t[i].epochs ||
            a->t[i].result.objective != b->t[i].result.objective)
            fprintf(stderr, "trial %d: %s after %d epochs (%.17g), then %s after %d (%.17g)\n",
                    i, nb_trial_state_name(a->t[i].state), a->t[i].epochs,
                    a->t[i].result.objective, nb_trial_state_name(b->t[i].state),
                    b->t[i].epochs, b->t[i].result.objective);
        assert_int_equal(a->t[i].state, b->t[i].state);
        assert_int_equal(a->t[i].epochs, b->t[i].epochs);
        assert_memory_equal(&a->t[i].point, &b->t[i].point, sizeof a->t[i].point);
        assert_true(a->t[i].result.objective == b->t[i].result.objective ||
                    (isnan(a->t[i].result.objective) && isnan(b->t[i].result.objective)));
    }
    assert_int_equal(a->best, b->best);
}

/* The whole study in memory, one trial at a time. */
static void reference(const nb_study_config *c, outcome *o)
{
    nb_study *s;
    nb_error err;
    assert_int_equal(nb_study_open(&s, NULL, c, &err), 0);
    assert_true(drive(s, c->trials, 1, 1, 1 << 20));
    outcome_of(s, c->trials, o);
    nb_study_close(s);
}

static const nb_sampler SAMPLERS[] = {NB_SAMPLER_RANDOM, NB_SAMPLER_GRID, NB_SAMPLER_TPE};
static const nb_prune_kind PRUNERS[] = {NB_PRUNE_NONE, NB_PRUNE_MEDIAN, NB_PRUNE_ASHA};

/* 1, 2, 3 or 5 trials at once, reporting in four different orders: the same study. */
static void test_same_trials_whatever_the_order(void **state)
{
    (void)state;
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++) {
            nb_study_config c = config(SAMPLERS[a], PRUNERS[b], 16);
            outcome want, got;
            reference(&c, &want);
            assert_true(want.best >= 0);
            static const int workers[] = {2, 3, 5};
            for (int w = 0; w < 3; w++)
                for (uint64_t order = 1; order <= 4; order++) {
                    nb_study *s;
                    nb_error err;
                    assert_int_equal(nb_study_open(&s, NULL, &c, &err), 0);
                    assert_true(drive(s, c.trials, workers[w], order * 977, 1 << 20));
                    outcome_of(s, c.trials, &got);
                    assert_same_outcome(&want, &got, c.trials);
                    nb_study_close(s);
                }
        }
}

/* A study in a directory stopped after k steps (its runs dropped, as a killed tuner's) and
 * opened again, for many k: the same end as without a stop; and its journal read back whole
 * gives the same trials. */
static void test_stop_and_continue(void **state)
{
    (void)state;
    for (int a = 0; a < 3; a++) {
        nb_study_config c = config(SAMPLERS[a], NB_PRUNE_ASHA, 12);
        outcome want, got, again;
        reference(&c, &want);
        for (int k = 1; k < 60; k += 7) {
            char *dir = temp_dir();
            nb_study *s;
            nb_error err;
            assert_int_equal(nb_study_open(&s, dir, &c, &err), 0);
            int done = drive(s, c.trials, 3, (uint64_t)k, k);
            nb_study_close(s);
            for (int round = 0; !done; round++) {
                assert_true(round < 100);
                assert_int_equal(nb_study_open(&s, dir, &c, &err), 0);
                done = drive(s, c.trials, 3, (uint64_t)(k + round), k + 8 * (round + 1));
                nb_study_close(s);
            }
            assert_int_equal(nb_study_open(&s, dir, &c, &err), 0);
            outcome_of(s, c.trials, &got);
            assert_same_outcome(&want, &got, c.trials);
            /* Finished: nothing more to ask. */
            int i;
            nb_search_point p;
            assert_int_equal(nb_study_ask(s, &i, &p, &err), 0);
            nb_study_close(s);
            assert_int_equal(nb_study_open(&s, dir, &c, &err), 0);
            outcome_of(s, c.trials, &again);
            assert_same_outcome(&want, &again, c.trials);
            nb_study_close(s);
            remove_dir(dir);
        }
    }
}

/* TPE's trial i is given only once trials 0 .. i-1-lag are finished (the first n_startup
 * + lag ones, random search's points, at once), and its point is the one nb_tpe_suggest gives
 * from exactly those. */
static void test_tpe_waits_for_its_lag(void **state)
{
    (void)state;
    for (int lag = 0; lag <= 3; lag++) {
        nb_study_config c = config(NB_SAMPLER_TPE, NB_PRUNE_NONE, 16);
        c.tpe_lag = lag;
        int startup = c.tpe.n_startup, free_ones = startup + lag;
        nb_study *s;
        nb_error err;
        assert_int_equal(nb_study_open(&s, NULL, &c, &err), 0);
        nb_search_point pts[16];
        int i;
        for (int k = 0; k < free_ones; k++) {
            assert_int_equal(nb_study_ask(s, &i, &pts[k], &err), 1);
            assert_int_equal(i, k);
            nb_search_point random;
            nb_search_sample(&c.space, c.seed, k, &random);
            assert_memory_equal(&random, &pts[k], sizeof random);
            assert_int_equal(nb_study_started(s, i, NULL, 0, -1, 0, &err), 0);
        }
        assert_int_equal(nb_study_ask(s, &i, &pts[free_ones], &err), 0);
        assert_int_equal(nb_study_waiting(s), 1);
        /* Finishing them one at a time lets one more start each time, once n_startup are. */
        nb_tpe_trial done[16];
        int ended[16], n;
        for (int k = 0; k + lag + 1 < 16; k++) {
            assert_int_equal(nb_study_tell_epoch(s, k, EPOCHS, EPOCHS,
                                                 figures_at(&pts[k], EPOCHS), 1, &err), 1);
            assert_int_equal(nb_study_tell_end(s, k, NB_TRIAL_COMPLETE,
                                               figures_at(&pts[k], EPOCHS), EPOCHS, 1, NULL,
                                               &err), 0);
            assert_int_equal(nb_study_decide(s, ended, &n, &err), 0);
            assert_int_equal(n, 1);
            done[k].point = pts[k];
            done[k].score = accuracy_at(&pts[k], EPOCHS);
            done[k].pruned_epoch = 0;
            int next = k + lag + 1;
            if (next < free_ones) {
                assert_int_equal(nb_study_ask(s, &i, &pts[15], &err), 0);
                continue;
            }
            assert_int_equal(nb_study_ask(s, &i, &pts[next], &err), 1);
            assert_int_equal(i, next);
            nb_search_point want;
            assert_int_equal(nb_tpe_suggest(&c.space, &c.tpe, done, k + 1, c.seed, next, &want,
                                             &err), 0);
            assert_memory_equal(&want, &pts[next], sizeof want);
            assert_int_equal(nb_study_started(s, i, NULL, 0, -1, 0, &err), 0);
            assert_int_equal(nb_study_ask(s, &i, &pts[15], &err), 0);
        }
        nb_study_close(s);
    }
}

/* The journal holds each event once, as written; damage to a line is refused with the file and
 * the line, and a line cut short at the end is cut off. */
static void test_journal_read_back_and_damage(void **state)
{
    (void)state;
    nb_study_config c = config(NB_SAMPLER_RANDOM, NB_PRUNE_MEDIAN, 6);
    char *dir = temp_dir();
    nb_study *s;
    nb_error err;
    assert_int_equal(nb_study_open(&s, dir, &c, &err), 0);
    assert_true(drive(s, c.trials, 2, 3, 1 << 20));
    nb_study_close(s);
    char path[512], line[4096];
    snprintf(path, sizeof path, "%s/journal.jsonl", dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    int lines = 0, starts = 0, ends = 0;
    while (fgets(line, sizeof line, f)) {
        lines++;
        starts += strstr(line, "\"params\"") && !strstr(line, "\"epochs\"");
        ends += strstr(line, "\"complete\"") || strstr(line, "\"pruned\"");
    }
    fclose(f);
    assert_int_equal(starts, 6);
    assert_int_equal(ends, 6);
    /* A torn last line: cut off when opened. */
    f = fopen(path, "a");
    fputs("{\"trial\":2,\"sta", f);
    fclose(f);
    assert_int_equal(nb_study_open(&s, dir, &c, &err), 0);
    nb_study_close(s);
    f = fopen(path, "r");
    int after = 0;
    while (fgets(line, sizeof line, f))
        after++;
    fclose(f);
    assert_int_equal(after, lines);
    /* A damaged line: refused, naming the file and the line. */
    f = fopen(path, "a");
    fputs("{\"trial\":99,\"state\":\"running\"}\n", f);
    fclose(f);
    assert_int_equal(nb_study_open(&s, dir, &c, &err), -1);
    assert_null(s);
    char want[600];
    snprintf(want, sizeof want, "%s:%d:", path, lines + 1);
    assert_non_null(strstr(err.msg, want));
    remove_dir(dir);
}

/* Misuse is refused with a message, and nothing is written. */
static void test_refusals(void **state)
{
    (void)state;
    nb_study *s;
    nb_error err;
    nb_study_config c = config(NB_SAMPLER_RANDOM, NB_PRUNE_NONE, 4);
    nb_study_config bad = c;
    bad.trials = 0;
    assert_int_equal(nb_study_open(&s, NULL, &bad, &err), -1);
    bad = c;
    bad.space.n = 0;
    assert_int_equal(nb_study_open(&s, NULL, &bad, &err), -1);
    bad = c;
    bad.sampler = NB_SAMPLER_TPE;
    bad.rounds = 2;
    assert_int_equal(nb_study_open(&s, NULL, &bad, &err), -1);
    bad = c;
    bad.objective = NB_METRIC_RMSE;
    assert_int_equal(nb_study_open(&s, NULL, &bad, &err), -1);
    assert_non_null(strstr(err.msg, "rmse"));
    assert_int_equal(nb_study_open(&s, NULL, &c, &err), 0);
    assert_int_equal(nb_study_started(s, 1, NULL, 0, -1, 0, &err), -1);
    nb_trial_figures f = {0.5, 0.5, 0.5};
    assert_int_equal(nb_study_tell_epoch(s, 9, 1, 1, f, 1, &err), -1);
    assert_int_equal(nb_study_tell_end(s, 0, NB_TRIAL_PRUNED, f, 1, 1, NULL, &err), -1);
    assert_int_equal(nb_study_best(s), -1);
    nb_study_close(s);
}

/* Coarse to fine: round 2 waits for round 1, and its points lie in a narrower space. */
static void test_rounds(void **state)
{
    (void)state;
    nb_study_config c = config(NB_SAMPLER_RANDOM, NB_PRUNE_NONE, 8);
    c.rounds = 2;
    nb_study *s;
    nb_error err;
    assert_int_equal(nb_study_open(&s, NULL, &c, &err), 0);
    nb_search_point p[8];
    int i;
    for (int k = 0; k < 4; k++) {
        assert_int_equal(nb_study_ask(s, &i, &p[k], &err), 1);
        assert_int_equal(nb_study_started(s, i, NULL, 0, -1, 0, &err), 0);
    }
    assert_int_equal(nb_study_ask(s, &i, &p[4], &err), 0);
    int ended[8], n;
    for (int k = 0; k < 4; k++) {
        for (int e = 1; e <= EPOCHS; e++)
            assert_int_equal(nb_study_tell_epoch(s, k, e, EPOCHS, figures_at(&p[k], e), e,
                                                 &err), 1);
        assert_int_equal(nb_study_tell_end(s, k, NB_TRIAL_COMPLETE, figures_at(&p[k], EPOCHS),
                                           EPOCHS, EPOCHS, NULL, &err), 0);
        /* Round 2 waits for the whole of round 1. */
        assert_int_equal(nb_study_decide(s, ended, &n, &err), 0);
        assert_int_equal(nb_study_ask(s, &i, &p[4], &err), k == 3);
    }
    assert_int_equal(i, 4);
    assert_int_equal(nb_study_started(s, i, NULL, 0, -1, 0, &err), 0);
    /* An interrupted trial is given again, with its point. */
    assert_int_equal(nb_study_tell_interrupted(s, 4, "a test", 1, &err), 0);
    assert_true(drive(s, 8, 2, 5, 1 << 20));
    nb_trial_info info;
    double lo = 1, hi = 0;
    for (int k = 4; k < 8; k++) {
        assert_int_equal(nb_study_trial(s, k, &info), 0);
        assert_int_equal(info.round, 1);
        lo = fmin(lo, log10(info.point.v[0]));
        hi = fmax(hi, log10(info.point.v[0]));
    }
    assert_true(hi - lo < 4);
    nb_study_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_trials_whatever_the_order),
        cmocka_unit_test(test_stop_and_continue),
        cmocka_unit_test(test_tpe_waits_for_its_lag),
        cmocka_unit_test(test_journal_read_back_and_damage),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_rounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

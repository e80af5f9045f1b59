/* The configurations of a study's trials, and when each can be known: sampled (or laid on a
 * grid) from the search space, round by round, each round after the first in a space narrowed
 * around the best trials of the rounds before it (coarse to fine); or drawn by TPE from the
 * results of the trials before it (--sampler tpe).
 *
 * What a trial's configuration depends on, and so what it waits for (the wait rule), is what
 * keeps a study's trials the same whatever --workers and the timing, and across a kill and a
 * resume: only the seed, the trial's number and final results (a trial's end in the journal).
 *   random, grid: the seed and the number; in round r >= 1, the results of rounds 0..r-1.
 *   tpe: trial i learns from trials 0..n-1, n = i - L (L: --tpe-lag), once n >= 10 (TPE's
 *        n_startup); before that its point is the random sampler's. A complete trial counts
 *        with its objective, a pruned one with its objective at the epoch it reached (and that
 *        epoch), a failed one as having none. */
#ifndef NABLA_CLI_TUNE_PLAN_H
#define NABLA_CLI_TUNE_PLAN_H

#include "tune_study.h"

/* Whether trial i's configuration can be known now: it has one already (it started), or the
 * results it depends on (above) are all final. */
int study_trial_ready(const study *s, int i);

/* Gives trial i its configuration, which must be ready (study_trial_ready); a trial that has
 * one keeps it. A round after the first writes its space to the journal when it starts.
 * Returns 0, or -1 with err. */
int study_plan_trial(study *s, int i, nb_error *err);

#endif /* NABLA_CLI_TUNE_PLAN_H */

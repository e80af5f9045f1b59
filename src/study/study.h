/* The study engine's state (nabla.h: nb_study), for the library's files and the program,
 * which reads the trials and the journal's path from it. */
#ifndef NABLA_STUDY_STUDY_H
#define NABLA_STUDY_STUDY_H

#include "nabla.h"
#include "study/journal.h"
#include "study/trial.h"

struct nb_study {
    nb_study_config cfg;
    char *dir;
    study_journal journal;
    trial *trials;                /* cfg.trials of them */
    nb_search_space *round_space; /* cfg.rounds of them; round r's is known once it starts */
    int rounds_known;
    double *scratch;              /* cfg.trials numbers: the scores a pruning compares */
};

/* The epochs of a trial at p (hooks.epochs, or cfg->epochs); -1 on failure. */
int study_trial_epochs(const nb_study_config *cfg, const nb_search_point *p);
/* hooks.ends_early's answer for p (0 without the hook). */
int study_trial_ends_early(const nb_study_config *cfg, const nb_search_point *p);

/* The trials' seconds so far, and the worker-seconds their starts waited for results, summed
 * (best.json's trial_seconds and waited_seconds). */
void study_seconds(const nb_study *s, double *trial_seconds, double *waited);

/* TPE: how many earlier trials' results trial i's configuration depends on (trials 0..n-1,
 * n = i - tpe_lag), or 0 while n is below tpe.n_startup (its point is random search's). 0 for
 * the other samplers. */
int study_tpe_given(const nb_study_config *cfg, int i);

/* Gives trial i (of round r) its configuration: round r's space first (narrowed from the
 * rounds before it, which must be finished; its space journaled), then the sampler's point:
 * random, the round's grid, or TPE's from trials 0 .. i-1-tpe_lag (finished). 0, or -1. */
int study_plan(nb_study *s, int i, nb_error *err);

/* Whether trial i's configuration can be planned now: the rounds before its own finished,
 * and for TPE the trials it learns from. */
int study_plannable(const nb_study *s, int i);

#endif /* NABLA_STUDY_STUDY_H */

/* The configurations of a study's trials: sampled (or laid on a grid) from the search space,
 * round by round, each round after the first in a space narrowed around the best trials of the
 * rounds before it (coarse to fine). */
#ifndef NABLA_CLI_TUNE_PLAN_H
#define NABLA_CLI_TUNE_PLAN_H

#include "tune_study.h"

/* The configurations of round r's trials (sampled, or taken from the journal); the space of
 * round r is narrowed from the finished trials of the rounds before it, so they must be done.
 * A round after the first writes its space to the journal. Returns 0, or -1 with err. */
int study_plan_round(study *s, int r, nb_error *err);

#endif /* NABLA_CLI_TUNE_PLAN_H */

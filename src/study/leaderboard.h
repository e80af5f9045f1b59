/* The order of a study's leaderboard, shared by `nabla tune` and `nabla report`. */
#ifndef NABLA_STUDY_LEADERBOARD_H
#define NABLA_STUDY_LEADERBOARD_H

#include "study/trial.h"

/* Trial numbers 0..n-1, best first: complete trials, then pruned ones, then the rest (failed,
 * interrupted, running; pending ones, not started, only with_pending); within each, the
 * objective (objective_score: higher is better, NaN below every number), then on a tie the
 * lower dev loss (NaN last), then the lower trial number. malloc'd, *count of them; NULL when
 * out of memory. */
int *leaderboard_rank(const trial *trials, int n, nb_metric objective, int with_pending,
                      int *count);

#endif /* NABLA_STUDY_LEADERBOARD_H */

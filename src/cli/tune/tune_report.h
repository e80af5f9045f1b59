/* The end of a study: leaderboard and importance on stdout, the best model measured on the
 * test set, best.json. */
#ifndef NABLA_CLI_TUNE_REPORT_H
#define NABLA_CLI_TUNE_REPORT_H

#include <stdio.h>

#include "cli/tune/tune_study.h"

/* Trial numbers from best to worst: complete trials by the study's objective, then pruned,
 * then failed. A malloc'd array of opt->trials numbers, or NULL when out of memory. */
int *study_ranking(const study *s);

/* "name=value name=value ..." */
void print_params(FILE *out, const nb_search_space *space, const nb_search_point *p);

/* Prints the leaderboard and the importance ranking, evaluates the best model on the test set,
 * with --refit refits it (tune_refit.h) and evaluates the refit, and writes STUDY/best.json.
 * Returns 0, -1 with err (no trial completed, a write failed, the refit failed: then best.json
 * is not written), or the stop flag's value (stop_signals.h) when a stop signal came during the
 * test evaluations or the refit: then best.json is not written, and err says what was under
 * way and how to go on ("the refit of ...; ... run the same command again ..."). */
int study_report(const study *s, nb_error *err);

#endif /* NABLA_CLI_TUNE_REPORT_H */

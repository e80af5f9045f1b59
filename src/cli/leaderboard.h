/* The order of a study's leaderboard, shared by `nabla tune` and `nabla report`. */
#ifndef NABLA_CLI_LEADERBOARD_H
#define NABLA_CLI_LEADERBOARD_H

/* Groups, best first. */
enum { RANK_COMPLETE, RANK_PRUNED, RANK_OTHER };

/* Sorts order[0..n) (trial numbers) best first: by group, then by dev accuracy (higher first;
 * NaN last), then by trial number. group[t] and accuracy[t] are indexed by trial number.
 * Returns 0, or -1 when out of memory (order left as it was). */
int leaderboard_order(const int *group, const double *accuracy, int *order, int n);

#endif /* NABLA_CLI_LEADERBOARD_H */

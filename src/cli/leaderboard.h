/* The order of a study's leaderboard, shared by `nabla tune` and `nabla report`. */
#ifndef NABLA_CLI_LEADERBOARD_H
#define NABLA_CLI_LEADERBOARD_H

/* Groups, best first. */
enum { RANK_COMPLETE, RANK_PRUNED, RANK_OTHER };

/* A trial as the leaderboard sees it. */
typedef struct leaderboard_entry {
    int group;         /* RANK_* */
    double score;      /* its objective_score (tune_objective.h): higher is better; NaN ranks
                        * below every number */
} leaderboard_entry;

/* Fills *e for trial i and returns 1, or returns 0 to leave trial i out. */
typedef int leaderboard_fn(const void *ctx, int i, leaderboard_entry *e);

/* Trial numbers 0..n-1 that `entry` keeps, best first: by group, then by score (higher first),
 * then by number. malloc'd, *count of them; NULL when out of memory. */
int *leaderboard_rank(int n, leaderboard_fn *entry, const void *ctx, int *count);

#endif /* NABLA_CLI_LEADERBOARD_H */

/* How many threads a command runs. Results do not depend on the count (README, "Speed"); only
 * the time does, and threads beyond the cores a process may run on only take turns on them:
 * `--threads 10000` on 2 cores made an epoch take minutes. So a count above the cores is cut
 * down to them, with a note on stderr, rather than refused: a script written for a bigger
 * machine still runs, with the same results. */
#ifndef NABLA_CLI_THREADS_H
#define NABLA_CLI_THREADS_H

/* The cores this process may run on (sched_getaffinity: taskset, a batch system's cpuset,
 * mpirun's binding of a rank), at least 1; the default thread count of train and eval. */
int cli_usable_cores(void);

/* The cores a trial of `nabla tune` may run on: the tuner's (cli_usable_cores), or under mpirun
 * every core of the machine, which a trial takes back from its rank's binding
 * (trial_process.c). */
int cli_trial_cores(void);

/* `threads` capped at `cores`. When it is cut, and `say` is set, one line on stderr:
 * "nabla <cmd>: note: --threads 10000, but <who> may run on 2 cores: using 2 threads (results
 * do not depend on the thread count)". */
int cli_cap_threads(const char *cmd, int threads, int cores, const char *who, int say);

#endif /* NABLA_CLI_THREADS_H */

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

/* When a memory check ran the library on fewer threads than asked (memcheck.h: results do not
 * depend on the count, memory does), one line on stderr, "nabla <cmd>: note: using 1 thread,
 * not 2: <why> (results do not depend on the thread count)", and *threads becomes the count
 * in use. */
void cli_say_threads_lowered(const char *cmd, int *threads);

/* --threads N: a whole number from 1 to CLI_MAX_THREADS, else a usage error of `cmd` (exit 2)
 * naming the option. Counts above the cores are accepted here and cut down by cli_cap_threads;
 * counts beyond any machine's (more than 65536) are refused, whatever their size. */
#define CLI_MAX_THREADS 65536
int cli_parse_threads(const char *cmd, const char *text, int *threads);

#endif /* NABLA_CLI_THREADS_H */

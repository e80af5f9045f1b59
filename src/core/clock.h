/* The one monotonic clock, for durations and deadlines (not part of the public API): the
 * training loop's timings, checkpoint pacing, lock waits, progress redraws, trial times and
 * the MPI job's watchdog all read it. */
#ifndef NABLA_CLOCK_H
#define NABLA_CLOCK_H

/* Seconds since an arbitrary start (CLOCK_MONOTONIC): only differences mean anything. */
double nb_monotonic_seconds(void);

#endif /* NABLA_CLOCK_H */

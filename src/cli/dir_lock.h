/* One writer per directory: a run directory (train, train --resume, a tune trial, rank 0 under
 * mpirun) and a study (nabla tune) are each written by one process at a time.
 *
 * The lock is DIR/.lock, flock'd by its holder for the whole of its life (the kernel releases
 * it when the process ends, however it ends: kill -9 too) and holding one line that says who
 * holds it, for the message that refuses the next one:
 *   pid 4242 on host h since 2025-06-01 12:00:05 +0200: nabla train --data moons --out x
 * The line is written just after the lock is taken and emptied just before it is released, so a
 * reader may find it empty (a holder that has not written it yet) or stale (written by an
 * earlier holder, killed): the message says which. */
#ifndef NABLA_CLI_DIR_LOCK_H
#define NABLA_CLI_DIR_LOCK_H

#include "nabla.h"

#define DIR_LOCK_FILE ".lock"

typedef struct dir_lock {
    int fd;   /* -1: not held */
} dir_lock;

#define DIR_LOCK_NONE {-1}

enum { DIR_LOCK_TAKEN = 0, DIR_LOCK_FAILED = -1, DIR_LOCK_HELD = -2 };

/* Takes dir's lock (dir must exist; DIR/.lock is created, and must be a regular file). While
 * another process holds it, waits up to wait_seconds (0: not at all), saying once on stderr
 * that it waits: for a process that expects the holder to be ending. Returns DIR_LOCK_TAKEN;
 * DIR_LOCK_HELD with "DIR is in use by another process: <its line>" in err; or DIR_LOCK_FAILED
 * with err (cannot create or lock the file). */
int dir_lock_take(dir_lock *l, const char *dir, double wait_seconds, nb_error *err);

/* Empties the line and releases the lock; nothing if it is not held. */
void dir_lock_release(dir_lock *l);

#endif /* NABLA_CLI_DIR_LOCK_H */

/* One writer per directory: a run directory (train, train --resume, a tune trial, rank 0 under
 * mpirun) and a study (nabla tune) are each written by one process at a time.
 *
 * The lock is DIR itself and DIR/.lock, both flock'd by their holder for the whole of its life
 * (the kernel releases them when the process ends, however it ends: kill -9 too; the directory's
 * lock holds when .lock is removed behind its holder's back) and holding one line that says who
 * holds it, for the message that refuses the next one:
 *   pid 4242 on host h since 2025-06-01 12:00:05 +0200: nabla train --data moons --out x
 * The line is written just after the lock is taken and emptied just before it is released, so a
 * reader may find it empty (a holder that has not written it yet) or stale (written by an
 * earlier holder, killed): the message says which.
 *
 * A lock is a file, and a file can be removed or replaced behind its holder's back (rm, mv, or
 * a link that makes some write land on it: nabla refuses those, dir_kind.h); the next process
 * would then lock a new file and get in. So .lock must be a regular file with one link (a hard
 * link's other name would be truncated and written), the file locked must still be DIR/.lock
 * once the lock is taken (else it is taken again), and the holder checks that it still is
 * (dir_lock_check) before each thing it writes that another writer would clash with: a run at
 * each checkpoint, a tuner before each journal line. Nabla itself never removes a lock. */
#ifndef NABLA_CLI_DIR_LOCK_H
#define NABLA_CLI_DIR_LOCK_H

#include "nabla.h"

#define DIR_LOCK_FILE ".lock"

typedef struct dir_lock {
    int fd;       /* DIR/.lock, flock'd; -1: not held */
    int dir_fd;   /* DIR itself, flock'd too while held */
    char *path;   /* DIR/.lock, DIR absolute (a resumed run changes its working directory) */
    char *dir;    /* DIR as it was given, for messages */
} dir_lock;

#define DIR_LOCK_NONE {-1, -1, NULL, NULL}

enum { DIR_LOCK_TAKEN = 0, DIR_LOCK_FAILED = -1, DIR_LOCK_HELD = -2 };

/* Takes dir's lock (dir must exist; DIR/.lock is created, and must be a regular file with one
 * link). While
 * another process holds it, waits up to wait_seconds (0: not at all), saying once on stderr
 * that it waits: for a process that expects the holder to be ending. Returns DIR_LOCK_TAKEN;
 * DIR_LOCK_HELD with "DIR is in use by another process: <its line>" in err; or DIR_LOCK_FAILED
 * with err (cannot create or lock the file). */
int dir_lock_take(dir_lock *l, const char *dir, double wait_seconds, nb_error *err);

/* Whether the lock is still this process's: DIR/.lock is still the file it locked (not removed,
 * not replaced). Returns 0 (or when not held), or -1 with a message that says another process
 * may be writing in DIR now. */
int dir_lock_check(const dir_lock *l, nb_error *err);

/* Empties the line and releases the lock; nothing if it is not held. */
void dir_lock_release(dir_lock *l);

#endif /* NABLA_CLI_DIR_LOCK_H */

/* Whole-file I/O shared by the modules that write results: safetensors, summaries, journals. */
#ifndef NABLA_FILEIO_H
#define NABLA_FILEIO_H

#include <stddef.h>

#include "nabla.h"

/* Writes n bytes to path so that a reader sees either the old file or the whole new one, never
 * a half-written file: the bytes go to a temporary file in the same directory, which is
 * flushed, fsync'd and renamed over path; then the directory is fsync'd so the rename itself
 * survives a crash. On failure the temporary file is removed and an existing file at path is
 * left as it was. Returns 0, or -1 with a message naming path. */
int nb_write_file_atomic(const char *path, const void *data, size_t n, nb_error *err);

/* The same for a file made of several pieces of memory, written one after the other, so that a
 * large file need not be assembled in one buffer first. */
typedef struct nb_file_part {
    const void *data;
    size_t size;
} nb_file_part;
int nb_write_parts_atomic(const char *path, const nb_file_part *parts, int n_parts,
                          nb_error *err);

/* Opens path for reading when it is a regular file (after following symbolic links), and
 * returns the descriptor; else -1 with a message naming path. FIFOs, devices and sockets are
 * refused: a FIFO without a writer would block the open forever, and /dev/zero never ends. */
/* fsyncs the directory that holds path, making a rename into it durable. */
int nb_sync_parent_dir(const char *path, nb_error *err);

int nb_open_regular(const char *path, nb_error *err);

/* Reads a whole regular file into a new malloc'd buffer (*data, to free(); one extra zero byte
 * follows the n bytes, so text can be used as a C string). Returns 0, or -1 with a message
 * naming path (missing, a directory, unreadable, out of memory). */
int nb_read_file(const char *path, unsigned char **data, size_t *n, nb_error *err);

/* The temporary files being written are on record, for a signal handler that ends the process
 * at once (a second Ctrl-C) and must not leave them behind: nb_write_parts_atomic registers
 * its temporary before creating it and forgets it once it is renamed or removed; a caller that
 * makes a temporary file of its own does the same. nb_remove_unfinished_files removes every
 * file on record; it is async-signal-safe (unlink only), and meant for a handler that runs on
 * the thread doing the writing, or that stops the process right after (a write that goes on
 * in another thread meanwhile may recreate nothing: its file is open, and unlinked). */
void nb_temp_register(const char *tmp);
void nb_temp_forget(const char *tmp);
void nb_remove_unfinished_files(void);

#endif /* NABLA_FILEIO_H */

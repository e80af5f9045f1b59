/* File I/O shared by everything that writes results (safetensors, checkpoints, summaries,
 * journals, reports) and by the readers of whole files.
 *
 * One rule decides how every file nabla writes is written, by what its path leads to
 * (symbolic links followed, as `echo > path` follows them):
 * - nothing, or a regular file: replaced atomically. The bytes go to a temporary file in the
 *   same directory, which is fsync'd and renamed over the file, and the directory is fsync'd
 *   so the rename survives a crash: a reader sees the old file or the whole new one, never a
 *   half-written one. An existing file keeps its permission bits.
 * - a symbolic link, or a chain of them: followed, and its final target written by this rule,
 *   the temporary next to the target (in the target's own directory); a dangling link gets
 *   its target created.
 * - a character device (/dev/null, a terminal) or a FIFO: written through, not atomically:
 *   opened without creating or truncating, and left what it is. A FIFO nobody reads is an
 *   error, not a hang.
 * - anything else (a directory, a socket, a block device): refused, with one line naming the
 *   path and what it is.
 * And one file, one name: a path that leads (through links) to the file another path this
 * process writes by the rule leads to is refused, as one would replace the other (devices and
 * FIFOs, written through in order, excepted). nb_output_check records its path as written. */
#ifndef NABLA_FILEIO_H
#define NABLA_FILEIO_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "nabla.h"

/* A check a program adds to the rule for a path that is a symbolic link, made before anything
 * is written (the nabla program: its own files are never written through a link; see
 * src/cli/common/dir_kind.h). Returns 0, or -1 with a message. NULL, the default: no check. */
typedef int (*nb_link_guard)(const char *path, nb_error *err);
void nb_set_link_guard(nb_link_guard guard);

/* "a directory", "a FIFO", "a symbolic link", ... for a stat mode, for messages. */
const char *nb_file_kind(mode_t mode);

/* Checks, without writing anything, that path can be written by the rule: it is not refused,
 * and the directory of an atomic write exists and is writable (a device or FIFO: it is
 * writable). Returns 0, or -1 with a message naming path. */
int nb_output_check(const char *path, nb_error *err);

/* A file being written by the rule: begin, write, then commit (or abort). */
typedef struct nb_output {
    char *name;    /* path as the caller gave it, for messages */
    char *target;  /* what is written: path with its symbolic links followed */
    char *tmp;     /* the temporary file that will replace target; NULL when written through */
    int fd;
} nb_output;

/* Opens path for writing by the rule (refusing what it refuses). Returns 0, or -1 with a
 * message naming path and nothing created. */
int nb_output_begin(nb_output *o, const char *path, nb_error *err);
int nb_output_write(nb_output *o, const void *data, size_t n, nb_error *err);
/* Finishes the file: fsync, rename into place and fsync of the directory, or for a device or
 * FIFO just the close. With keep_fd, the file stays open (for appending: an atomic write's
 * descriptor has O_APPEND) and its descriptor goes to *keep_fd. On failure the temporary is
 * removed and an earlier file is left as it was. The output is released either way. */
int nb_output_commit(nb_output *o, int *keep_fd, nb_error *err);
/* Gives up: removes the temporary file; the file at path is as it was. */
void nb_output_abort(nb_output *o);

/* Writes n bytes to path by the rule, in one piece or several (so that a large file need not
 * be assembled in one buffer first). Returns 0, or -1 with a message naming path. */
int nb_write_file_atomic(const char *path, const void *data, size_t n, nb_error *err);
typedef struct nb_file_part {
    const void *data;
    size_t size;
} nb_file_part;
int nb_write_parts_atomic(const char *path, const nb_file_part *parts, int n_parts,
                          nb_error *err);

/* Opens path to append to by the rule (a log or journal that grows line by line): a missing
 * file is created, a regular file keeps its contents, a device or FIFO is written through.
 * Returns the descriptor, or -1 with a message naming path. */
int nb_open_append(const char *path, nb_error *err);

/* write() until all n bytes are out (through EINTR and partial writes). A FIFO whose reader
 * went away gives -1 with errno EPIPE, without the SIGPIPE that would kill the process.
 * Once the stop flag given to nb_set_write_stop is set (a program stopping on a signal), a
 * write to anything but a regular file (a pipe, a FIFO, a terminal, a socket) no longer
 * waits for its reader: what can go out at once does (polled, in pieces of at most PIPE_BUF
 * bytes, which a pipe with room takes whole), and when the rest would wait (a reader that is
 * paused or stopped), or the signal interrupts a write that waits, the write gives up: -1
 * with errno EINTR, the bytes not written dropped. So one stop signal takes effect even while
 * the program is blocked writing. */
int nb_write_all(int fd, const void *data, size_t n);

/* The flag that makes writes stop waiting (see nb_write_all); NULL, the default: none. */
void nb_set_write_stop(volatile sig_atomic_t *stop);

/* fsync where the file can be synced: a FIFO or a terminal cannot (EINVAL), which is no
 * failure. Returns 0, or -1 with errno. */
int nb_fsync_output(int fd);

/* fsyncs the directory that holds path, making a rename into it durable. */
int nb_sync_parent_dir(const char *path, nb_error *err);

/* Opens path for reading when it is a regular file (after following symbolic links), and
 * returns the descriptor, with the file's size in *size when size is not NULL; else -1 with a
 * message naming path. FIFOs, devices and sockets are refused: a FIFO without a writer would
 * block the open forever, and /dev/zero never ends. */
int nb_open_regular(const char *path, uint64_t *size, nb_error *err);

/* Reads a whole regular file into a new malloc'd buffer (*data, to free(); one extra zero byte
 * follows the n bytes, so text can be used as a C string). Returns 0, or -1 with a message
 * naming path (missing, a directory, unreadable, out of memory). */
int nb_read_file(const char *path, unsigned char **data, size_t *n, nb_error *err);

/* The same for data given by the user to read once: also "-" for standard input (refused when
 * it is a terminal, named "stdin" in messages) and a FIFO or pipe (/dev/stdin), read to its
 * end (its open waits for a writer, as the user asked to read it). Directories and devices are
 * refused as nb_read_file refuses them. */
int nb_read_input(const char *path, unsigned char **data, size_t *n, nb_error *err);

/* The temporary files being written are on record, for a signal handler that ends the process
 * at once (a second Ctrl-C) and must not leave them behind: nb_output_begin (and so every
 * atomic write above) records its temporary before creating it, and it is forgotten once it is
 * renamed into place or removed. nb_remove_unfinished_files removes every file on record; it
 * is async-signal-safe (unlink only), and meant for a handler that runs on the thread doing
 * the writing, or that stops the process right after (a write that goes on in another thread
 * meanwhile may recreate nothing: its file is open, and unlinked). */
void nb_remove_unfinished_files(void);


#endif /* NABLA_FILEIO_H */

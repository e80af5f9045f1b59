/* The files of a training run: the --out directory, config.json, metrics.jsonl and
 * summary.json. Every file is written so that a reader never sees half of it. */
#ifndef NABLA_CLI_RUN_FILES_H
#define NABLA_CLI_RUN_FILES_H

#include <stddef.h>

#include "io/fileio.h"
#include "nabla.h"

/* "runs/YYYYmmdd-HHMMSS" for the current local time, with "-2", "-3"... appended when that
 * already exists, so that two runs started in the same second do not share files. */
void default_run_dir(char *buf, size_t size);

/* Removes the temporary files ("<name>.tmp.<pid>.<n>") that a run killed while writing one of
 * its files left in dir. */
void remove_stale_temporaries(const char *dir);

/* The files a run writes at its end (model.safetensors, summary.json), which a run in
 * progress does not have: an earlier run's, or those of the run being resumed (which ends
 * later now, or again), would contradict metrics.jsonl until the run writes its own, and an
 * interrupted run would leave them beside its own curves. */
#define RUN_RESULT_FILES {"model.safetensors", "summary.json"}

/* Removes dir's earlier results (RUN_RESULT_FILES) by run_file_remove, a device or FIFO there
 * being left (the run's results are written through it). Returns 0, or -1 with err. */
int results_remove(const char *dir, nb_error *err);

/* Whether dir's results may be written at the run's end: by the rule results_remove follows at
 * its start (nothing there, a regular file, a device or a FIFO; a link put there while the run
 * ran is refused, not followed). Returns 0, or -1 with err naming the file. */
int results_writable(const char *dir, nb_error *err);

/* Appends one line (n bytes, its newline included) to a file that grows line by line, open
 * as fd: one write. Returns 0; -1 with err when it cannot be written; or APPEND_CUT when a stop
 * signal found the file not being read (a FIFO or pipe whose reader does not read: the write
 * gave up, nb_write_all), the line not in it, and err saying so: the caller writes no more
 * lines there (none after a gap) and the stop proceeds, with its checkpoint. */
#define APPEND_CUT 1
int append_run_line(int fd, const char *path, const char *line, size_t n, nb_error *err);

/* A file that grows line by line (metrics.jsonl, trace.jsonl, steps.jsonl): path gets its first
 * n bytes by the output rule (fileio.h: a regular file is replaced atomically, a device or FIFO
 * written through) and stays open for appending. Returns the descriptor, or -1 with err.
 * A regular file is flock'd for as long as it is open: two runs whose files lead to one file
 * (links to a shared file) would otherwise replace and interleave each other's lines. */
int start_appending(const char *path, const char *text, size_t n, nb_error *err);

/* Whether the file the symbolic link path leads to is free of another run writing it line by
 * line (start_appending's flock); a path that is no link is. Returns 0, or -1 with a message
 * naming path. */
int line_file_free(const char *path, nb_error *err);

/* metrics.jsonl: created empty when the run starts (or, resumed, as it was at the checkpoint:
 * metrics_restore) and kept open, then one line per epoch, each appended with a single write
 * (a killed process loses nothing written; the file is fsync'd with each checkpoint, against a
 * power cut). Written by the output rule (fileio.h): a device or FIFO there gets the lines as
 * they come. The log (may be NULL) keeps a copy of the lines, which checkpoints save; a resumed
 * run rewrites the file from its checkpoint's copy, so no epoch is there twice or missing.
 * metrics_start and metrics_restore return the open file's descriptor, or -1 with err. */
typedef struct metrics_log {
    char *text;   /* the lines so far, or NULL */
    size_t len;
} metrics_log;
int metrics_start(const char *path, nb_error *err);
int metrics_restore(const char *path, const char *text, metrics_log *log, nb_error *err);
/* Appends the epoch's line (to the log, and to the file unless fd is -1: one cut short).
 * Returns what append_run_line returns; the line is in the log unless that is -1. */
int metrics_append(int fd, const char *path, const nb_epoch_metrics *m, metrics_log *log,
                   nb_error *err);
/* fsyncs metrics.jsonl (appends are not fsync'd one by one; checkpoints sync it); nothing when
 * fd is -1. */
int metrics_sync(int fd, const char *path, nb_error *err);
void metrics_log_free(metrics_log *log);

/* Whether a run may remove path, an earlier run's file it does not keep: only a regular file
 * (or nothing) is removed. A symbolic link is refused, never followed (what it leads to is not
 * the run's), as is a directory, a socket or a block device; a device or a FIFO too, unless
 * through_ok: a file the run writes through at its end, which holds nothing to remove and is
 * left. Returns 0, or -1 with a message naming path. */
int run_file_removable(const char *path, int through_ok, nb_error *err);
/* Removes path when it is a regular file, once run_file_removable says it may (checked again
 * here, as the directory may have changed since the run's start was checked). */
int run_file_remove(const char *path, int through_ok, nb_error *err);

#endif /* NABLA_CLI_RUN_FILES_H */

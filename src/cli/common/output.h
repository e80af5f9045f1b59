/* Standard output, checked: whatever a command prints, the program knows whether it got out.
 *
 * stdout is block-buffered when it is a pipe or a file, so a write error (a full disk, a closed
 * pipe, /dev/full) shows only when a buffer is flushed: at a printf that fills it, or at a
 * flush. stdout is replaced at the start by a stream of the same buffering whose writes keep
 * the first error's reason (the C library's own keeps only a flag). Every command flushes
 * through output_flush where it must react at once (the progress lines of `nabla train`, the
 * trial lines of `nabla tune`: both stop as on Ctrl-C, with a checkpoint), and main checks
 * once more at the end (output_finish), including the last flush: a command whose output was
 * lost exits 1 with `nabla: cannot write standard output: <reason>`. SIGPIPE is ignored, so a
 * closed pipe is an EPIPE error like any other, not a silent death. */
#ifndef NABLA_CLI_OUTPUT_H
#define NABLA_CLI_OUTPUT_H

/* Called by main first: ignores SIGPIPE, fills descriptors 0, 1 and 2 if they are closed
 * (`nabla help >&-`), so that no file the program opens lands there and receives what is meant
 * for stdout or stderr: stdin gets /dev/null, stdout and stderr a pipe no one reads, whose
 * writes fail (a write to such a stdout is reported as EBADF, "Bad file descriptor") and whose
 * names (/dev/stdout, /dev/stderr) the output rule refuses as a FIFO with no reader, so that
 * `--save-weights /dev/stderr 2>&-` fails instead of writing nowhere. Then replaces stdout by
 * the checked stream. */
void output_start(void);

/* Flushes stdout. Returns 0, or -1 when this or any earlier write to it failed (the failure is
 * kept: once lost, always lost). */
int output_flush(void);

/* The first failure's reason ("Broken pipe"), or NULL while none. */
const char *output_error(void);

/* The command has said on stderr that its output failed (with what it did about it): the end
 * need not say it again. */
void output_failure_told(void);

/* Called by main last, with the command's exit code: flushes stdout, and if any write to it
 * failed, says so (unless the command did) and returns 1 where the command returned 0. Other
 * codes are kept: they say more (a usage error, a run stopped with a checkpoint). Output a stop
 * dropped (stdout was not being read when it came: nb_write_all) is said too. */
int output_finish(int code);

#endif /* NABLA_CLI_OUTPUT_H */

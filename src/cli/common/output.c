/* Standard output, checked (see output.h). */
#define _GNU_SOURCE /* fopencookie */
#include "cli/common/output.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/common/options.h"
#include "io/fileio.h"

static int lost;    /* the errno of the first failed write to stdout; 0 while none */
static int told;    /* the command said so itself */
static int dropped; /* a stop found stdout not being read: what was left to print is dropped */
static int closed_out; /* stdout was closed when the program started */

/* stdout's writes, through which every byte the program prints goes out. The C library's own
 * report of a failed write is a flag (ferror), its errno gone by the time anyone looks when it
 * happened inside a printf; here the reason is kept. A write that waits for a reader that does
 * not read (a pipe into a paused pager, a stopped terminal) goes on waiting until a stop signal
 * comes: then it gives up (nb_write_all), and from there on stdout takes nothing more (no line
 * printed after a gap), which is no failure of the command: the stop proceeds, and the end
 * says what was dropped. */
static ssize_t write_stdout(void *cookie, const char *data, size_t n)
{
    (void)cookie;
    if (dropped)
        return (ssize_t)n;
    if (nb_write_all(STDOUT_FILENO, data, n) != 0) {
        if (errno == EINTR) {
            dropped = 1;
            return (ssize_t)n;
        }
        /* A closed stdout is a pipe without a reader (output_start): say it was closed. */
        if (!lost)
            lost = closed_out && errno == EPIPE ? EBADF : errno;
        return -1;
    }
    return (ssize_t)n;
}

/* A descriptor of fd's own whose writes fail: the write end of a pipe whose read end is closed
 * (EPIPE, SIGPIPE being ignored). Opening it again by name (/dev/stdout, /dev/stderr,
 * /proc/self/fd/N) finds a FIFO with no reader, which the output rule refuses. */
static int broken_pipe_end(void)
{
    int p[2];
    if (pipe(p) != 0)
        return -1;
    /* Above 0..2, which may be the closed ones being filled. */
    int w = fcntl(p[1], F_DUPFD, 3);
    close(p[0]);
    close(p[1]);
    return w;
}

void output_start(void)
{
    signal(SIGPIPE, SIG_IGN);
    int closed[3];
    for (int fd = 0; fd <= 2; fd++)
        closed[fd] = fcntl(fd, F_GETFD) < 0 && errno == EBADF;
    closed_out = closed[STDOUT_FILENO];
    /* Something on each closed descriptor, so that no file the program opens lands there and
     * receives what is meant for stdout or stderr: /dev/null, opened read-only, on stdin (it
     * reads as empty); on stdout and stderr, a pipe no one reads, whose writes fail (EPIPE; the
     * command then says it could not write stdout), and whose name (/dev/stderr) cannot be
     * opened to write into, as /dev/null could: nothing written there is silently lost. */
    if (closed[STDIN_FILENO]) {
        int null = open("/dev/null", O_RDONLY);
        if (null >= 0 && null != STDIN_FILENO) {
            dup2(null, STDIN_FILENO);
            close(null);
        }
    }
    if (closed[STDOUT_FILENO] || closed[STDERR_FILENO]) {
        int w = broken_pipe_end();
        for (int fd = STDOUT_FILENO; w >= 0 && fd <= STDERR_FILENO; fd++)
            if (closed[fd])
                dup2(w, fd);
        if (w >= 0)
            close(w);
    }
    /* Buffered as the C library buffers stdout: by line on a terminal, else in blocks. */
    FILE *out = fopencookie(NULL, "w", (cookie_io_functions_t){.write = write_stdout});
    if (out && setvbuf(out, NULL, isatty(STDOUT_FILENO) ? _IOLBF : _IOFBF, BUFSIZ) == 0)
        stdout = out;
    else if (out)
        fclose(out);
}

int output_flush(void)
{
    if (fflush(stdout) != 0 || ferror(stdout) || lost) {
        if (!lost)
            lost = EIO;   /* (only if stdout could not be replaced) */
        return -1;
    }
    return 0;
}

const char *output_error(void) { return lost ? strerror(lost) : NULL; }

void output_failure_told(void) { told = 1; }

int output_finish(int code)
{
    if (output_flush() == 0 && dropped)
        fprintf(stderr, "nabla: standard output was not being read when the stop came: what "
                        "was left to print there was dropped\n");
    if (output_flush() == 0)
        return code;
    if (!told)
        fprintf(stderr, "nabla: cannot write standard output: %s\n", output_error());
    return code == EXIT_OK ? EXIT_RUNTIME : code;
}

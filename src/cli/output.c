/* Standard output, checked (see output.h). */
#define _GNU_SOURCE /* fopencookie */
#include "output.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fileio.h"
#include "options.h"

static int lost;    /* the errno of the first failed write to stdout; 0 while none */
static int told;    /* the command said so itself */

/* stdout's writes, through which every byte the program prints goes out. The C library's own
 * report of a failed write is a flag (ferror), its errno gone by the time anyone looks when it
 * happened inside a printf; here the reason is kept. A signal that interrupts a write to a
 * full pipe (Ctrl-C while the reader is paused) is no failure: nb_write_all goes on. */
static ssize_t write_stdout(void *cookie, const char *data, size_t n)
{
    (void)cookie;
    if (nb_write_all(STDOUT_FILENO, data, n) != 0) {
        if (!lost)
            lost = errno;
        return -1;
    }
    return (ssize_t)n;
}

void output_start(void)
{
    signal(SIGPIPE, SIG_IGN);
    for (int fd = 0; fd <= 2; fd++)
        if (fcntl(fd, F_GETFD) < 0 && errno == EBADF) {
            int null = open("/dev/null", O_RDONLY);
            if (null >= 0 && null != fd) {
                dup2(null, fd);
                close(null);
            }
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
    if (output_flush() == 0)
        return code;
    if (!told)
        fprintf(stderr, "nabla: cannot write standard output: %s\n", output_error());
    return code == EXIT_OK ? EXIT_RUNTIME : code;
}

/* Standard output, checked (see output.h). */
#include "output.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "options.h"

static int lost;    /* the errno of the first failed write to stdout; 0 while none */
static int told;    /* the command said so itself */

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
}

int output_flush(void)
{
    if (lost)
        return -1;
    errno = 0;
    if (fflush(stdout) != 0 || ferror(stdout)) {
        /* A failure at an implicit flush, inside a printf, left only the flag: its errno is
         * gone, and the flush above had nothing left to write (the library dropped it). */
        lost = errno ? errno : EIO;
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

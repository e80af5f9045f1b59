/* Starting a trial's process (see trial_process.h). */
#define _GNU_SOURCE /* SOCK_CLOEXEC */
#include "trial_process.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include "mpi_comm.h"
#include "options.h"
#include "trial_channel.h"

void exec_nabla(char *const *args)
{
    /* Started by a rank of an MPI job, the child is a process of its own: it must not take
     * itself for one of the job's ranks. */
    launcher_forget();
    execv("/proc/self/exe", args);
    execvp("nabla", args);
    _exit(127);
}

pid_t trial_spawn(char **args, const char *log_path, int *fd)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return -1;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        setpgid(0, 0);
#ifdef __linux__
        prctl(PR_SET_PDEATHSIG, SIGKILL);
#endif
        if (getppid() != parent)
            _exit(EXIT_RUNTIME);
        int log = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        char fd_text[16];
        snprintf(fd_text, sizeof fd_text, "%d", sv[1]);
        if (log < 0 || dup2(log, STDOUT_FILENO) < 0 || dup2(log, STDERR_FILENO) < 0 ||
            fcntl(sv[1], F_SETFD, 0) != 0 || setenv(TRIAL_FD_ENV, fd_text, 1) != 0)
            _exit(EXIT_RUNTIME);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        exec_nabla(args);
    }
    int saved = errno;
    close(sv[1]);
    if (pid < 0) {
        close(sv[0]);
        errno = saved;
        return -1;
    }
    *fd = sv[0];
    return pid;
}

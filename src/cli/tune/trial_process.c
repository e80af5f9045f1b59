/* Starting a trial's process (see trial_process.h). */
#define _GNU_SOURCE /* SOCK_CLOEXEC, sched_setaffinity */
#include "cli/tune/trial_process.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include "io/fileio.h"
#include "cli/mpi/mpi_comm.h"
#include "cli/common/options.h"
#include "cli/common/self_exe.h"
#include "cli/common/stop_signals.h"
#include "cli/common/trial_channel.h"

void exec_nabla(char *const *args)
{
    /* Started by a rank of an MPI job, the child is a process of its own: it must not take
     * itself for one of the job's ranks. */
    launcher_forget();
    /* This same program: under valgrind, /proc/self/exe is valgrind's (self_exe.h). */
    const char *self = self_exe_path();
    if (self)
        execv(self, args);
    _exit(127);
}

/* mpirun binds each rank to a core or a few (Open MPI: to a core when it starts 2 processes or
 * fewer): that binding is for the rank, which only waits for messages. Its trials share every
 * core of the machine with the other ranks' (tune_threads_per_trial counts them so), not the
 * rank's one core. The kernel keeps the mask inside the cores a batch system allows. */
static void use_every_core(void)
{
#ifdef __linux__
    cpu_set_t set;
    CPU_ZERO(&set);
    for (int c = 0; c < CPU_SETSIZE; c++)
        CPU_SET(c, &set);
    sched_setaffinity(0, sizeof set, &set);
#endif
}

pid_t trial_spawn(char **args, const char *log_path, int *fd, nb_error *err)
{
    /* The log is opened here, by the output rule (fileio.h), so that a study's file it cannot
     * write is said as such; the child only puts it in place of its stdout and stderr. */
    int log = nb_open_append(log_path, err);
    if (log < 0)
        return -1;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        nb_fail(err, "cannot make a socket pair for a trial: %s", strerror(errno));
        close(log);
        return -1;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        setpgid(0, 0);
#ifdef __linux__
        prctl(PR_SET_PDEATHSIG, SIGKILL);
#endif
        if (getppid() != parent)
            _exit(EXIT_RUNTIME);
        if (job_size() > 1)
            use_every_core();
        char fd_text[16];
        snprintf(fd_text, sizeof fd_text, "%d", sv[1]);
        if (dup2(log, STDOUT_FILENO) < 0 || dup2(log, STDERR_FILENO) < 0 ||
            fcntl(sv[1], F_SETFD, 0) != 0 || setenv(TRIAL_FD_ENV, fd_text, 1) != 0)
            _exit(EXIT_RUNTIME);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGHUP, SIG_DFL);
        exec_nabla(args);
    }
    int saved = errno;
    close(log);
    close(sv[1]);
    if (pid < 0) {
        close(sv[0]);
        nb_fail(err, "cannot start a trial's process: %s", strerror(saved));
        return -1;
    }
    stop_signals_track(pid);
    *fd = sv[0];
    return pid;
}

void trial_reap(pid_t pid, int *status)
{
    /* Waits without reaping first, so that the pid stays this trial's (not another process's
     * that got it since) for as long as it is on record. */
    siginfo_t info;
    const struct timespec tick = {0, 20 * 1000 * 1000};
    for (;;) {
        info.si_pid = 0;
        if (waitid(P_PID, (id_t)pid, &info, WEXITED | WNOWAIT | WNOHANG) < 0) {
            if (errno == EINTR)
                continue;
            break;   /* not a child of this process (any more): nothing to wait for */
        }
        if (info.si_pid == pid)
            break;
        stop_signals_wake(pid);   /* a trial stopped (SIGSTOP) would never end */
        nanosleep(&tick, NULL);
    }
    stop_signals_untrack(pid);
    int ignored;
    while (waitpid(pid, status ? status : &ignored, 0) < 0 && errno == EINTR) {
    }
}

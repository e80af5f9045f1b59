/* A rank of `mpirun -np N nabla tune` other than 0 (see tune_agent.h). */
#define _GNU_SOURCE /* MSG_DONTWAIT */
#include "cli/tune/tune_agent.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/clock.h"
#include "cli/mpi/mpi_comm.h"
#include "cli/common/options.h"
#include "cli/common/stop_signals.h"
#include "cli/tune/trial_process.h"

/* At most this many bytes of a trial's reports in one message: messages this short go out at
 * once under any MPI (a long one may wait for its receiver). */
#define REPORT_CHUNK 2048

int agent_send(int to, int tag, int slot, int value, const char *text, size_t n, nb_error *err)
{
    char *msg = malloc(8 + n);
    if (!msg)
        return nb_fail(err, "out of memory");
    int32_t head[2] = {slot, value};
    memcpy(msg, head, sizeof head);
    if (n)
        memcpy(msg + 8, text, n);
    int rc = job_send(to, tag, msg, 8 + n, err);
    free(msg);
    return rc;
}

int agent_parse(const char *data, size_t n, int *slot, int *value, const char **text,
                size_t *text_n)
{
    if (n < 8)
        return -1;
    int32_t head[2];
    memcpy(head, data, sizeof head);
    *slot = head[0];
    *value = head[1];
    *text = data + 8;
    *text_n = n - 8;
    return 0;
}

void tune_agents_done(int code)
{
    nb_error err;
    if (job_rank() != 0)
        return;
    for (int r = 1; r < job_size(); r++)
        if (agent_send(r, AGENT_DONE, -1, code, NULL, 0, &err) != 0)
            break; /* the ranks lost touch: job_end aborts the job */
}

/* ---- the agent ---- */

typedef struct child {
    int slot;
    pid_t pid;
    int fd;   /* -1 once its socket closed */
} child;

typedef struct agent {
    child *c;
    int n, cap;
    nb_error *err;
} agent;

/* Child k has ended with `status`: rank 0 hears of it. */
static int ended(agent *a, int k, int status)
{
    int slot = a->c[k].slot;
    a->c[k] = a->c[--a->n];
    return agent_send(0, AGENT_ENDED, slot, status, NULL, 0, a->err);
}

/* Fails to start the trial of `slot`, saying why to rank 0: "rank R (on HOST) " and fmt. */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static int cannot_start(agent *a, int slot, const char *fmt, ...)
{
    char host[256] = "?", what[768], why[1100];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    gethostname(host, sizeof host - 1);
    host[sizeof host - 1] = '\0';
    snprintf(why, sizeof why, "rank %d (on %s) %s", job_rank(), host, what);
    return agent_send(0, AGENT_ENDED, slot, 0, why, strlen(why), a->err);
}

/* AGENT_START: in rank 0's working directory, so the paths mean the same on every rank. */
static int start(agent *a, int slot, const char *text, size_t n)
{
    /* The parts, each ending with a NUL. */
    int parts = 0;
    for (size_t i = 0; i < n; i++)
        parts += text[i] == '\0';
    if (parts < 3 || text[n - 1] != '\0')
        return nb_fail(a->err, "a garbled message from rank 0 (a trial's start)");
    if (a->n == a->cap) {
        int cap = a->cap ? 2 * a->cap : 4;
        child *c = realloc(a->c, (size_t)cap * sizeof *c);
        if (!c)
            return nb_fail(a->err, "out of memory");
        a->c = c;
        a->cap = cap;
    }
    char **args = calloc((size_t)parts, sizeof *args);
    if (!args)
        return nb_fail(a->err, "out of memory");
    const char *cwd = text, *log = cwd + strlen(cwd) + 1;
    int argc = 0;
    for (const char *p = log + strlen(log) + 1; p < text + n; p += strlen(p) + 1)
        args[argc++] = (char *)p;
    char dir[CLI_MAX_PATH];
    snprintf(dir, sizeof dir, "%s", log);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    else
        snprintf(dir, sizeof dir, ".");
    child *c = &a->c[a->n];
    struct stat st;
    int rc = 0;
    nb_error err;
    if (chdir(cwd) != 0)
        rc = cannot_start(a, slot, "cannot enter rank 0's working directory %s: %s; every rank "
                                   "must see the same files", cwd, strerror(errno));
    else if (stat(dir, &st) != 0)
        rc = cannot_start(a, slot, "does not see the trial's directory %s (%s): the study must "
                                   "be on a file system every rank shares, at the same path",
                          dir, strerror(errno));
    else if ((c->pid = trial_spawn(args, log, &c->fd, &err)) < 0)
        rc = cannot_start(a, slot, "cannot start a trial: %s", err.msg);
    else {
        c->slot = slot;
        a->n++;
    }
    free(args);
    return rc;
}

/* What a trial sent, passed on; at its end, how it ended. */
static int relay(agent *a, int k)
{
    child *c = &a->c[k];
    char buf[REPORT_CHUNK];
    ssize_t got = recv(c->fd, buf, sizeof buf, MSG_DONTWAIT);
    if (got < 0 && (errno == EINTR || errno == EAGAIN))
        return 0;
    if (got > 0)
        return agent_send(0, AGENT_REPORT, c->slot, 0, buf, (size_t)got, a->err);
    close(c->fd);
    c->fd = -1;
    int status = 0;
    trial_reap(c->pid, &status);
    return ended(a, k, status);
}

/* Every trial gets `sig`, and the agent waits for them to end. */
static void stop_children(agent *a, int sig)
{
    for (int k = 0; k < a->n; k++)
        stop_signals_send(a->c[k].pid, sig);
    for (int k = 0; k < a->n; k++) {
        if (a->c[k].fd >= 0)
            close(a->c[k].fd);
        trial_reap(a->c[k].pid, NULL);
    }
    a->n = 0;
}

/* One message from rank 0; sets *code on AGENT_DONE. */
static int obey(agent *a, int tag, const char *data, size_t n, int *code)
{
    int slot, value;
    const char *text;
    size_t text_n;
    if (agent_parse(data, n, &slot, &value, &text, &text_n) != 0)
        return nb_fail(a->err, "a garbled message from rank 0");
    switch (tag) {
    case AGENT_START:
        return start(a, slot, text, text_n);
    case AGENT_KILL:
        for (int k = 0; k < a->n; k++)
            if (a->c[k].slot == slot)
                kill(a->c[k].pid, SIGKILL);
        return 0;
    case AGENT_STOP:
        stop_children(a, value);
        return agent_send(0, AGENT_STOPPED, -1, 0, NULL, 0, a->err);
    case AGENT_DONE:
        *code = value;
        return 0;
    default:
        return nb_fail(a->err, "a message from rank 0 with an unknown tag %d", tag);
    }
}

int tune_agent_run(void)
{
    nb_error err;
    agent a = {.err = &err};
    stop_signals_install();
    volatile sig_atomic_t *stop = stop_signal_flag();
    /* Should a call to MPI hold this rank up after a stop signal (a connection to rank 0,
     * gone), the watcher says what the loop below would. */
    job_watch_stops(stop, TUNE_CONTINUE_LINE);
    int told = 0, code = -1, rc = 0;
    double told_at = 0;
    struct pollfd *fds = NULL;
    while (rc == 0 && code < 0) {
        struct pollfd *more = realloc(fds, (size_t)(a.n + 1) * sizeof *fds);
        if (!more) {
            rc = nb_fail(&err, "out of memory");
            break;
        }
        fds = more;
        int n = a.n;
        for (int k = 0; k < n; k++)
            fds[k] = (struct pollfd){.fd = a.c[k].fd, .events = POLLIN};
        /* Rank 0's messages come through MPI, which has no descriptor to wait on: look every
         * 10 ms. */
        int ready = poll(fds, (nfds_t)n, 10);
        /* From the last to the first: relay may move the last child into slot k. */
        for (int k = n - 1; rc == 0 && ready > 0 && k >= 0; k--)
            if (fds[k].revents)
                rc = relay(&a, k);
        int from, tag, got;
        char *data;
        size_t len;
        while (rc == 0 && code < 0 && (got = job_receive(&from, &tag, &data, &len, &err)) != 0) {
            if (got < 0) {
                rc = -1;
                break;
            }
            rc = obey(&a, tag, data, len, &code);
            free(data);
        }
        /* A stop signal here stops the whole study: rank 0 answers with AGENT_STOP. */
        if (rc == 0 && *stop && !told) {
            rc = agent_send(0, AGENT_SIGNAL, -1, (int)*stop, NULL, 0, &err);
            told = 1;
            told_at = nb_monotonic_seconds();
        }
        /* Unless rank 0 is gone (mpirun's SIGTERM when a rank dies): then this rank says so,
         * if it is the first one left, rather than wait for mpirun's SIGKILL. */
        if (rc == 0 && told && nb_monotonic_seconds() - told_at >= JOB_STUCK_SECONDS &&
            job_rank_gone(0)) {
            job_say_lost(TUNE_CONTINUE_LINE);
            code = EXIT_RUNTIME;
        }
    }
    stop_children(&a, SIGKILL);
    free(a.c);
    free(fds);
    if (rc != 0) {
        fprintf(stderr, "nabla: rank %d: %s\n", job_rank(), err.msg);
        return EXIT_RUNTIME;
    }
    return code;
}

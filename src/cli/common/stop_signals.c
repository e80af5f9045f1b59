/* Stopping a run or a study part way (see stop_signals.h). */
#include "cli/common/stop_signals.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli/common/options.h"
#include "io/fileio.h"
#include "nabla.h"

static volatile sig_atomic_t stop_flag;
static atomic_int signals_seen;   /* lock-free, so a handler may count on it */
static pthread_t writer_thread;
static atomic_int finishing;   /* stop_signals_finishing was called */

volatile sig_atomic_t *stop_signal_flag(void) { return &stop_flag; }

void stop_signals_finishing(void) { atomic_store(&finishing, 1); }

void stop_for_output(void)
{
    if (!stop_flag)
        stop_flag = STOP_OUTPUT_LOST;
}

int stop_exit_code(int reason)
{
    return reason == STOP_OUTPUT_LOST ? EXIT_OUTPUT_LOST : 128 + reason;
}

int stop_signal_to_pass_on(int reason) { return reason == STOP_OUTPUT_LOST ? SIGTERM : reason; }

const char *stop_signal_name(int reason)
{
    return reason == SIGHUP    ? "SIGHUP"
           : reason == SIGTERM ? "SIGTERM"
           : reason == SIGINT  ? "SIGINT"
                               : "its lost standard output";
}

/* ---- what a second signal says ----
 * Two copies: the installing thread fills the one the handler does not read, then switches;
 * the handler runs on that same thread (or the process is gone), so it never sees a copy half
 * filled. */
#define NOTE_MAX (2 * CLI_MAX_PATH + 512)
static struct note {
    char kept[NOTE_MAX];
    char before[NOTE_MAX], after[NOTE_MAX];   /* around a checkpoint's step count */
} notes[2];
static volatile sig_atomic_t note_in_use = -1;   /* -1: nothing to say */

/* Fills the copy not in use with `kept`, `before` and `after` (NULL: the current one's), and
 * puts it in use. */
static void note_update(const char *kept, const char *before, const char *after)
{
    int now = note_in_use, next = now == 0 ? 1 : 0;
    struct note *n = &notes[next];
    if (now >= 0)
        *n = notes[now];
    else
        memset(n, 0, sizeof *n);
    if (kept)
        snprintf(n->kept, sizeof n->kept, "%s", kept);
    if (before && after) {
        snprintf(n->before, sizeof n->before, "%s", before);
        snprintf(n->after, sizeof n->after, "%s", after);
    }
    note_in_use = next;
}

void stop_note_set(const char *kept) { note_update(kept, NULL, NULL); }

void stop_note_checkpoint(const char *before, const char *after)
{
    note_update(NULL, before, after);
}

/* ---- the trials to stop with this process ----
 * A fixed table (a handler cannot allocate) with a slot for each of --workers' maximum. */
#define MAX_CHILDREN 1024
static atomic_int children[MAX_CHILDREN];   /* pids; 0: a free slot */

void stop_signals_track(pid_t child)
{
    for (int i = 0; i < MAX_CHILDREN; i++) {
        int expected = 0;
        if (atomic_compare_exchange_strong(&children[i], &expected, (int)child))
            return;
    }
}

void stop_signals_untrack(pid_t child)
{
    for (int i = 0; i < MAX_CHILDREN; i++) {
        int expected = (int)child;
        if (atomic_compare_exchange_strong(&children[i], &expected, 0))
            return;
    }
}

/* Whether process pid is stopped by a signal (state T in /proc/pid/stat), with open, read and
 * close only (async-signal-safe). Not a process being traced (t), nor one about to stop. */
static int stopped_by_signal(pid_t pid)
{
    char path[32] = "/proc/", digits[16];
    int n = 0;
    for (unsigned v = (unsigned)pid; n == 0 || v > 0; v /= 10)
        digits[n++] = (char)('0' + v % 10);
    size_t len = strlen(path);
    while (n > 0)
        path[len++] = digits[--n];
    memcpy(path + len, "/stat", sizeof "/stat");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    char buf[512];
    ssize_t got = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (got <= 0)
        return 0;
    buf[got] = '\0';
    /* "pid (comm) S ...": the state follows the last ')' (comm may hold one). */
    char *end = strrchr(buf, ')');
    return end && end[1] == ' ' && end[2] == 'T';
}

void stop_signals_wake(pid_t child)
{
    /* Only a process that is stopped gets SIGCONT: sent to one that is not, it would discard
     * a stop on its way, such as the SIGSTOP a tracer attaching to it sends (LeakSanitizer
     * checking a trial as it exits, a debugger), and leave that tracer waiting forever. */
    if (stopped_by_signal(child))
        kill(child, SIGCONT);
}

void stop_signals_send(pid_t child, int sig)
{
    kill(child, sig);
    if (sig != SIGKILL && sig != SIGCONT)
        stop_signals_wake(child);
}

/* How long the handler waits for the trials to stop at once: they only remove their own
 * temporary files and write a line. */
#define CHILD_WAIT_TICKS 500   /* of 10 ms */

/* In the handler: every tracked process gets two stop signals (the second one stops it at
 * once), and is waited for; one still there after a few seconds gets SIGKILL. */
static void stop_children_at_once(void)
{
    int left = 0;
    for (int i = 0; i < MAX_CHILDREN; i++) {
        pid_t pid = (pid_t)atomic_load(&children[i]);
        if (pid > 0) {
            kill(pid, SIGINT);
            stop_signals_send(pid, SIGTERM);
            left++;
        }
    }
    const struct timespec tick = {0, 10 * 1000 * 1000};
    for (int t = 0; left > 0; t++) {
        left = 0;
        for (int i = 0; i < MAX_CHILDREN; i++) {
            pid_t pid = (pid_t)atomic_load(&children[i]);
            if (pid <= 0)
                continue;
            if (waitpid(pid, NULL, WNOHANG) != 0) {   /* ended (or not ours to wait for) */
                atomic_store(&children[i], 0);
                continue;
            }
            if (t >= CHILD_WAIT_TICKS)
                kill(pid, SIGKILL);
            else
                stop_signals_wake(pid);   /* stopped since its signals came */
            left++;
        }
        if (left > 0)
            nanosleep(&tick, NULL);
    }
}

static void say(const char *text)
{
    size_t n = 0;
    while (text[n])
        n++;
    while (n > 0) {
        ssize_t w = write(STDERR_FILENO, text, n);
        if (w <= 0 && errno != EINTR)
            return;
        if (w > 0) {
            text += w;
            n -= (size_t)w;
        }
    }
}

/* A non-negative number in decimal, as printf would, for a handler (which may not call it). */
static void say_number(int64_t v)
{
    char digits[24];
    int i = (int)sizeof digits - 1;
    digits[i] = '\0';
    do {
        digits[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0 && i > 0);
    say(digits + i);
}

/* A first signal taken on another thread, passed on to the writing one: that thread may be
 * blocked in a write to a pipe nobody reads, which only a signal on it interrupts (the
 * handler has no SA_RESTART, so the write returns EINTR and gives up: nb_write_all). */
static atomic_int passed_on;

static void on_stop_signal(int sig)
{
    if (pthread_equal(pthread_self(), writer_thread) && atomic_exchange(&passed_on, 0))
        return;   /* the first signal, passed on: it did its work by interrupting */
    if (atomic_fetch_add(&signals_seen, 1) == 0) {
        if (!stop_flag)
            stop_flag = sig;
        if (!pthread_equal(pthread_self(), writer_thread)) {
            atomic_store(&passed_on, 1);
            pthread_kill(writer_thread, sig);
        }
        return;
    }
    if (atomic_load(&finishing))
        return;
    /* The second: on the thread that writes files, so that no write goes on behind the
     * handler's back while it cleans up. */
    if (!pthread_equal(pthread_self(), writer_thread)) {
        pthread_kill(writer_thread, sig);
        return;
    }
    stop_children_at_once();
    int64_t steps = nb_abandon_writes();
    int in_use = note_in_use;
    if (in_use >= 0) {
        const struct note *n = &notes[in_use];
        say("nabla: stopped at once by a second ");
        say(stop_signal_name(sig));
        say("\n");
        if (steps >= 0 && n->before[0]) {
            say(n->before);
            say_number(steps);
            say(n->after);
        } else {
            say(n->kept);
        }
    }
    _exit(128 + sig);
}

void stop_signals_install(void)
{
    writer_thread = pthread_self();
    /* From the first stop on, writes to pipes, FIFOs and terminals no longer wait for their
     * reader (fileio.h): the stop takes effect even while output is blocked. */
    nb_set_write_stop(&stop_flag);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    /* One handler at a time on a thread: a SIGTERM right after a SIGINT waits for it. */
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGINT);
    sigaddset(&sa.sa_mask, SIGTERM);
    sigaddset(&sa.sa_mask, SIGHUP);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);   /* the terminal went away: a stop like the others */
}

/* The job with MPI (mpi_comm.h): standard MPI-3 only, so Open MPI and MPICH both do.
 *
 * MPI starts only when a launcher started this process as one of several: MPI_Init in an
 * ordinary run would be a "singleton" start, slow and chatty, for nothing. The job works on its
 * own duplicate of MPI_COMM_WORLD, with MPI_ERRORS_RETURN, so that an MPI that reports a lost
 * rank (rather than ending the job itself, as Open MPI's mpirun does) gives an error the
 * program can explain instead of an abort. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <mpi.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/mpi/mpi_comm.h"
#include "core/clock.h"
#include "io/fileio.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
/* Open MPI does not free all it allocates, in its calls and in its own threads, and at exit,
 * when LeakSanitizer checks, MPI_Finalize has unloaded the plugins where much of it was
 * allocated: nothing would tell those blocks from nabla's. So under a sanitizer the main thread
 * allocates inside MPI calls with leak checking off (lsan_off), the check for leaks comes
 * before MPI_Finalize, where the blocks of MPI's own threads can be told by the names of its
 * libraries (nabla has freed all of its own by then), and the program ends without the check
 * at exit (job_end). */
static void lsan_off(void) { __lsan_disable(); }
static void lsan_on(void) { __lsan_enable(); }
const char *__lsan_default_options(void);
const char *__lsan_default_options(void) { return "print_suppressions=0"; }
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:libmpi.so\nleak:libopen-pal.so\nleak:libopen-rte.so\nleak:libpmix.so\n"
           "leak:/openmpi/\nleak:/pmix\nleak:libevent\nleak:libhwloc.so\n";
}
#else
static void lsan_off(void) {}
static void lsan_on(void) {}
#endif

static struct {
    int active;             /* MPI was started: job_end finalizes it */
    int rank, size, local_size;
    MPI_Comm world;         /* the job's own copy of MPI_COMM_WORLD */
    nb_comm comm;
    int lost;               /* an MPI call failed */
    pthread_t main_thread;  /* the only one that calls MPI */
    double sum_seconds;
    long long sum_calls;
    /* job_vote_later's vote in flight */
    MPI_Request pending;
    int pending_n;
    int pending_votes[JOB_MAX_VOTES];
} job = {.rank = 0, .size = 1, .local_size = 1, .pending = MPI_REQUEST_NULL};

/* ---- inside MPI ---- */

/* When the main thread started waiting in MPI (monotonic nanoseconds, plus 1), or 0:
 * for the watcher. */
static atomic_llong waiting_since;

/* Around every MPI call that may wait for another rank: the collectives and messages, and the
 * nonblocking calls too, which Open MPI can hold up for seconds on a connection to a rank that
 * is gone (its error report waits for mpirun). */
static void wait_begins(void)
{
    lsan_off();
    atomic_store(&waiting_since, (long long)(nb_monotonic_seconds() * 1e9) + 1);
}

static void wait_ends(void)
{
    atomic_store(&waiting_since, 0);
    lsan_on();
}

/* ---- errors ---- */

/* Checks made before every MPI call: the job is still whole, and this is the main thread. */
static int can_talk(nb_error *err)
{
    if (job.lost)
        return nb_fail(err, "the ranks lost touch earlier in the run");
    if (!pthread_equal(pthread_self(), job.main_thread))
        return nb_fail(err, "MPI called from a thread other than the main one (nabla calls it "
                            "from the main thread only)");
    return 0;
}

static int mpi_failed(int rc, const char *what, nb_error *err)
{
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    lsan_off();
    if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS)
        snprintf(msg, sizeof msg, "error %d", rc);
    lsan_on();
    job.lost = 1;
    return nb_fail(err, "the ranks lost touch: %s failed (MPI: %s); a rank is gone", what, msg);
}

/* ---- the communicator nb_train sums through ---- */

/* MPI counts are ints: a longer buffer goes in pieces. nb_train needs every rank to get the
 * same bits, or the ranks' weights would drift apart: MPI_Allreduce gives that (the standard
 * asks it of implementations; Open MPI's and MPICH's algorithms reduce each element in one
 * place, or in pairs, where a + b and b + a are the same float). */
static int allreduce_sum(void *data, size_t n, MPI_Datatype type, size_t size, nb_error *err)
{
    if (can_talk(err) != 0)
        return -1;
    double start = nb_monotonic_seconds();
    int rc = MPI_SUCCESS;
    wait_begins();
    for (size_t done = 0; done < n && rc == MPI_SUCCESS;) {
        int count = n - done > INT_MAX ? INT_MAX : (int)(n - done);
        rc = MPI_Allreduce(MPI_IN_PLACE, (char *)data + done * size, count, type, MPI_SUM,
                           job.world);
        done += (size_t)count;
    }
    wait_ends();
    job.sum_seconds += nb_monotonic_seconds() - start;
    job.sum_calls++;
    return rc == MPI_SUCCESS ? 0 : mpi_failed(rc, "MPI_Allreduce", err);
}

static int sum_floats(void *user, float *data, size_t n, nb_error *err)
{
    (void)user;
    return allreduce_sum(data, n, MPI_FLOAT, sizeof *data, err);
}

static int sum_doubles(void *user, double *data, size_t n, nb_error *err)
{
    (void)user;
    return allreduce_sum(data, n, MPI_DOUBLE, sizeof *data, err);
}

int job_broadcast(void *data, size_t n, nb_error *err)
{
    if (job.size == 1)
        return 0;
    if (can_talk(err) != 0)
        return -1;
    int rc = MPI_SUCCESS;
    wait_begins();
    for (size_t done = 0; done < n && rc == MPI_SUCCESS;) {
        int count = n - done > INT_MAX ? INT_MAX : (int)(n - done);
        rc = MPI_Bcast((char *)data + done, count, MPI_BYTE, 0, job.world);
        done += (size_t)count;
    }
    wait_ends();
    return rc == MPI_SUCCESS ? 0 : mpi_failed(rc, "MPI_Bcast", err);
}

static int broadcast(void *user, void *data, size_t n, nb_error *err)
{
    (void)user;
    return job_broadcast(data, n, err);
}

/* ---- votes ---- */

int job_vote(int *values, int n, nb_error *err)
{
    if (job.size == 1)
        return 0;
    if (n < 1 || n > JOB_MAX_VOTES)
        return nb_fail(err, "a vote on %d values (1 to %d)", n, JOB_MAX_VOTES);
    if (can_talk(err) != 0)
        return -1;
    wait_begins();
    int rc = MPI_Allreduce(MPI_IN_PLACE, values, n, MPI_INT, MPI_MAX, job.world);
    wait_ends();
    return rc == MPI_SUCCESS ? 0 : mpi_failed(rc, "MPI_Allreduce", err);
}

int job_vote_settle(int *agreed, int n, nb_error *err)
{
    memset(agreed, 0, (size_t)n * sizeof *agreed);
    if (job.pending == MPI_REQUEST_NULL)
        return 0;
    if (can_talk(err) != 0)
        return -1;
    if (n != job.pending_n)
        return nb_fail(err, "a vote on %d values settled as one on %d", job.pending_n, n);
    wait_begins();
    int rc = MPI_Wait(&job.pending, MPI_STATUS_IGNORE);
    wait_ends();
    if (rc != MPI_SUCCESS)
        return mpi_failed(rc, "MPI_Wait (a vote)", err);
    memcpy(agreed, job.pending_votes, (size_t)n * sizeof *agreed);
    return 0;
}

int job_vote_later(const int *mine, int *agreed, int n, nb_error *err)
{
    if (job.size == 1) {
        memset(agreed, 0, (size_t)n * sizeof *agreed);
        return 0;
    }
    if (n < 1 || n > JOB_MAX_VOTES)
        return nb_fail(err, "a vote on %d values (1 to %d)", n, JOB_MAX_VOTES);
    if (job_vote_settle(agreed, n, err) != 0)
        return -1;
    memcpy(job.pending_votes, mine, (size_t)n * sizeof *mine);
    job.pending_n = n;
    wait_begins();
    int rc = MPI_Iallreduce(MPI_IN_PLACE, job.pending_votes, n, MPI_INT, MPI_MAX, job.world,
                            &job.pending);
    wait_ends();
    return rc == MPI_SUCCESS ? 0 : mpi_failed(rc, "MPI_Iallreduce", err);
}

/* ---- messages ---- */

/* Sends under way: MPI_Isend's request and the copy of the bytes it sends. A blocking send could
 * wait for a receiver that is itself sending (MPI may hold a long message until its receive
 * is posted): two ranks sending to each other would wait forever. */
static struct {
    MPI_Request *request;
    char **bytes;
    int n, cap;
} outbox;

/* Frees the sends that are complete; with `wait`, waits for all of them first. */
static int outbox_settle(int wait, nb_error *err)
{
    int k = 0, rc = MPI_SUCCESS;
    for (int i = 0; i < outbox.n; i++) {
        int done = 0;
        if (rc == MPI_SUCCESS)
            rc = wait ? MPI_Wait(&outbox.request[i], MPI_STATUS_IGNORE)
                      : MPI_Test(&outbox.request[i], &done, MPI_STATUS_IGNORE);
        if (rc == MPI_SUCCESS && (wait || done)) {
            free(outbox.bytes[i]);
            continue;
        }
        outbox.request[k] = outbox.request[i];
        outbox.bytes[k++] = outbox.bytes[i];
    }
    outbox.n = k;
    return rc == MPI_SUCCESS ? 0 : mpi_failed(rc, wait ? "MPI_Wait (a message)" : "MPI_Test", err);
}

int job_send(int to, int tag, const void *data, size_t n, nb_error *err)
{
    if (job.size == 1 || to < 0 || to >= job.size || n > INT_MAX)
        return nb_fail(err, "a message to rank %d of %d (%zu bytes)", to, job.size, n);
    if (can_talk(err) != 0)
        return -1;
    wait_begins();
    int rc = outbox_settle(0, err);
    wait_ends();
    if (rc != 0)
        return -1;
    if (outbox.n == outbox.cap) {
        int cap = outbox.cap ? 2 * outbox.cap : 16;
        MPI_Request *r = realloc(outbox.request, (size_t)cap * sizeof *r);
        if (r)
            outbox.request = r;
        char **b = r ? realloc(outbox.bytes, (size_t)cap * sizeof *b) : NULL;
        if (!b)
            return nb_fail(err, "out of memory");
        outbox.bytes = b;
        outbox.cap = cap;
    }
    char *copy = malloc(n ? n : 1);
    if (!copy)
        return nb_fail(err, "out of memory");
    memcpy(copy, data, n);
    wait_begins();
    rc = MPI_Isend(copy, (int)n, MPI_BYTE, to, tag, job.world, &outbox.request[outbox.n]);
    wait_ends();
    if (rc != MPI_SUCCESS) {
        free(copy);
        return mpi_failed(rc, "MPI_Isend", err);
    }
    outbox.bytes[outbox.n++] = copy;
    return 0;
}

int job_receive(int *from, int *tag, char **data, size_t *n, nb_error *err)
{
    if (job.size == 1)
        return 0;
    if (can_talk(err) != 0)
        return -1;
    int flag = 0, count = 0;
    MPI_Status st;
    wait_begins();
    int settled = outbox_settle(0, err);
    int rc = settled == 0 ? MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, job.world, &flag, &st)
                          : MPI_SUCCESS;
    wait_ends();
    if (settled != 0)
        return -1;
    if (rc != MPI_SUCCESS)
        return mpi_failed(rc, "MPI_Iprobe", err);
    if (!flag)
        return 0;
    MPI_Get_count(&st, MPI_BYTE, &count);
    char *buf = malloc((size_t)count + 1);
    if (!buf)
        return nb_fail(err, "out of memory");
    wait_begins();
    rc = MPI_Recv(buf, count, MPI_BYTE, st.MPI_SOURCE, st.MPI_TAG, job.world,
                  MPI_STATUS_IGNORE);
    wait_ends();
    if (rc != MPI_SUCCESS) {
        free(buf);
        return mpi_failed(rc, "MPI_Recv", err);
    }
    buf[count] = '\0';
    *from = st.MPI_SOURCE;
    *tag = st.MPI_TAG;
    *data = buf;
    *n = (size_t)count;
    return 1;
}

/* ---- where the ranks run ----
 *
 * Each rank's machine and process, gathered at the start. MPI cannot say that a rank is gone
 * (Open MPI's collectives wait for a dead rank rather than fail), but a rank can look for
 * another that runs on its machine, in its process namespace: kill(pid, 0). */

typedef struct {
    char host[64];
    unsigned long long pid_namespace;   /* /proc/self/ns/pid's inode, 0 if unknown */
    long long pid;
} rank_place;

static rank_place *places;   /* job.size of them, or NULL */

static void gather_places(void)
{
    rank_place me;
    memset(&me, 0, sizeof me);
    if (gethostname(me.host, sizeof me.host - 1) != 0)
        me.host[0] = '\0';
    struct stat st;
    if (stat("/proc/self/ns/pid", &st) == 0)
        me.pid_namespace = (unsigned long long)st.st_ino;
    me.pid = (long long)getpid();
    places = calloc((size_t)job.size, sizeof *places);
    if (places && MPI_Allgather(&me, (int)sizeof me, MPI_BYTE, places, (int)sizeof me,
                                MPI_BYTE, job.world) != MPI_SUCCESS) {
        free(places);
        places = NULL;
    }
}

/* Whether this rank can see rank q's process. */
static int is_local(int q)
{
    const rank_place *me = places ? &places[job.rank] : NULL;
    return me && me->pid_namespace != 0 && places[q].pid_namespace == me->pid_namespace &&
           strcmp(places[q].host, me->host) == 0;
}

/* Whether the process has ended; a zombie its launcher has not reaped yet has. */
static int process_ended(long long pid)
{
    if (kill((pid_t)pid, 0) != 0)
        return errno == ESRCH;
    char path[64], stat_line[512];
    snprintf(path, sizeof path, "/proc/%lld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return errno == ENOENT;
    size_t n = fread(stat_line, 1, sizeof stat_line - 1, f);
    fclose(f);
    stat_line[n] = '\0';
    /* "pid (name) state ...": the name may hold anything, so the state follows the last ')' */
    const char *end_of_name = strrchr(stat_line, ')');
    return end_of_name && end_of_name[1] == ' ' &&
           (end_of_name[2] == 'Z' || end_of_name[2] == 'X');
}

/* ---- the watcher: a stop signal that finds a rank waiting for one that is gone ---- */

static struct {
    pthread_mutex_t lock;
    char *text;                       /* what to say after the first line */
    volatile sig_atomic_t *flag;      /* the stop signal's flag */
    atomic_int done;                  /* job_end: time to go */
    pthread_t thread;
    int running;
} watch = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* The first line of what a stuck rank says, in `line`; 0 when this rank should keep quiet.
 * Rank 0 speaks, naming the ranks on its machine that are gone; it keeps quiet only when every
 * other rank is on its machine and still there (a slow rank, as when Ctrl-C finds one in a
 * long step). Another rank speaks when every rank below it is on its machine and gone: it is
 * then the first rank left, and no one else will. */
static int first_line(char *line, size_t size)
{
    char gone[512] = "";
    size_t used = 0;
    int n_gone = 0, unseen = 0, lower_all_gone = 1;
    for (int q = 0; q < job.size; q++) {
        if (q == job.rank)
            continue;
        int ended = is_local(q) && process_ended(places[q].pid);
        unseen += !is_local(q);
        if (q < job.rank && !ended)
            lower_all_gone = 0;
        if (ended && used < sizeof gone) {
            int w = snprintf(gone + used, sizeof gone - used, "%srank %d (process %lld)",
                             n_gone ? ", " : "", q, places[q].pid);
            used += w > 0 ? (size_t)w : 0;
            n_gone++;
        }
    }
    if (job.rank > 0) {
        if (!lower_all_gone)
            return 0;
        snprintf(line, size, "nabla: rank %d: asked to stop while it waits for the other "
                 "ranks: %s %s gone\n", job.rank, gone, n_gone > 1 ? "are" : "is");
        return 1;
    }
    if (n_gone > 0)
        snprintf(line, size, "nabla: asked to stop while rank 0 waits for the other ranks: "
                 "%s %s gone\n", gone, n_gone > 1 ? "are" : "is");
    else if (unseen > 0)
        snprintf(line, size, "nabla: asked to stop while rank 0 waits for the other ranks, "
                 "which no longer answer: one of them is gone (mpirun's message says which)\n");
    else
        return 0;
    return 1;
}

/* The first line and `text` on stderr in one write, so that they reach mpirun in one piece,
 * if this rank is the one to speak: 1 if it spoke. */
static int say_lost(const char *text)
{
    static atomic_int said;   /* the watcher and the main thread may both get here */
    char line[1024];
    if (atomic_load(&said))
        return 1;
    if (!first_line(line, sizeof line) || atomic_exchange(&said, 1))
        return atomic_load(&said);
    size_t n = strlen(line), m = text ? strlen(text) : 0;
    char *all = malloc(n + m + 1);
    if (all) {
        memcpy(all, line, n);
        memcpy(all + n, text ? text : "", m + 1);
        (void)nb_write_all(STDERR_FILENO, all, n + m);   /* stderr gone: nothing to tell */
        free(all);
    }
    return 1;
}

int job_say_lost(const char *text) { return job.size > 1 && say_lost(text); }

int job_rank_gone(int rank)
{
    if (job.size == 1 || rank < 0 || rank >= job.size || rank == job.rank || !is_local(rank) ||
        !process_ended(places[rank].pid))
        return 0;
    job.lost = 1;   /* MPI_Finalize would wait for it: job_end aborts */
    return 1;
}

static void *watch_loop(void *arg)
{
    (void)arg;
    double signal_seen = 0;
    const struct timespec tick = {0, 20 * 1000 * 1000};
    while (!atomic_load(&watch.done)) {
        nanosleep(&tick, NULL);
        /* The flag is a sig_atomic_t that the signal handler sets once; reading it here is
         * the same as reading it in the main thread between two steps. */
        if (!signal_seen && *watch.flag)
            signal_seen = nb_monotonic_seconds();
        long long since = atomic_load(&waiting_since);
        if (!signal_seen || !since)
            continue;
        double waiting = 1e-9 * (double)(since - 1);
        double from = waiting > signal_seen ? waiting : signal_seen;
        if (nb_monotonic_seconds() - from < JOB_STUCK_SECONDS)
            continue;
        pthread_mutex_lock(&watch.lock);
        int spoke = say_lost(watch.text);
        pthread_mutex_unlock(&watch.lock);
        if (spoke)
            break;
    }
    return NULL;
}

void job_watch_stops(volatile sig_atomic_t *signal_flag, const char *text)
{
    if (job.size == 1)
        return;
    char *copy = strdup(text);
    pthread_mutex_lock(&watch.lock);
    if (copy) {
        free(watch.text);
        watch.text = copy;
    }
    pthread_mutex_unlock(&watch.lock);
    if (!watch.running) {
        watch.flag = signal_flag;
        atomic_store(&watch.done, 0);
        watch.running = pthread_create(&watch.thread, NULL, watch_loop, NULL) == 0;
    }
}

static void watch_stop(void)
{
    if (watch.running) {
        atomic_store(&watch.done, 1);
        pthread_join(watch.thread, NULL);
        watch.running = 0;
    }
    free(watch.text);
    watch.text = NULL;
}

/* ---- start and end ---- */

/* Ranks on this machine: those that share memory with this one (MPI-3). */
static int count_local_ranks(void)
{
    MPI_Comm local;
    int n = 1;
    if (MPI_Comm_split_type(job.world, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &local) ==
        MPI_SUCCESS) {
        MPI_Comm_size(local, &n);
        MPI_Comm_free(&local);
    }
    return n;
}

/* MPI_Init and the job's communicator: 0, or -1 after printing why. */
static int start_mpi(int *argc, char ***argv)
{
    int provided;
    /* FUNNELED: the program has other threads (the library's pool), but only the main one
     * calls MPI. */
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
        fprintf(stderr, "nabla: MPI did not start (MPI_Init_thread failed)\n");
        return -1;
    }
    job.active = 1;
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    if (MPI_Comm_dup(MPI_COMM_WORLD, &job.world) != MPI_SUCCESS) {
        fprintf(stderr, "nabla: MPI started, but MPI_Comm_dup failed\n");
        job.lost = 1;
        return -1;
    }
    MPI_Comm_set_errhandler(job.world, MPI_ERRORS_RETURN);
    /* Open MPI writes to a dead rank's TCP socket with plain write(): SIGPIPE would kill this
     * rank on the spot, silently, before it can say that a rank is gone and where to go on
     * from. Ignored, the write fails and MPI reports the loss (or the watcher speaks). The
     * programs a rank starts get the default back (exec_nabla). */
    signal(SIGPIPE, SIG_IGN);
    MPI_Comm_rank(job.world, &job.rank);
    MPI_Comm_size(job.world, &job.size);
    job.local_size = count_local_ranks();
    gather_places();
    return 0;
}

int job_start(int *argc, char ***argv)
{
    int size = launcher_size();
    if (size == 0 || size == 1)
        return 0;
    job.main_thread = pthread_self();
    lsan_off();
    int rc = start_mpi(argc, argv);
    lsan_on();
    if (rc != 0)
        return EXIT_RUNTIME;
    job.comm = (nb_comm){.rank = job.rank, .size = job.size, .user = NULL,
                         .sum_floats = sum_floats, .sum_doubles = sum_doubles,
                         .broadcast = broadcast};
    /* Only rank 0 shows progress and results. */
    if (job.rank != 0) {
        fflush(stdout);
        int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            close(fd);
        }
    }
    return 0;
}

int job_end(int code)
{
    watch_stop();
    free(places);
    places = NULL;
    if (!job.active)
        return code;
    job.active = 0;
    fflush(stdout);
    fflush(stderr);
    lsan_off();
    if (job.lost) {
        /* A rank is gone: MPI_Finalize would wait for it. */
        MPI_Abort(MPI_COMM_WORLD, code ? code : EXIT_RUNTIME);
        return code;
    }
    /* Every rank made the same calls, so a vote still in flight is in flight everywhere. */
    if (job.pending != MPI_REQUEST_NULL)
        MPI_Wait(&job.pending, MPI_STATUS_IGNORE);
    nb_error err;
    outbox_settle(1, &err);
    free(outbox.request);
    free(outbox.bytes);
    MPI_Comm_free(&job.world);
#if defined(__SANITIZE_ADDRESS__)
    lsan_on();
    int leaked = __lsan_do_recoverable_leak_check();
    lsan_off();
    MPI_Finalize();
    fflush(NULL);
    _exit(leaked ? 23 : code);   /* 23: LeakSanitizer's exit code */
#else
    MPI_Finalize();
    return code;
#endif
}

int job_rank(void) { return job.rank; }
int job_size(void) { return job.size; }
int job_local_size(void) { return job.local_size; }
const nb_comm *job_comm(void) { return job.size > 1 ? &job.comm : NULL; }
int job_lost(void) { return job.lost; }
double job_sum_seconds(void) { return job.sum_seconds; }
long long job_sum_calls(void) { return job.sum_calls; }

const char *job_mpi_library(void)
{
    static char version[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    if (MPI_Get_library_version(version, &len) != MPI_SUCCESS)
        return "MPI";
    version[strcspn(version, "\n")] = '\0';
    return version;
}

/* The trial's side of the tuner's socket (see trial_channel.h). */
#include "cli/common/trial_channel.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli/common/options.h"

void trial_channel_open(trial_channel *ch)
{
    ch->fd = -1;
    ch->sent = 0;
    const char *v = getenv(TRIAL_FD_ENV);
    if (!v)
        return;
    char *end;
    errno = 0;
    long fd = strtol(v, &end, 10);
    if (errno == 0 && end != v && *end == '\0' && fd >= 0 && fd < INT_MAX)
        ch->fd = (int)fd;
    unsetenv(TRIAL_FD_ENV);
}

/* send, not write: a tuner that is gone must not kill the trial with SIGPIPE. */
static int send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int trial_channel_report(trial_channel *ch, const char *log, size_t len, int epochs)
{
    if (ch->fd < 0)
        return 0;
    while (ch->sent < len) {
        const char *line = log + ch->sent;
        const char *nl = memchr(line, '\n', len - ch->sent);
        if (!nl)
            break;
        size_t n = (size_t)(nl - line) + 1;
        char head[32];
        int h = snprintf(head, sizeof head, "%d ", epochs);
        if (send_all(ch->fd, head, (size_t)h) != 0 || send_all(ch->fd, line, n) != 0)
            return 1;
        ch->sent += n;
    }
    return 0;
}

static const char *const END_WORDS[] = {"complete", "failed", "interrupted"};

trial_end trial_end_of(int exit_code, int own_fault)
{
    if (exit_code == EXIT_OK)
        return TRIAL_END_COMPLETE;
    /* Its directory held by another process (its own earlier one, still ending): nothing the
     * trial did, whatever else it noted. */
    if (exit_code == EXIT_TRIAL_LOCKED)
        return TRIAL_END_INTERRUPTED;
    if (exit_code == EXIT_USAGE || own_fault)
        return TRIAL_END_FAILED;
    return TRIAL_END_INTERRUPTED;
}

void trial_channel_end(trial_channel *ch, int exit_code, int own_fault, const char *why)
{
    if (ch->fd < 0)
        return;
    trial_end end = trial_end_of(exit_code, own_fault);
    char line[1024];
    int n = snprintf(line, sizeof line, "end %s%s%s", END_WORDS[end],
                     end == TRIAL_END_COMPLETE || !why[0] ? "" : " ",
                     end == TRIAL_END_COMPLETE ? "" : why);
    if (n < 0)
        return;
    size_t len = (size_t)n < sizeof line - 1 ? (size_t)n : sizeof line - 2;
    for (size_t k = 0; k < len; k++)
        if (line[k] == '\n' || line[k] == '\r')
            line[k] = ' ';   /* one line, whatever the message holds */
    line[len] = '\n';
    send_all(ch->fd, line, len + 1); /* a tuner that is gone hears nothing; nothing to do */
}

int trial_channel_parse_end(const char *line, trial_end *end, char *why, size_t cap)
{
    if (strncmp(line, "end ", 4) != 0)
        return 0;
    for (int k = TRIAL_END_COMPLETE; k <= TRIAL_END_INTERRUPTED; k++) {
        size_t n = strlen(END_WORDS[k]);
        if (strncmp(line + 4, END_WORDS[k], n) == 0 && (line[4 + n] == '\0' ||
                                                        line[4 + n] == ' ')) {
            *end = (trial_end)k;
            snprintf(why, cap, "%s", line[4 + n] ? line + 5 + n : "");
            return 1;
        }
    }
    return 0;
}

void trial_channel_close(trial_channel *ch)
{
    if (ch->fd >= 0)
        close(ch->fd);
    ch->fd = -1;
}

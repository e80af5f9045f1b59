/* What a directory is to nabla (see dir_kind.h). */
#include "dir_kind.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "fileio.h"

typedef enum name_role {
    ROLE_OTHER,      /* not nabla's */
    ROLE_RUN,        /* a run's file */
    ROLE_STUDY,      /* a study's */
    ROLE_STUDY_AUX,  /* a study's, but a name too common to tell one by */
    ROLE_SHARED,     /* either's */
} name_role;

/* Every name nabla writes at the top of a run or study directory, the most telling first. */
static const struct {
    const char *name;
    name_role role;
} NAMES[] = {
    {"config.json", ROLE_RUN},
    {"metrics.jsonl", ROLE_RUN},
    {"summary.json", ROLE_RUN},
    {"model.safetensors", ROLE_RUN},
    {"checkpoint.safetensors", ROLE_RUN},
    {"checkpoint.prev.safetensors", ROLE_RUN},
    {"checkpoint.next.safetensors", ROLE_RUN},
    {"trace.jsonl", ROLE_RUN},
    {"steps.jsonl", ROLE_RUN},
    {"train.log", ROLE_RUN},          /* a tune trial's: there before the trial starts */
    {"study.json", ROLE_STUDY},
    {"journal.jsonl", ROLE_STUDY},
    {"best.json", ROLE_STUDY},
    {"trials", ROLE_STUDY},
    {"data", ROLE_STUDY_AUX},         /* decompressed training data */
    {"best", ROLE_STUDY_AUX},         /* the run best.json's command trains */
    {".lock", ROLE_SHARED},
    {"report.html", ROLE_SHARED},
};
enum { N_NAMES = sizeof NAMES / sizeof NAMES[0] };

/* The entry of NAMES that name is, or is a temporary file of ("<name>.tmp.<...>"); -1 if
 * none. */
static int known_name(const char *name)
{
    for (int i = 0; i < N_NAMES; i++) {
        size_t len = strlen(NAMES[i].name);
        if (strncmp(name, NAMES[i].name, len) == 0 &&
            (name[len] == '\0' || strncmp(name + len, ".tmp.", 5) == 0))
            return i;
    }
    return -1;
}

/* The other names seen: how many, and the first three in byte order, for the message. */
typedef struct others {
    int n;
    char first[3][64];
} others;

static void others_add(others *o, const char *name, int is_dir)
{
    char shown[64];
    snprintf(shown, sizeof shown, "%.60s%s", name, is_dir ? "/" : "");
    int at = o->n < 3 ? o->n : 3;
    while (at > 0 && strcmp(shown, o->first[at - 1]) < 0) {
        if (at < 3)
            memcpy(o->first[at], o->first[at - 1], sizeof o->first[at]);
        at--;
    }
    if (at < 3)
        memcpy(o->first[at], shown, sizeof shown);
    o->n++;
}

static void others_text(const others *o, char *buf, size_t size)
{
    buf[0] = '\0';
    int shown = o->n < 3 ? o->n : 3;
    size_t len = 0;
    for (int i = 0; i < shown && len < size; i++)
        len += (size_t)snprintf(buf + len, size - len, "%s%s",
                                i == 0 ? "" : i + 1 == shown && o->n == shown ? " and " : ", ",
                                o->first[i]);
    if (o->n > shown && len < size)
        snprintf(buf + len, size - len, " and %d more", o->n - shown);
}

static int entry_is_dir(DIR *d, const struct dirent *e)
{
    struct stat st;
    if (e->d_type != DT_UNKNOWN)
        return e->d_type == DT_DIR;
    return fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
}

int dir_contents_read(const char *path, dir_contents *c, nb_error *err)
{
    memset(c, 0, sizeof *c);
    struct stat st;
    if (stat(path, &st) != 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return 0;
        return nb_fail(err, "%s: %s", path, strerror(errno));
    }
    c->exists = 1;
    c->is_dir = S_ISDIR(st.st_mode);
    snprintf(c->what, sizeof c->what, "%s", nb_file_kind(st.st_mode));
    if (!c->is_dir)
        return 0;
    DIR *d = opendir(path);
    if (!d)
        return nb_fail(err, "%s: cannot read the directory: %s", path, strerror(errno));
    int best_run = N_NAMES, best_study = N_NAMES;
    others aux = {0};
    others other = {0};
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        int k = known_name(e->d_name);
        switch (k < 0 ? ROLE_OTHER : NAMES[k].role) {
        case ROLE_RUN:
            best_run = k < best_run ? k : best_run;
            break;
        case ROLE_STUDY:
            best_study = k < best_study ? k : best_study;
            break;
        case ROLE_STUDY_AUX:
            others_add(&aux, e->d_name, entry_is_dir(d, e));
            break;
        case ROLE_SHARED:
            break;
        case ROLE_OTHER:
            others_add(&other, e->d_name, entry_is_dir(d, e));
            break;
        }
    }
    closedir(d);
    if (best_run < N_NAMES)
        snprintf(c->run_file, sizeof c->run_file, "%s", NAMES[best_run].name);
    if (best_study < N_NAMES)
        snprintf(c->study_file, sizeof c->study_file, "%s%s", NAMES[best_study].name,
                 strcmp(NAMES[best_study].name, "trials") == 0 ? "/" : "");
    /* data/ and best/ are a study's only beside its other files; else they are the user's. */
    for (int i = 0; best_study == N_NAMES && i < aux.n && i < 3; i++)
        others_add(&other, aux.first[i], 0); /* shown as they were: with their '/' */
    c->n_others = other.n;
    others_text(&other, c->others, sizeof c->others);
    return 0;
}

int dir_check_for_run(const char *dir, const char *opt, int resuming, nb_error *err)
{
    dir_contents c;
    if (dir_contents_read(dir, &c, err) != 0)
        return -1;
    if (!c.exists)
        return 0;
    if (!c.is_dir)
        return nb_fail(err, "%s %s: is %s, not a directory", opt, dir, c.what);
    if (c.study_file[0])
        return nb_fail(err, "%s %s: is a study of nabla tune (it holds %s), not a run "
                            "directory; its trials are (%s/trials/N)",
                       opt, dir, c.study_file, dir);
    if (!resuming && c.n_others > 0)
        return nb_fail(err, "%s %s: holds files that are not a nabla run's (%s); give a new "
                            "or empty directory, or a run directory",
                       opt, dir, c.others);
    return 0;
}

int dir_check_for_study(const char *dir, nb_error *err)
{
    dir_contents c;
    if (dir_contents_read(dir, &c, err) != 0)
        return -1;
    if (!c.exists)
        return 0;
    if (!c.is_dir)
        return nb_fail(err, "--out %s: is %s, not a directory", dir, c.what);
    if (c.run_file[0])
        return nb_fail(err, "--out %s: is a run directory of nabla train (it holds %s), not a "
                            "study; give a new or empty directory, or a study's",
                       dir, c.run_file);
    if (c.n_others > 0)
        return nb_fail(err, "--out %s: holds files that are not a nabla study's (%s); give a "
                            "new or empty directory, or a study directory",
                       dir, c.others);
    return 0;
}

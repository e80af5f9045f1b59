/* What a directory is to nabla (see dir_kind.h). */
#include "cli/common/dir_kind.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/fileio.h"

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
    {"refit", ROLE_STUDY_AUX},        /* tune --refit's run (tune_refit.h) */
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
            c->has_lock |= strcmp(e->d_name, ".lock") == 0;
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
    /* data/, best/ and refit/ are a study's only beside its other files; else the user's. */
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
    if (resuming && !c.run_file[0])
        return nb_fail(err, "%s %s: is not a run directory (it holds none of a run's files: no "
                            "checkpoint, config.json or metrics.jsonl); nothing to resume",
                       opt, dir);
    if (!resuming && c.n_others > 0)
        return nb_fail(err, "%s %s: holds files that are not a nabla run's (%s); give a new "
                            "or empty directory, or a run directory",
                       opt, dir, c.others);
    return 0;
}

int dir_check_for_study(const char *dir, nb_error *err)
{
    char study[PATH_MAX];
    int depth;
    if (dir_in_trials(dir, study, sizeof study, &depth))
        return nb_fail(err, "--out %s: is %sthe study %s's trials/, which nabla tune runs for "
                            "that study; give another directory",
                       dir, depth == 0 ? "" : depth == 1 ? "a trial's directory in " : "inside ",
                       study);
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

/* ---- nabla's own files ---- */

/* "dir/name" (a new string; NULL when out of memory), with no doubled '/'. */
static char *join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (p)
        snprintf(p, a + b + 2, "%s%s%s", dir, a > 0 && dir[a - 1] == '/' ? "" : "/", name);
    return p;
}

/* Splits path at its last '/' (trailing ones ignored): *dir becomes a new string ("." for a
 * bare name, "/" at the root), *name points into a new string too. Returns 0, or -1. */
static int split_path(const char *path, char **dir, char **name)
{
    char *copy = strdup(path);
    if (!copy)
        return -1;
    size_t len = strlen(copy);
    while (len > 1 && copy[len - 1] == '/')
        copy[--len] = '\0';
    char *slash = strrchr(copy, '/');
    if (!slash) {
        *dir = strdup(".");
        *name = copy;
        copy = NULL;
    } else {
        *name = strdup(slash + 1);
        slash[slash == copy ? 1 : 0] = '\0';
        *dir = copy;
        copy = NULL;
    }
    free(copy);
    if (!*dir || !*name) {
        free(*dir);
        free(*name);
        return -1;
    }
    return 0;
}

/* Where path leads, absolute, with every symbolic link followed, whether it exists or not:
 * realpath for what exists; for what does not, its directory's path and its name (a dangling
 * link is followed to the name it gives). A new string, or NULL. */
static char *canonical(const char *path, int depth)
{
    char *real = realpath(path, NULL);
    if (real || depth > 40)
        return real;
    struct stat st;
    char link[PATH_MAX];
    ssize_t n;
    char *dir, *name, *out = NULL;
    if (split_path(path, &dir, &name) != 0)
        return NULL;
    if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode) &&
        (n = readlink(path, link, sizeof link - 1)) > 0) {
        /* A dangling link: where it leads, relative to the directory that holds it. */
        link[n] = '\0';
        char *next = link[0] == '/' ? strdup(link) : join(dir, link);
        out = next ? canonical(next, depth + 1) : NULL;
        free(next);
    } else if (strcmp(path, "/") != 0) {
        char *parent = canonical(dir, depth + 1);
        if (parent && strcmp(name, ".") == 0) {
            out = parent;
            parent = NULL;
        } else if (parent && strcmp(name, "..") == 0) {
            char *up, *last;
            if (split_path(parent, &up, &last) == 0) {
                out = up;
                free(last);
            }
        } else if (parent) {
            out = join(parent, name);
        }
        free(parent);
    }
    free(dir);
    free(name);
    return out;
}

/* Whether dir holds a study of nabla tune (one of a study's files: dir_contents.study_file). */
static int is_study(const char *dir)
{
    dir_contents c;
    nb_error ignored;
    return dir_contents_read(dir, &c, &ignored) == 0 && c.study_file[0];
}

/* Whether the canonical path is a study's trials/ or lies under it: fills study with the
 * study's path and *depth with how far below trials/ it is (0: trials/ itself, 1: a trial's
 * directory STUDY/trials/N, more: inside one). */
static int under_trials(const char *canonical_path, char *study, size_t size, int *depth)
{
    char *at = strdup(canonical_path);
    int yes = 0;
    for (int below = 0; at && !yes && strcmp(at, "/") != 0; below++) {
        char *parent = NULL, *name = NULL;
        if (split_path(at, &parent, &name) != 0)
            break;
        if (strcmp(name, "trials") == 0 && is_study(parent)) {
            snprintf(study, size, "%s", parent);
            *depth = below;
            yes = 1;
        }
        free(name);
        free(at);
        at = parent;
    }
    free(at);
    return yes;
}

/* Whether the file at target (canonical) is nabla's own: fills what with whose it is, "the
 * run directory /x/r" or "the study /x/s's decompressed data". */
static int owned_file(const char *target, char *what, size_t size)
{
    char *dir, *name;
    if (split_path(target, &dir, &name) != 0)
        return 0;
    dir_contents c;
    nb_error ignored;
    int owned = 0;
    if (known_name(name) >= 0 && dir_contents_read(dir, &c, &ignored) == 0 && c.is_dir &&
        (c.run_file[0] || c.study_file[0] || c.has_lock)) {
        snprintf(what, size, "the %s %s",
                 c.study_file[0] ? "study" : c.run_file[0] ? "run directory"
                                                           : "run or study directory",
                 dir);
        owned = 1;
    }
    char study_dir[PATH_MAX];
    int depth;
    if (!owned && under_trials(target, study_dir, sizeof study_dir, &depth)) {
        snprintf(what, size, "the study %s's trials/ (nabla tune's)", study_dir);
        owned = 1;
    }
    char *study, *data;
    if (!owned && split_path(dir, &study, &data) == 0) {
        if (strcmp(data, "data") == 0 && is_study(study)) {
            snprintf(what, size, "the study %s's decompressed data", study);
            owned = 1;
        }
        free(study);
        free(data);
    }
    free(dir);
    free(name);
    return owned;
}

static int is_link(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0 && S_ISLNK(st.st_mode);
}

int dir_check_output(const char *path, const char *opt, const char *own_dir,
                     const char *allowed, nb_error *err)
{
    char *target = canonical(path, 0);
    char *own = own_dir ? canonical(own_dir, 0) : NULL;
    char *dir = NULL, *name = NULL;
    if (!target || (own_dir && !own) || split_path(target, &dir, &name) != 0) {
        free(target);
        free(own);
        return nb_fail(err, "%s %s: cannot tell where it leads: %s", opt, path,
                       strerror(errno ? errno : ENOMEM));
    }
    char what[2 * PATH_MAX];
    int rc = 0;
    int inside_own = own && strcmp(dir, own) == 0;
    /* The allowed name, anywhere but directly in a study's trials/ (where every name is a
     * trial's). */
    char study[PATH_MAX];
    int depth = 0;
    int in_trials = under_trials(target, study, sizeof study, &depth) && depth <= 1;
    if (allowed && strcmp(name, allowed) == 0 && !in_trials)
        rc = 0;
    else if (inside_own && known_name(name) >= 0)
        rc = nb_fail(err, "%s %s: is this run's own %s (in %s); nabla writes it itself: give "
                          "another file name",
                     opt, path, name, own_dir);
    else if (inside_own)
        rc = nb_fail(err, "%s %s: is inside this run's directory %s, which holds the run's "
                          "files only: give a file outside it",
                     opt, path, own_dir);
    else if (owned_file(target, what, sizeof what) && is_link(path))
        rc = nb_fail(err, "%s %s: leads to %s, a file of %s, which nabla writes itself: give "
                          "another file name",
                     opt, path, target, what);
    else if (owned_file(target, what, sizeof what))
        rc = nb_fail(err, "%s %s: is a file of %s, which nabla writes itself: give another "
                          "file name",
                     opt, path, what);
    free(target);
    free(own);
    free(dir);
    free(name);
    return rc;
}

int dir_link_guard(const char *path, nb_error *err)
{
    char *target = canonical(path, 0);
    char what[2 * PATH_MAX];
    int rc = 0;
    if (target && owned_file(target, what, sizeof what))
        rc = nb_fail(err, "%s: is a symbolic link to %s, a file of %s; nabla writes its own "
                          "files under their own names only, never through a link: remove the "
                          "link",
                     path, target, what);
    free(target);
    return rc;
}

int dir_in_trials(const char *dir, char *study, size_t size, int *depth)
{
    char *target = canonical(dir, 0);
    int yes = target && under_trials(target, study, size, depth);
    free(target);
    return yes;
}

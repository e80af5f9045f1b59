/* Paths and directories (paths.h). */
#include "io/paths.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/fileio.h"

char *path_join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (!p)
        return NULL;
    memcpy(p, dir, a);
    size_t j = a;
    if (a > 0 && dir[a - 1] != '/')
        p[j++] = '/';
    memcpy(p + j, name, b + 1);
    return p;
}

/* Creates one directory; *created tells whether it was new. */
static int make_one_dir(const char *path, int *created, nb_error *err)
{
    struct stat st;
    *created = 0;
    if (mkdir(path, 0777) == 0) {
        *created = 1;
        return 0;
    }
    int saved = errno;
    if (saved == EEXIST && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return 0;
    char target[4096];
    ssize_t n;
    if (saved == EEXIST && lstat(path, &st) == 0 && S_ISLNK(st.st_mode) &&
        (n = readlink(path, target, sizeof target - 1)) >= 0) {
        target[n] = '\0';
        return nb_fail(err, "cannot create directory %s: it is a symbolic link to %s, which does "
                            "not exist (create it, or give the directory itself)",
                       path, target);
    }
    if (saved == EEXIST)
        return nb_fail(err, "cannot create directory %s: it exists and is %s, not a directory",
                       path, stat(path, &st) == 0 ? nb_file_kind(st.st_mode) : "no directory");
    return nb_fail(err, "cannot create directory %s: %s", path, strerror(saved));
}

int make_dirs(const char *path, nb_error *err)
{
    if (path[0] == '\0')
        return nb_fail(err, "empty directory name");
    char *p = strdup(path);
    if (!p)
        return nb_fail(err, "out of memory");
    /* The prefixes are cut at their '/': marks[i] is the end of the i-th one created here, so
     * that a failure further down (a name too long, a file in the way, no permission) can
     * take back the directories made so far: a failed run leaves nothing behind. */
    size_t len = strlen(p), n_made = 0;
    size_t *made = malloc((len + 1) * sizeof *made);
    if (!made) {
        free(p);
        return nb_fail(err, "out of memory");
    }
    int rc = 0, created;
    /* Every prefix ending before a '/' (not the root's), then the whole path. */
    for (size_t i = 1; i <= len && rc == 0; i++) {
        if (i < len && !(p[i] == '/' && p[i - 1] != '/'))
            continue;
        char keep = p[i];
        p[i] = '\0';
        rc = make_one_dir(p, &created, err);
        p[i] = keep;
        if (rc == 0 && created)
            made[n_made++] = i;
    }
    while (rc != 0 && n_made > 0) {
        p[made[--n_made]] = '\0';
        rmdir(p);
    }
    free(made);
    free(p);
    return rc;
}

/* A file as this process left it (file_seen.h). */
#include "io/file_seen.h"

#include <errno.h>
#include <string.h>

void file_seen_from(file_seen *seen, const struct stat *st)
{
    seen->known = 1;
    seen->dev = st->st_dev;
    seen->ino = st->st_ino;
    seen->size = st->st_size;
    seen->mtime = st->st_mtim;
}

void file_seen_now(file_seen *seen, const char *path)
{
    struct stat st;
    memset(seen, 0, sizeof *seen);
    if (stat(path, &st) == 0)
        file_seen_from(seen, &st);
}

int file_seen_same(const file_seen *seen, const struct stat *st)
{
    return seen->known && st->st_dev == seen->dev && st->st_ino == seen->ino &&
           st->st_size == seen->size && st->st_mtim.tv_sec == seen->mtime.tv_sec &&
           st->st_mtim.tv_nsec == seen->mtime.tv_nsec;
}

int file_seen_still(const file_seen *seen, const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return !seen->known && errno == ENOENT;
    return file_seen_same(seen, &st);
}

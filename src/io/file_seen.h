/* A file as this process left it, to tell when another process removed, replaced or changed
 * it behind its back (a study's journal and settings, written by one process at a time). */
#ifndef NABLA_IO_FILE_SEEN_H
#define NABLA_IO_FILE_SEEN_H

#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

typedef struct file_seen {
    int known;               /* 0: it did not exist (or is not known any more) */
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
} file_seen;

/* Records the file st describes. */
void file_seen_from(file_seen *seen, const struct stat *st);
/* Records path as it is now (not there: known = 0). */
void file_seen_now(file_seen *seen, const char *path);
/* Whether st is the file seen, unchanged. */
int file_seen_same(const file_seen *seen, const struct stat *st);
/* Whether path is as seen: the same file, unchanged; or, not known, still absent. */
int file_seen_still(const file_seen *seen, const char *path);

#endif /* NABLA_IO_FILE_SEEN_H */

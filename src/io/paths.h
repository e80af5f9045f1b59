/* Paths and directories, for the program's files (not part of the public API). */
#ifndef NABLA_PATHS_H
#define NABLA_PATHS_H

#include "nabla.h"

/* "dir/name" in a new malloc'd string (NULL when out of memory). */
char *path_join(const char *dir, const char *name);

/* mkdir -p: creates path and its missing parents; fine if it is already a directory. */
int make_dirs(const char *path, nb_error *err);

#endif /* NABLA_PATHS_H */

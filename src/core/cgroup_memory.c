/* The memory limit of the cgroups this process is in (see cgroup_memory.h). */
#include "core/cgroup_memory.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A cgroup hierarchy version and the names of its files. */
typedef struct hierarchy {
    int v1;                     /* v1's memory controller, else v2 */
    const char *limit, *usage;  /* the limit and the current usage, in bytes */
    const char *inactive_file;  /* memory.stat's key for reclaimable file cache */
} hierarchy;

static const hierarchy V1 = {1, "memory.limit_in_bytes", "memory.usage_in_bytes",
                             "total_inactive_file"};
static const hierarchy V2 = {0, "memory.max", "memory.current", "inactive_file"};

/* v1 writes "no limit" as the largest page count in bytes (9223372036854771712 with 4 KiB
 * pages); anything from 2^62 on is taken as none. */
#define NO_LIMIT (UINT64_C(1) << 62)

/* Whether the comma-separated list has the item. */
static int list_has(const char *list, const char *item)
{
    size_t n = strlen(item);
    for (const char *p = list; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
        if (strncmp(p, item, n) == 0 && (p[n] == ',' || p[n] == '\0'))
            return 1;
    return 0;
}

/* The process's path in the hierarchy, from /proc/self/cgroup ("0::/path" for v2,
 * "N:cpu,memory:/path" for a v1 hierarchy with the memory controller). */
static int cgroup_path(const hierarchy *h, char *path, size_t size)
{
    FILE *f = fopen("/proc/self/cgroup", "r");
    if (!f)
        return 0;
    char line[4096];
    int found = 0;
    while (!found && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        char *controllers = strchr(line, ':');
        char *p = controllers ? strchr(controllers + 1, ':') : NULL;
        if (!p)
            continue;
        *controllers++ = '\0';
        *p++ = '\0';
        if (h->v1 ? list_has(controllers, "memory")
                  : strcmp(line, "0") == 0 && controllers[0] == '\0')
            found = snprintf(path, size, "%s", p) < (int)size;
    }
    fclose(f);
    return found;
}

/* mountinfo writes a space, tab, newline and backslash in a path as \040, \011, \012, \134. */
static void unescape(char *s)
{
    char *out = s;
    for (char *in = s; *in; out++) {
        if (in[0] == '\\' && in[1] >= '0' && in[1] <= '3' && in[2] >= '0' && in[2] <= '7' &&
            in[3] >= '0' && in[3] <= '7') {
            *out = (char)((in[1] - '0') * 64 + (in[2] - '0') * 8 + (in[3] - '0'));
            in += 4;
        } else {
            *out = *in++;
        }
    }
    *out = '\0';
}

/* Where the process's cgroup of hierarchy h is: the mount of the hierarchy whose root holds
 * the path, and the directory below it. /proc/self/mountinfo's fields: ID, parent ID,
 * major:minor, root, mount point, options, optional fields, "-", type, source, super options. */
static int cgroup_dir(const hierarchy *h, const char *path, char *mount, size_t mount_size,
                      char *dir, size_t dir_size)
{
    FILE *f = fopen("/proc/self/mountinfo", "r");
    if (!f)
        return 0;
    char line[8192];
    int found = 0;
    while (!found && fgets(line, sizeof line, f)) {
        /* Paths are escaped (no spaces), so " - " can only be the separator. */
        char *dash = strstr(line, " - ");
        if (!dash)
            continue;
        *dash = '\0';
        char *field[5], *save = NULL;
        int n = 0;
        for (char *t = strtok_r(line, " ", &save); t && n < 5; t = strtok_r(NULL, " ", &save))
            field[n++] = t;
        char *type = strtok_r(dash + 3, " \n", &save);
        char *source = type ? strtok_r(NULL, " \n", &save) : NULL;
        char *options = source ? strtok_r(NULL, " \n", &save) : NULL;
        if (n < 5 || !options || strcmp(type, h->v1 ? "cgroup" : "cgroup2") != 0 ||
            (h->v1 && !list_has(options, "memory")))
            continue;
        char *root = field[3], *point = field[4];
        unescape(root);
        unescape(point);
        /* The mount shows the hierarchy from `root` down; the path must be inside it. */
        size_t r = strcmp(root, "/") == 0 ? 0 : strlen(root);
        if (strncmp(path, root, r) != 0 || (path[r] != '/' && path[r] != '\0'))
            continue;
        const char *below = path + r;
        found = snprintf(mount, mount_size, "%s", point) < (int)mount_size &&
                snprintf(dir, dir_size, "%s%s", point,
                         strcmp(below, "/") == 0 ? "" : below) < (int)dir_size;
    }
    fclose(f);
    return found;
}

/* The number on the first line of dir/name; 0 when the file is missing or says "max". */
static int read_number(const char *dir, const char *name, uint64_t *value)
{
    char path[4300];
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path)
        return 0;
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    unsigned long long v;
    int ok = fscanf(f, "%llu", &v) == 1;
    fclose(f);
    if (ok)
        *value = v;
    return ok;
}

/* memory.stat's value for key, or 0. */
static uint64_t stat_value(const char *dir, const char *key)
{
    char path[4300], name[64];
    if (snprintf(path, sizeof path, "%s/memory.stat", dir) >= (int)sizeof path)
        return 0;
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    unsigned long long v, found = 0;
    while (fscanf(f, "%63s %llu", name, &v) == 2)
        if (strcmp(name, key) == 0) {
            found = v;
            break;
        }
    fclose(f);
    return found;
}

/* Where a hierarchy's cgroup of this process is: found once per process (reading
 * /proc/self/mountinfo costs most of a check), since a process stays in its cgroup unless
 * something moves it. */
typedef struct location {
    int found;
    char mount[4096], dir[4200];
} location;

static location locations[2];
static pthread_once_t located = PTHREAD_ONCE_INIT;

static void locate(void)
{
    const hierarchy *h[2] = {&V1, &V2};
    for (int i = 0; i < 2; i++) {
        char path[4096];
        location *l = &locations[i];
        l->found = cgroup_path(h[i], path, sizeof path) &&
                   cgroup_dir(h[i], path, l->mount, sizeof l->mount, l->dir, sizeof l->dir);
    }
}

/* The least room over the levels of hierarchy h, from the process's cgroup up to the mount. */
static int hierarchy_room(const hierarchy *h, uint64_t *room, uint64_t *total, char *where,
                          size_t where_size)
{
    pthread_once(&located, locate);
    const location *l = &locations[h->v1 ? 0 : 1];
    if (!l->found)
        return 0;
    char dir[4200];
    memcpy(dir, l->dir, sizeof dir);
    size_t top = strlen(l->mount);
    int found = 0;
    for (;;) {
        uint64_t limit, usage;
        if (read_number(dir, h->limit, &limit) && limit < NO_LIMIT &&
            read_number(dir, h->usage, &usage)) {
            uint64_t inactive = stat_value(dir, h->inactive_file);
            uint64_t used = usage > inactive ? usage - inactive : 0;
            uint64_t left = limit > used ? limit - used : 0;
            if (!found || left < *room) {
                *room = left;
                *total = limit;
                snprintf(where, where_size, "%s", dir);
            }
            found = 1;
        }
        char *slash = strrchr(dir, '/');
        if (strlen(dir) <= top || !slash || (size_t)(slash - dir) < top)
            break;
        *slash = '\0';
    }
    return found;
}

int nb_cgroup_memory_room(uint64_t *room, uint64_t *limit, char *where, size_t where_size)
{
    uint64_t r1 = 0, r2 = 0, l1 = 0, l2 = 0;
    char w1[4200], w2[4200];
    int v1 = hierarchy_room(&V1, &r1, &l1, w1, sizeof w1);
    int v2 = hierarchy_room(&V2, &r2, &l2, w2, sizeof w2);
    if (!v1 && !v2)
        return 0;
    int use_v1 = v1 && (!v2 || r1 <= r2);
    *room = use_v1 ? r1 : r2;
    *limit = use_v1 ? l1 : l2;
    snprintf(where, where_size, "%s", use_v1 ? w1 : w2);
    return 1;
}

/* The memory limit of the cgroups this process is in. Not part of the public API.
 *
 * A process in a cgroup with a memory limit (a container, a batch system's job, systemd's
 * MemoryMax=) is killed by the kernel when the cgroup's memory goes over it, whatever the
 * machine still has free. The limit of every level counts, from the process's own cgroup up to
 * the root of the hierarchy mounted here. Both versions are read: cgroup v2 (memory.max,
 * memory.current) and v1's memory controller (memory.limit_in_bytes, memory.usage_in_bytes).
 * The directories are found through /proc/self/cgroup and /proc/self/mountinfo, never by
 * assuming where the hierarchy is mounted. */
#ifndef NABLA_CGROUP_MEMORY_H
#define NABLA_CGROUP_MEMORY_H

#include <stddef.h>
#include <stdint.h>

/* The bytes the cgroups' limits still leave to this process: the least, over every level that
 * has a limit, of the limit minus what the cgroup uses (less its inactive file cache, which the
 * kernel reclaims before it kills). Returns 1 with *room, that level's limit in *limit and its
 * directory in `where`, or 0 when no level has a limit (or none can be read). */
int nb_cgroup_memory_room(uint64_t *room, uint64_t *limit, char *where, size_t where_size);

#endif /* NABLA_CGROUP_MEMORY_H */

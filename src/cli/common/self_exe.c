/* Which file this program is (see self_exe.h). */
#define _GNU_SOURCE /* realpath */
#include "cli/common/self_exe.h"

#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/auxv.h>
#endif

static int is_program;
static char program[PATH_MAX];

static int same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

void self_exe_init(void)
{
#ifdef __linux__
    const char *started = (const char *)getauxval(AT_EXECFN);
    if (!started || !realpath(started, program))
        program[0] = '\0';
    is_program = program[0] && same_file("/proc/self/exe", program);
#endif
}

int self_exe_is_program(void) { return is_program; }

const char *self_exe_path(void)
{
    if (is_program)
        return "/proc/self/exe";
    return program[0] ? program : NULL;
}

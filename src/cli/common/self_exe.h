/* Which file this program is, for starting it again: the restart that sets OpenBLAS's kernel
 * (main.c) and the processes of tune's trials (trial_process.c).
 *
 * /proc/self/exe names the running file itself, even after it was renamed or replaced, and is
 * the best thing to exec, but only when it is this program. Under a tool that runs the program
 * inside a process of its own (valgrind; the dynamic loader started by hand,
 * `ld-linux-x86-64.so.2 nabla`), it names the tool instead, and exec'ing it would start the
 * tool with nabla's arguments ("valgrind: You cannot run '...' directly"). Such a tool is told
 * from the real thing by comparing /proc/self/exe with the file the kernel was asked to run
 * (AT_EXECFN), which these tools set to the program's path. */
#ifndef NABLA_CLI_SELF_EXE_H
#define NABLA_CLI_SELF_EXE_H

/* Records the program's path; called first thing in main, before anything changes the working
 * directory (AT_EXECFN may be relative to it). */
void self_exe_init(void);

/* Whether /proc/self/exe is this program, and not a tool that runs it. */
int self_exe_is_program(void);

/* The file to exec to run this program again: "/proc/self/exe" when it is this program, else
 * the program's own path; NULL when neither is known. */
const char *self_exe_path(void);

#endif /* NABLA_CLI_SELF_EXE_H */

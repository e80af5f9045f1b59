"""Runs nabla where a shell cannot arrange it exactly, for test_output_errors.sh.

Every subcommand runs `nabla ARGS...` (the program and its arguments after `--`) with stderr
to the file ERR and prints nabla's exit status as a shell reports it (128 + the signal for a
process a signal killed) on the first line of its own output.

  closed-pipe ERR -- CMD...     stdout is a pipe whose reader is gone before nabla starts.
  lost-terminal ERR -- CMD...   stdout is a terminal (a pseudo-terminal), which goes away once
                                nabla has drawn on it: a live progress bar that cannot be drawn.
  stop-at NAME ERR SIGS [AFTER] -- CMD...
                                stops nabla (SIGSTOP) the moment a file whose name matches the
                                regular expression NAME appears in the run directory (the
                                argument after --out or --resume), once a file AFTER is there
                                if given,
                                checks that it is still there, sends the signals SIGS
                                (comma-separated: INT,TERM), and lets it go on (SIGCONT). Prints
                                "caught" on a second line if it got there, "missed" if nabla
                                ended first. No timing decides anything: a stopped process
                                cannot move on.
  blocked WHERE SIG ERR -- CMD...
                                WHERE is "stdout" (a pipe whose reader does not read, as a
                                stopped pager's) or the path of a FIFO (opened for reading
                                first, then never read). Each holds 4096 bytes. Waits until
                                nabla blocks in write(2) on it (/proc/PID/syscall), sends SIG
                                (INT, TERM, HUP) and prints nabla's exit status; "blocked" on
                                a second line if it got there, "ended" if nabla ended first.
  two-ctrl-c DELAY ERR -- CMD...
                                once nabla catches SIGINT (its handler is installed), waits
                                DELAY seconds, sends SIGINT, waits until the signal has been
                                taken (no longer pending), and sends SIGINT again: two Ctrl-C
                                in quick succession, the second reaching a process that has
                                seen the first.
"""
import fcntl
import os
import re
import signal
import subprocess
import sys
import time

SIGINT_BIT = 1 << (signal.SIGINT - 1)


def status_of(code):
    return 128 - code if code < 0 else code


def proc_mask(pid, field):
    """A signal mask from /proc/PID/status (SigCgt, ShdPnd, ...), or None once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1], 16)
    except OSError:
        return None
    return None


def proc_state(pid):
    """The process's state letter (R, S, T, Z, ...), or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def alive(p):
    return p.poll() is None and proc_state(p.pid) not in (None, "Z", "X")


def closed_pipe(err, cmd):
    r, w = os.pipe()
    os.close(r)
    with open(err, "wb") as e:
        code = subprocess.run(cmd, stdout=w, stderr=e, stdin=subprocess.DEVNULL).returncode
    os.close(w)
    print(status_of(code))


def lost_terminal(err, cmd):
    master, slave = os.openpty()
    with open(err, "wb") as e:
        p = subprocess.Popen(cmd, stdout=slave, stderr=e, stdin=subprocess.DEVNULL)
    os.close(slave)
    try:
        os.read(master, 1)   # it has drawn something: the terminal goes away
    except OSError:
        pass
    os.close(master)
    print(status_of(p.wait()))


def run_dir(cmd):
    return cmd[cmd.index("--out") + 1] if "--out" in cmd else cmd[cmd.index("--resume") + 1]


def stop_at(pattern, err, sigs, after, cmd):
    directory = run_dir(cmd)
    with open(err, "wb") as e:
        p = subprocess.Popen(cmd, stderr=e, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    caught = False
    while not caught and p.poll() is None:
        try:
            names = os.listdir(directory)
        except OSError:
            names = []
        if (not after or after in names) and any(re.fullmatch(pattern, n) for n in names):
            os.kill(p.pid, signal.SIGSTOP)
            # Stopped (state T) with the file still there: the signals come at that point.
            while alive(p) and proc_state(p.pid) != "T":
                time.sleep(0.001)
            try:
                caught = any(re.fullmatch(pattern, n) for n in os.listdir(directory))
            except OSError:
                caught = False
            if caught:
                for s in sigs.split(","):
                    os.kill(p.pid, getattr(signal, "SIG" + s))
            os.kill(p.pid, signal.SIGCONT)
    print(status_of(p.wait()))
    print("caught" if caught else "missed")


def two_ctrl_c(delay, err, cmd):
    with open(err, "wb") as e:
        p = subprocess.Popen(cmd, stderr=e, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    while alive(p) and not (proc_mask(p.pid, "SigCgt") or 0) & SIGINT_BIT:
        time.sleep(0.001)
    time.sleep(delay)
    if alive(p):
        os.kill(p.pid, signal.SIGINT)
        while alive(p) and (proc_mask(p.pid, "ShdPnd") or 0) & SIGINT_BIT:
            time.sleep(0.0005)
        if alive(p):
            os.kill(p.pid, signal.SIGINT)
    print(status_of(p.wait()))


WRITE_SYSCALL = {"x86_64": 1, "aarch64": 64}
F_SETPIPE_SZ = 1031


def blocked_in_write(pid, fd):
    """Whether the process is inside write(2) on fd, waiting."""
    try:
        with open(f"/proc/{pid}/syscall") as f:
            fields = f.read().split()
    except OSError:
        return False
    nr = WRITE_SYSCALL.get(os.uname().machine)
    if nr is None:
        sys.exit("output_ctl: no write syscall number known for " + os.uname().machine)
    return len(fields) > 1 and fields[0] == str(nr) and int(fields[1], 16) == fd


def blocked(where, sig, err, cmd):
    if where == "stdout":
        reader, writer = os.pipe()
        fcntl.fcntl(writer, F_SETPIPE_SZ, 4096)
        with open(err, "w") as e:
            p = subprocess.Popen(cmd, stdout=writer, stderr=e, stdin=subprocess.DEVNULL)
        os.close(writer)
        fd = 1
    else:
        reader = os.open(where, os.O_RDONLY | os.O_NONBLOCK)
        fcntl.fcntl(reader, F_SETPIPE_SZ, 4096)
        with open(err, "w") as e:
            p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=e,
                                 stdin=subprocess.DEVNULL)
        fd = None
    got = False
    while alive(p) and not got:
        if fd is None:
            # The FIFO's descriptor in nabla, once it has opened it.
            for name in os.listdir(f"/proc/{p.pid}/fd") if alive(p) else []:
                try:
                    if os.path.samefile(f"/proc/{p.pid}/fd/{name}", where):
                        fd = int(name)
                except OSError:
                    pass
        got = fd is not None and blocked_in_write(p.pid, fd)
        if not got:
            time.sleep(0.005)
    if got:
        os.kill(p.pid, getattr(signal, "SIG" + sig))
    print(status_of(p.wait()))
    print("blocked" if got else "ended")
    os.close(reader)


def main():
    what = sys.argv[1]
    cut = sys.argv.index("--")
    opts, cmd = sys.argv[2:cut], sys.argv[cut + 1:]
    if what == "closed-pipe":
        closed_pipe(opts[0], cmd)
    elif what == "lost-terminal":
        lost_terminal(opts[0], cmd)
    elif what == "stop-at":
        stop_at(opts[0], opts[1], opts[2], opts[3] if len(opts) > 3 else None, cmd)
    elif what == "blocked":
        blocked(opts[0], opts[1], opts[2], cmd)
    elif what == "two-ctrl-c":
        two_ctrl_c(float(opts[0]), opts[1], cmd)
    else:
        sys.exit("unknown: " + what)


main()

"""What the MPI benchmarks (mpi_scaling.py, mpi_drift.py) share: how they start mpirun, the
check that nabla has MPI, and the report's last line and file."""

import datetime
import os
import subprocess
import sys

# One machine over loopback TCP only, as root too (as tests/cli/test_mpi.sh runs it).
MPIRUN = ["mpirun", "--allow-run-as-root", "--oversubscribe", "--mca", "btl", "self,tcp",
          "--mca", "btl_tcp_if_include", "lo", "--mca", "oob_tcp_if_include", "lo"]


def nabla_with_mpi(path, script):
    """The absolute path of the nabla program and its --version text; exits with a message
    when it was built without MPI."""
    nabla = os.path.abspath(path)
    version = subprocess.run([nabla, "--version"], capture_output=True, text=True).stdout
    if "with MPI" not in version:
        sys.exit("%s: %s was built without MPI (install libopenmpi-dev and rebuild)" % (script, nabla))
    return nabla, version


def write_report(path, lines, version):
    """The lines, then one naming the machine, nabla and the time, written to `path` and
    printed."""
    cpu = open("/proc/cpuinfo").read().split("model name")[1].split(":")[1].split("\n")[0].strip()
    lines = lines + ["", "Machine: %s, %d cores, %s; %s" % (
        cpu, os.cpu_count(), version.strip().replace("\n", "; "),
        datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC"))]
    text = "\n".join(lines) + "\n"
    with open(path, "w") as f:
        f.write(text)
    print(text)

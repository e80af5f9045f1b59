#!/usr/bin/python3
"""Data-parallel nabla on this machine: samples/s with 1 and 2 ranks (1 thread each), the time
the ranks spend in their sums per step, and what the same per-step communication would cost
on 8 and 64 machines on a 25 Gbit/s network (on paper, from a ring all-reduce's volume). Then
a tune study on 2 ranks of 1 worker against 1 process of 2 workers: wall time, and whether it
ended with the same trials. Last, bench/mpi_overlap.c (built here with mpicc): whether summing
the gradient during the backward pass (MPI_Iallreduce per layer) would beat summing it after.

    /usr/bin/python3 bench/mpi_scaling.py --nabla build/nabla [--runs 3] [--epochs 1]
                                          [--tune-trials 16]

One training run per (workload, ranks, repeat), alternated so that machine noise hits both
alike; medians over repeats. Writes bench/MPI_RESULTS.md and prints it.
"""

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time

from mpi_bench import MPIRUN, nabla_with_mpi, write_report

WORKLOADS = [
    ("784-256-128-10, batch 64", ["--layers", "256,128", "--batch-size", "64"]),
    ("784-1024-1024-10, batch 256", ["--layers", "1024,1024", "--batch-size", "256"]),
]

# The network of the projection: 25 Gbit/s, and a per-message latency typical of TCP over it.
BANDWIDTH_BYTES = 25e9 / 8
LATENCY_S = 25e-6


def run_once(nabla, ranks, args, epochs, out):
    cmd = [nabla, "train", "--epochs", str(epochs), "--threads", "1", "--quiet", "--out", out]
    cmd += args
    if ranks > 1:
        cmd = MPIRUN + ["-np", str(ranks)] + cmd
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    with open(os.path.join(out, "summary.json")) as f:
        summary = json.load(f)
    with open(os.path.join(out, "config.json")) as f:
        config = json.load(f)
    return summary, config


def run_study(nabla, ranks, trials, out):
    """Wall seconds of a study of `trials` trials, and its trials' final journal events."""
    cmd = [nabla, "tune", "--epochs", "2", "--trials", str(trials), "--prune", "asha",
           "--threads", "1", "--quiet", "--out", out]
    cmd += ["--workers", "2" if ranks == 1 else "1"]
    if ranks > 1:
        cmd = MPIRUN + ["-np", str(ranks)] + cmd
    start = time.monotonic()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    seconds = time.monotonic() - start
    final = {}
    with open(os.path.join(out, "journal.jsonl")) as f:
        for line in f:
            ev = json.loads(line)
            if ev.get("state") in ("complete", "pruned", "failed"):
                final[ev["trial"]] = (ev["state"], ev["dev_accuracy"], ev["epochs"],
                                      json.dumps(ev["params"], sort_keys=True))
    return seconds, final


def overlap_probe(tmp, runs):
    """bench/mpi_overlap.c's median ms a step for each mode, on the wide network's gradient, in
    two shapes of backward pass; None without mpicc."""
    exe = os.path.join(tmp, "mpi_overlap")
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mpi_overlap.c")
    try:
        subprocess.run(["mpicc", "-O2", src, "-lopenblas", "-o", exe], check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    shapes = []
    for layers, rows in ((4, 32), (8, 16)):
        got = {}
        for _ in range(runs):
            out = subprocess.run(MPIRUN + ["-np", "2", exe, "1863690", str(layers), "40", str(rows)],
                                 check=True, capture_output=True, text=True, env=env).stdout
            for line in out.splitlines():
                r = json.loads(line)
                got.setdefault(r["mode"], []).append(r["ms_per_step"])
        shapes.append((layers, rows, {m: statistics.median(v) for m, v in got.items()}))
    return shapes


def ring_allreduce_seconds(machines, nbytes):
    """A ring all-reduce: each machine sends and receives 2(N-1)/N of the buffer, in 2(N-1)
    messages."""
    return 2 * (machines - 1) / machines * nbytes / BANDWIDTH_BYTES + 2 * (machines - 1) * LATENCY_S


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nabla", default="build/nabla")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--tune-trials", type=int, default=16)
    p.add_argument("--results", default=os.path.join(os.path.dirname(__file__), "MPI_RESULTS.md"))
    a = p.parse_args()
    nabla, version = nabla_with_mpi(a.nabla, "mpi_scaling.py")

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, args in WORKLOADS:
            got = {1: [], 2: []}
            config = None
            for r in range(a.runs):
                for ranks in (1, 2) if r % 2 == 0 else (2, 1):
                    out = os.path.join(tmp, "w%d-r%d-n%d" % (len(rows), r, ranks))
                    summary, config = run_once(nabla, ranks, args, a.epochs, out)
                    got[ranks].append(summary)
            params = config["parameters"]
            one = statistics.median(s["samples_per_second"] for s in got[1])
            two = statistics.median(s["samples_per_second"] for s in got[2])
            steps = got[2][0]["steps"]
            sum_ms = statistics.median(s["allreduce_seconds"] / s["steps"] * 1e3 for s in got[2])
            step_ms_one = statistics.median(s["train_seconds"] / s["steps"] * 1e3 for s in got[1])
            rows.append(dict(name=name, params=params, one=one, two=two, steps=steps,
                             sum_ms=sum_ms, step_ms_one=step_ms_one))
        study = {1: [], 2: []}
        for r in range(a.runs):
            for ranks in (1, 2) if r % 2 == 0 else (2, 1):
                out = os.path.join(tmp, "study-r%d-n%d" % (r, ranks))
                study[ranks].append(run_study(nabla, ranks, a.tune_trials, out))
        probe = overlap_probe(tmp, a.runs)

    lines = ["# Data-parallel nabla: 1 and 2 ranks", "",
             "Generated by `bench/mpi_scaling.py`; regenerate it, don't edit it.", "",
             "%d epoch(s) of Fashion-MNIST's 60,000 training images, Adam, `--threads 1` per "
             "rank, Open MPI over loopback TCP; medians of %d runs, 1 and 2 ranks "
             "alternated." % (a.epochs, a.runs), "",
             "| workload | parameters | 1 rank samples/s | 2 ranks samples/s | speed-up | "
             "time in sums per step, 2 ranks | step time, 1 rank |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append("| %s | %d | %.0f | %.0f | %.2fx | %.3f ms | %.3f ms |" % (
            r["name"], r["params"], r["one"], r["two"], r["two"] / r["one"], r["sum_ms"],
            r["step_ms_one"]))
    lines += ["",
              "*time in sums per step*: rank 0's seconds inside the communicator's sums "
              "(the gradient, plus a few numbers for the loss and the stop vote), divided by "
              "the steps; it includes waiting for the slower rank, so it is an upper bound on "
              "the communication itself.", "",
              "## On paper: the same step on 8 and 64 machines, 25 Gbit/s", "",
              "A ring all-reduce of the flat gradient buffer (float32, 4 bytes a parameter) moves "
              "2(N-1)/N of it in and out of every machine, in 2(N-1) messages; assumed %.0f "
              "Gbit/s and %.0f us a message (TCP; RDMA is a few us). Compute per step shrinks "
              "as 1/N if the global batch stays the same." % (BANDWIDTH_BYTES * 8 / 1e9, LATENCY_S * 1e6), "",
              "| workload | gradient | machines | all-reduce per step | compute per step (1 thread, B/N rows) | communication share |",
              "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        nbytes = 4 * r["params"]
        for machines in (8, 64):
            comm = ring_allreduce_seconds(machines, nbytes) * 1e3
            compute = r["step_ms_one"] / machines
            lines.append("| %s | %.2f MB | %d | %.3f ms | %.3f ms | %.0f%% |" % (
                r["name"], nbytes / 1e6, machines, comm, compute, 100 * comm / (comm + compute)))
    outcomes = [final for _, final in study[1] + study[2]]
    states = [state for state, _, _, _ in outcomes[0].values()]
    lines += ["", "## Distributed search: `mpirun -np 2 nabla tune`", "",
              "A study of %d trials of 2 epochs on Fashion-MNIST (the default space, ASHA), "
              "`--threads 1` per trial: 1 process with `--workers 2` against `mpirun -np 2` with "
              "`--workers 1` (2 trials at once either way); medians of %d runs, alternated." % (
                  a.tune_trials, a.runs), "",
              "| tuner | wall seconds | complete / pruned / failed | the same trials as the first run |",
              "|---|---:|---:|---|"]
    for ranks, name in ((1, "1 process, 2 workers"), (2, "2 ranks, 1 worker each")):
        same = all(final == outcomes[0] for _, final in study[ranks])
        lines.append("| %s | %.2f | %d / %d / %d | %s |" % (
            name, statistics.median(sec for sec, _ in study[ranks]), states.count("complete"),
            states.count("pruned"), states.count("failed"), "yes, every run" if same else "NO"))
    lines += ["", "## Overlapping the sum with the backward pass: does it pay here?", ""]
    if probe is None:
        lines.append("Not measured: no mpicc.")
    else:
        lines += ["`bench/mpi_overlap.c` on 2 ranks, 1 thread each: a backward pass of matrix "
                  "products (layers x rows of 1024 x 1024 per rank) and the wide network's "
                  "gradient (1,863,690 floats): *serial* sums it after the pass (what nabla "
                  "does), *overlap* starts an MPI_Iallreduce of each layer's share as soon as "
                  "its product is done and pushes the sums on (MPI_Testall) after every later "
                  "product. Median ms a step (medians of %d runs)." % a.runs, "",
                  "| backward pass | compute alone | sum alone | serial | overlap | overlap saves |",
                  "|---|---:|---:|---:|---:|---:|"]
        for layers, rows, m in probe:
            lines.append("| %d layers x %d rows | %.2f | %.2f | %.2f | %.2f | %+.0f%% |" % (
                layers, rows, m["compute"], m["sum"], m["serial"], m["overlap"],
                100 * (m["serial"] - m["overlap"]) / m["serial"]))
        best = max((m["serial"] - m["overlap"]) / m["serial"] for _, _, m in probe)
        if best < 0.05:
            lines += ["", "The overlap saves less than 5%% (at best %+.0f%%): Open MPI moves a "
                      "nonblocking collective on only inside MPI calls, and over loopback the "
                      "copying takes the same cores the products need. nabla sums once after "
                      "the backward pass. On machines whose network card moves the data itself "
                      "(RDMA), with a progress thread, the overlap could hide up to "
                      "min(compute, sum) a step." % (100 * best)]
        else:
            lines += ["", "The overlap saves up to %.0f%% a step here: summing per layer during "
                      "the backward pass would pay on this machine." % (100 * best)]
    write_report(a.results, lines, version)


if __name__ == "__main__":
    main()

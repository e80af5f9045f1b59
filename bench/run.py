#!/usr/bin/env python3
"""Side-by-side benchmark of nabla against PyTorch on Fashion-MNIST (`make bench`).

A workload is a model's text (as `nabla train --layers` takes it) and a batch size: three dense
networks and the reference CNN of issue 14. For each it runs, in R alternating rounds, nabla,
PyTorch as shipped and PyTorch tuned (OPENBLAS_NUM_THREADS=1, so OpenBLAS does not spawn
threads inside torch's own), each under /usr/bin/time -v for its peak resident memory. It
reports median training samples/s, the ratios, effective GFLOP/s (3 x the forward FLOPs of
every conv and linear x samples/s) against an sgemm ceiling measured at the start and the end
of the same run, test accuracy, and whether each target is met, and writes it all as Markdown
to bench/RESULTS.md. With --accuracy-epochs N it then trains the workloads that have an
accuracy target (the CNN: after 10 epochs) N epochs in nabla and in the faster PyTorch, and
judges that target too; without, the report says it was not measured.

Before anything else it checks which kernel OpenBLAS picks: Debian's OpenBLAS 0.3.21 does not
know recent CPUs and falls back to a slow generic kernel. Then OPENBLAS_CORETYPE is set for every
program of the benchmark so that all of them use the same, proper kernel.

    python3 bench/run.py [--runs 3] [--workloads small,wide,batchnorm,cnn]
                         [--accuracy-epochs 10 [--accuracy-runs 1]] [--out bench/RESULTS.md]

Standard library only (and tests/model_text_py.py's reading of a model's text, which is too);
PyTorch runs in its own process (bench/torch_train.py).
"""
import argparse
import datetime
import json
import math
import os
import platform
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "tests"))
import model_text_py  # noqa: E402  (a model's text read: its layers and their shapes)

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH_DIR)
TIME = "/usr/bin/time"
DEFAULT_NABLA = os.path.join(ROOT, "build", "nabla")

# OpenBLAS kernels that mean "CPU not recognized" on a machine that has AVX2 or AVX-512.
GENERIC_CORES = {"prescott", "core2", "penryn", "dunnington", "nehalem", "atom", "katmai",
                 "coppermine", "northwood", "banias"}


@dataclass(frozen=True)
class TrainedTarget:
    """Test accuracy after `epochs` epochs (a separate, longer run: --accuracy-epochs): at
    least `least`, and within `points` points of PyTorch's same network."""
    epochs: int
    least: float
    points: float


@dataclass(frozen=True)
class Workload:
    """A model, given by its text as `nabla train --layers` takes it (each program builds it
    from that text: torch_train.py through tests/model_text_py.py), a batch size and the
    targets nabla must reach on it. Its parameters and FLOPs are counted from the text, the
    same way for every model."""
    name: str
    title: str
    model: str
    batch_size: int
    speedup_target: float          # least nabla samples/s / the faster PyTorch's
    ceiling_target: float = None   # least fraction of the sgemm ceiling nabla must reach
    memory_target: float = None    # most nabla peak RSS / the smaller PyTorch peak RSS
    accuracy_points: float = None  # most |nabla - PyTorch| test accuracy at --epochs, points
    trained: TrainedTarget = None

    def layers(self):
        return model_text_py.resolve(self.model, INPUT_SHAPE, CLASSES)

    def parameters(self):
        """All trained parameters: weights, biases, norm weights and biases. A linear or conv2d
        layer that batch norm follows has no bias (its beta takes its place), in both
        programs."""
        total = 0
        for layer in self.layers():
            if layer.name in ("linear", "conv2d"):
                total += weights(layer) + (layer.out if layer.bias else 0)
            elif layer.name == "batchnorm":
                total += 2 * layer.shape_in[0]
            elif layer.name == "layernorm":
                total += 2 * math.prod(layer.shape_in)
        return total

    def forward_flops(self):
        """FLOPs of one sample's forward pass through the convs and linears: 2 per multiply-add,
        2·out·in·kh·kw·Ho·Wo for a conv2d, 2·in·out for a linear. A training step does three
        times as many (forward, input gradient, weight gradient). For a dense network that is
        6 x weights: 6 x parameters, as earlier reports counted, less the biases."""
        return sum(2 * weights(layer) * math.prod(layer.shape_out[1:])
                   for layer in self.layers() if layer.name in ("linear", "conv2d"))

    def dense_widths(self):
        """[inputs, widths..., classes] when the only weighted layers are linear, else None."""
        layers = [layer for layer in self.layers() if layer.name in ("linear", "conv2d")]
        if any(layer.name != "linear" for layer in layers):
            return None
        return [layers[0].shape_in[0]] + [layer.out for layer in layers]


def weights(layer):
    """The weights of a linear or conv2d layer (biases not included)."""
    kernel = math.prod(layer.kernel) if layer.name == "conv2d" else 1
    return layer.out * layer.shape_in[0] * kernel


REFERENCE_CNN = ("conv2d(32,3,padding=1),batchnorm,relu,maxpool2d(2),"
                 "conv2d(64,3,padding=1),batchnorm,relu,maxpool2d(2),"
                 "flatten,linear(128),relu,dropout(0.5),linear")
INPUT_SHAPE, CLASSES = (1, 28, 28), 10   # a Fashion-MNIST image, as nabla reads IDX files
WORKLOADS = {w.name: w for w in [
    Workload("small", "784-256-128-10 relu, batch 64",
             "flatten,linear(256),relu,linear(128),relu,linear", 64, 6.0,
             memory_target=0.25, accuracy_points=0.5),
    Workload("wide", "784-1024-1024-10 relu, batch 256",
             "flatten,linear(1024),relu,linear(1024),relu,linear", 256, 3.5, 0.80,
             accuracy_points=0.5),
    Workload("batchnorm", "784-256-128-10 relu + batch norm, batch 64",
             "flatten,linear(256),batchnorm,relu,linear(128),batchnorm,relu,linear", 64, 5.0,
             accuracy_points=0.5),
    Workload("cnn", "reference CNN (issue 14), batch 64", REFERENCE_CNN, 64, 2.0, 0.60,
             memory_target=1 / 3, trained=TrainedTarget(10, 0.91, 0.3)),
]}
PROGRAMS = ("nabla", "torch-shipped", "torch-tuned")
PROGRAM_TITLES = {"nabla": "nabla", "torch-shipped": "PyTorch as shipped",
                  "torch-tuned": "PyTorch tuned"}


@dataclass
class Run:
    workload: str
    round: int
    program: str
    samples_per_second: float
    test_accuracy: float
    peak_rss_kib: int
    train_seconds: float
    wall_seconds: float
    extra: dict = field(default_factory=dict)


class BenchError(Exception):
    """A program of the benchmark failed; the message says which and carries its stderr."""


def log(message):
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Running programs


def run_checked(argv, env=None, what=None):
    """Runs argv and returns its stdout; raises BenchError with the stderr if it fails.

    The program gets its own process group, killed whole if the harness is interrupted: under
    /usr/bin/time, killing only `time` would leave the program running."""
    with subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, start_new_session=True) as proc:
        try:
            stdout, stderr = proc.communicate()
        except BaseException:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
    if proc.returncode != 0:
        tail = "\n".join(stderr.strip().splitlines()[-30:])
        raise BenchError(f"{what or argv[0]} failed (exit {proc.returncode}):\n"
                         f"  command: {shlex.join(argv)}\n{tail}")
    return stdout


def run_timed(argv, env, scratch, what):
    """Runs argv under /usr/bin/time -v; returns (stdout, peak RSS in KiB, wall seconds)."""
    report = os.path.join(scratch, "time.txt")
    start = time.perf_counter()
    stdout = run_checked([TIME, "-v", "-o", report] + argv, env, what)
    wall = time.perf_counter() - start
    with open(report) as f:
        match = re.search(r"Maximum resident set size \(kbytes\): (\d+)", f.read())
    if not match:
        raise BenchError(f"{what}: no 'Maximum resident set size' in {TIME} -v output")
    return stdout, int(match.group(1)), wall


def compile_ceiling(scratch):
    """Compiles bench/sgemm_ceiling.c into the scratch directory and returns its path."""
    exe = os.path.join(scratch, "sgemm_ceiling")
    run_checked(["gcc", "-O2", "-std=c11", "-o", exe, os.path.join(BENCH_DIR, "sgemm_ceiling.c"),
                 "-lopenblas"], what="compiling sgemm_ceiling.c")
    return exe


def compile_products(scratch):
    """Compiles bench/step_products.c (the products of one training step, alone)."""
    exe = os.path.join(scratch, "step_products")
    run_checked(["gcc", "-O2", "-std=c11", "-o", exe, os.path.join(BENCH_DIR, "step_products.c"),
                 "-lopenblas"], what="compiling step_products.c")
    return exe


def measure_products(exe, workload, env):
    """A dense workload's products alone on one thread (see step_products.c): the JSON it
    prints; None for a model with convolutions, which step_products.c does not know."""
    widths = workload.dense_widths()
    if widths is None:
        return None
    return json.loads(run_checked([exe, str(workload.batch_size), *map(str, widths)], env,
                                  "step_products"))


def measure_ceiling(exe, threads, env):
    """The sgemm ceiling program's JSON (gflops, median_gflops, n, threads, core, config) and
    the 1-minute load average before it: the machine may be shared, and that skews timings."""
    load = os.getloadavg()[0]
    return dict(json.loads(run_checked([exe, "1024", str(threads)], env, "sgemm_ceiling")),
                load_average=load)


def check_parameters(what, counted, workload):
    """Both programs must train the model the harness counts: the same parameters."""
    if counted != workload.parameters():
        raise BenchError(f"{what} ({workload.name}) trains {counted} parameters, the harness "
                         f"counts {workload.parameters()}: the models differ")


def run_nabla(args, workload, seed, epochs, env, scratch):
    """One nabla training run; its numbers come from the run directory's summary.json."""
    out = os.path.join(scratch, "nabla-run")  # must not exist yet: nabla creates it
    argv = [args.nabla, "train", "--epochs", str(epochs), "--threads", str(args.threads),
            "--layers", workload.model, "--batch-size", str(workload.batch_size),
            "--seed", str(seed), "--out", out, "--quiet"]
    try:
        _, rss, wall = run_timed(argv, env, scratch, f"nabla ({workload.name})")
        with open(os.path.join(out, "summary.json")) as f:
            summary = json.load(f)
        with open(os.path.join(out, "config.json")) as f:
            check_parameters("nabla", json.load(f)["parameters"], workload)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return summary, rss, wall


def run_torch(args, workload, seed, epochs, env, scratch):
    """One bench/torch_train.py run; its numbers come from the JSON line it prints."""
    argv = [args.python, os.path.join(BENCH_DIR, "torch_train.py"), "--epochs", str(epochs),
            "--threads", str(args.threads), "--layers", workload.model,
            "--input-shape", "x".join(map(str, INPUT_SHAPE)),
            "--batch-size", str(workload.batch_size), "--seed", str(seed)]
    stdout, rss, wall = run_timed(argv, env, scratch, f"torch_train.py ({workload.name})")
    summary = json.loads(stdout.strip().splitlines()[-1])
    check_parameters("torch_train.py", summary["parameters"], workload)
    return summary, rss, wall


def run_program(args, workload, program, envs, scratch, round_, epochs):
    """Runs one program once and returns its Run. Round r uses seed r in all programs, so the
    median accuracy is taken over R different initializations and shuffles."""
    runner = run_nabla if program == "nabla" else run_torch
    summary, rss, wall = runner(args, workload, round_, epochs, envs[program], scratch)
    extra = {"torch": summary["torch"]} if "torch" in summary else {}
    return Run(workload.name, round_, program, summary["samples_per_second"],
               summary["test_accuracy"], rss, summary["train_seconds"], wall, extra)


# ---------------------------------------------------------------------------------------------
# The OpenBLAS kernel


def cpu_flags():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    return set()


def proper_core(flags):
    """The OpenBLAS core type this CPU's instruction set supports, or None."""
    if {"avx512f", "avx512bw", "avx512dq", "avx512vl"} <= flags:
        return "SkylakeX"
    if {"avx2", "fma"} <= flags:
        return "Haswell"
    return None


def choose_kernel(exe, threads):
    """Probes OpenBLAS's own kernel choice and decides OPENBLAS_CORETYPE for every program.

    Returns (coretype or None, note for RESULTS.md, the probe's ceiling measurement)."""
    probe = measure_ceiling(exe, threads, dict(os.environ))
    if "OPENBLAS_CORETYPE" in os.environ:
        core = os.environ["OPENBLAS_CORETYPE"]
        return core, (f"OPENBLAS_CORETYPE={core} was set by the user and kept for every "
                      f"program (OpenBLAS reports kernel {probe['core']})."), probe
    target = proper_core(cpu_flags())
    if probe["core"].lower() in GENERIC_CORES and target:
        return target, (f"OpenBLAS does not recognize this CPU and picked its generic "
                        f"{probe['core']} kernel ({probe['gflops']:.0f} GFLOP/s on sgemm 1024); "
                        f"the CPU has {'AVX-512' if target == 'SkylakeX' else 'AVX2+FMA'}, so "
                        f"OPENBLAS_CORETYPE={target} is set for every program of this benchmark "
                        f"(sgemm ceiling, nabla and PyTorch), which all use the same "
                        f"OpenBLAS."), probe
    return None, (f"OpenBLAS picked its {probe['core']} kernel by itself; OPENBLAS_CORETYPE "
                  f"is not set."), probe


def program_environments(coretype):
    """The environment of each program: the caller's, plus the chosen kernel for all, plus
    single-threaded OpenBLAS for tuned PyTorch."""
    base = dict(os.environ)
    if coretype:
        base["OPENBLAS_CORETYPE"] = coretype
    tuned = dict(base, OPENBLAS_NUM_THREADS="1")
    return {"nabla": base, "torch-shipped": base, "torch-tuned": tuned}


# ---------------------------------------------------------------------------------------------
# The machine


def first_line(argv):
    try:
        out = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        return out.stdout.strip().splitlines()[0] if out.stdout.strip() else "unknown"
    except OSError:
        return "unknown"


def lscpu_field(name):
    out = subprocess.run(["lscpu"], stdout=subprocess.PIPE, text=True).stdout
    match = re.search(rf"^{re.escape(name)}:\s*(.+)$", out, re.M)
    return match.group(1).strip() if match else "unknown"


def debian_version(package):
    return first_line(["dpkg-query", "-W", "-f=${Version}", package])


def machine_description(args, ceiling):
    """What the report says about the machine; `ceiling` is a measurement with the kernel used."""
    return {
        "CPU": f"{lscpu_field('Model name')} (family {lscpu_field('CPU family')}, "
               f"model {lscpu_field('Model')}), {os.cpu_count()} logical CPUs",
        "OS": f"{platform.system()} {platform.release()}",
        "OpenBLAS": f"{ceiling['config']} (Debian libopenblas0-pthread "
                    f"{debian_version('libopenblas0-pthread')})",
        "nabla": first_line([args.nabla, "--version"]),
        "gcc": first_line(["gcc", "--version"]),
        "Python (PyTorch side)": first_line([args.python, "--version"]),
    }


# ---------------------------------------------------------------------------------------------
# Summaries


def median_of(runs, workload, program, attribute):
    return statistics.median(getattr(r, attribute) for r in runs
                             if r.workload == workload and r.program == program)


def summarize(runs, workloads, ceiling):
    """Per workload and program: median samples/s, RSS, accuracy, GFLOP/s, % of ceiling."""
    table = {}
    for w in workloads:
        for p in PROGRAMS:
            sps = median_of(runs, w.name, p, "samples_per_second")
            gflops = 3 * w.forward_flops() * sps * 1e-9
            accuracies = [r.test_accuracy for r in runs if r.workload == w.name and r.program == p]
            table[w.name, p] = {
                "sps": sps, "gflops": gflops, "ceiling_fraction": gflops / ceiling,
                "accuracy_sd": statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0,
                "rss_kib": median_of(runs, w.name, p, "peak_rss_kib"),
                "accuracy": median_of(runs, w.name, p, "test_accuracy"),
            }
    return table


def faster_torch(table, workload):
    return max(("torch-shipped", "torch-tuned"), key=lambda p: table[workload, p]["sps"])


def torch_accuracy(runs, workload):
    """PyTorch's median test accuracy over all its runs, both configurations (they train the
    same model the same way; only the threading differs)."""
    return statistics.median(r.test_accuracy for r in runs
                             if r.workload == workload and r.program != "nabla")


def epochs_text(n):
    return f"{n} epoch{'' if n == 1 else 's'}"


def trained_rows(w, accuracy_runs, accuracy_epochs):
    """The rows of w's accuracy target after its epochs, judged from the --accuracy-epochs
    runs; without those runs, or with runs of another length, the rows say so."""
    t = w.trained
    least = (f"{w.name}: nabla test accuracy after {t.epochs} epochs", f">= {100 * t.least:g}%")
    close = (f"{w.name}: test accuracy after {t.epochs} epochs, nabla minus PyTorch",
             f"within ±{t.points:g}")
    if accuracy_epochs != t.epochs:
        why = (f"not measured (add --accuracy-epochs {t.epochs})" if accuracy_epochs == 0 else
               f"not judged (the runs were {epochs_text(accuracy_epochs)})")
        return [(least[0], "-", least[1], why), (close[0], "-", close[1], why)]
    nabla = statistics.median(r.test_accuracy for r in accuracy_runs
                              if r.workload == w.name and r.program == "nabla")
    torch = statistics.median(r.test_accuracy for r in accuracy_runs
                              if r.workload == w.name and r.program != "nabla")
    diff = 100 * (nabla - torch)
    return [(least[0], f"{100 * nabla:.2f}%", least[1], nabla >= t.least),
            (close[0], f"{diff:+.2f} points", close[1], abs(diff) <= t.points)]


def judge_targets(runs, workloads, table, accuracy_runs, accuracy_epochs):
    """Rows (target, measured, required, met) for every target the chosen workloads cover;
    `met` is True, False, or a string that says why the target was not judged."""
    rows = []
    for w in workloads:
        fast = faster_torch(table, w.name)
        ratio = table[w.name, "nabla"]["sps"] / table[w.name, fast]["sps"]
        rows.append((f"{w.name}: nabla samples/s vs the faster PyTorch ({PROGRAM_TITLES[fast]})",
                     f"{ratio:.2f}x", f">= {w.speedup_target:g}x", ratio >= w.speedup_target))
        if w.ceiling_target is not None:
            fraction = table[w.name, "nabla"]["ceiling_fraction"]
            rows.append((f"{w.name}: nabla effective GFLOP/s vs the sgemm ceiling",
                         f"{100 * fraction:.1f}%", f">= {100 * w.ceiling_target:.0f}%",
                         fraction >= w.ceiling_target))
        if w.memory_target is not None:
            nabla_rss = table[w.name, "nabla"]["rss_kib"]
            torch_rss = min(table[w.name, p]["rss_kib"] for p in PROGRAMS[1:])
            ratio = nabla_rss / torch_rss
            rows.append((f"{w.name}: nabla peak RSS vs the smaller PyTorch peak RSS",
                         f"{ratio:.3f} ({nabla_rss / 1024:.0f} / {torch_rss / 1024:.0f} MiB)",
                         f"<= {w.memory_target:.3g}", ratio <= w.memory_target))
        if w.accuracy_points is not None:
            diff = 100 * (table[w.name, "nabla"]["accuracy"] - torch_accuracy(runs, w.name))
            rows.append((f"{w.name}: test accuracy, nabla minus PyTorch", f"{diff:+.2f} points",
                         f"within ±{w.accuracy_points:g}", abs(diff) <= w.accuracy_points))
        if w.trained is not None:
            rows += trained_rows(w, accuracy_runs, accuracy_epochs)
    return rows


# ---------------------------------------------------------------------------------------------
# Markdown


def markdown_table(header, rows):
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def throughput_table(workloads, table):
    rows = []
    for w in workloads:
        n, s, t = (table[w.name, p]["sps"] for p in PROGRAMS)
        fast = faster_torch(table, w.name)
        rows.append((w.title, f"{n:,.0f}", f"{s:,.0f}", f"{t:,.0f}", f"{n / s:.2f}x",
                     f"{n / t:.2f}x", f"**{n / table[w.name, fast]['sps']:.2f}x**"))
    return markdown_table(["workload", "nabla", "PyTorch as shipped", "PyTorch tuned",
                           "nabla / shipped", "nabla / tuned", "nabla / faster PyTorch"], rows)


def flops_table(workloads, table):
    rows = []
    for w in workloads:
        cells = [w.title, f"{w.parameters():,}", f"{w.forward_flops() * 1e-6:.2f}"]
        for p in PROGRAMS:
            e = table[w.name, p]
            cells.append(f"{e['gflops']:.1f} ({100 * e['ceiling_fraction']:.0f}%)")
        rows.append(cells)
    return markdown_table(["workload", "parameters", "forward MFLOP per sample", "nabla",
                           "PyTorch as shipped", "PyTorch tuned"], rows)


def flops_note(workloads):
    """How the FLOP count compares with 6 x parameters (what earlier reports counted) for the
    dense workloads, where the two differ only by the biases and batch-norm parameters."""
    dense = [w for w in workloads if w.dense_widths() is not None]
    if not dense:
        return ""
    gaps = ", ".join(f"{w.name} {100 * (1 - 3 * w.forward_flops() / (6 * w.parameters())):.2f}%"
                     for w in dense)
    return (f" For a dense network 3 x forward FLOPs is 6 x its weights, a little below "
            f"6 x parameters (the count of earlier reports), which has the biases and batch-norm "
            f"parameters too: {gaps} below.")


def memory_accuracy_table(workloads, table):
    rows = []
    for w in workloads:
        cells = [w.title]
        cells += [f"{table[w.name, p]['rss_kib'] / 1024:.0f}" for p in PROGRAMS]
        cells += [f"{100 * table[w.name, p]['accuracy']:.2f} (sd {100 * table[w.name, p]['accuracy_sd']:.2f})"
                  for p in PROGRAMS]
        rows.append(cells)
    return markdown_table(["workload", "nabla MiB", "shipped MiB", "tuned MiB",
                           "nabla acc % (sd over seeds)", "shipped acc %", "tuned acc %"], rows)


def targets_table(target_rows):
    def result(ok):
        return ok if isinstance(ok, str) else "met" if ok else "**NOT met**"
    return markdown_table(["target", "measured", "required", "result"],
                          [(t, m, r, result(ok)) for t, m, r, ok in target_rows])


def accuracy_table(workloads, accuracy_runs, epochs):
    """The --accuracy-epochs runs: each seed's test accuracy, the medians, the training time."""
    rows = []
    for w in workloads:
        mine = [r for r in accuracy_runs if r.workload == w.name]
        if not mine:
            continue
        nabla = [r for r in mine if r.program == "nabla"]
        torch = [r for r in mine if r.program != "nabla"]
        def accs(rs):
            return ", ".join(f"{100 * r.test_accuracy:.2f}" for r in rs)
        def med(rs, attr):
            return statistics.median(getattr(r, attr) for r in rs)
        rows.append((w.title, epochs, PROGRAM_TITLES[torch[0].program], accs(nabla),
                     f"**{100 * med(nabla, 'test_accuracy'):.2f}**", accs(torch),
                     f"**{100 * med(torch, 'test_accuracy'):.2f}**",
                     f"{med(nabla, 'train_seconds'):.0f}", f"{med(torch, 'train_seconds'):.0f}"))
    return markdown_table(["workload", "epochs", "PyTorch configuration", "nabla acc % by seed",
                           "nabla median", "PyTorch acc % by seed", "PyTorch median",
                           "nabla train s", "PyTorch train s"], rows)


def raw_table(runs):
    return markdown_table(
        ["workload", "round", "program", "samples/s", "test acc %", "peak RSS MiB",
         "train s", "wall s"],
        [(r.workload, r.round, r.program, f"{r.samples_per_second:,.0f}",
          f"{100 * r.test_accuracy:.2f}", f"{r.peak_rss_kib / 1024:.0f}",
          f"{r.train_seconds:.2f}", f"{r.wall_seconds:.1f}") for r in runs])


def bounds_table(workloads, table, products, ceiling, threads):
    """What the targets ask for, against two ceilings: the sgemm ceiling, and the products of
    the workload's own training step with nothing else, at `threads` times their 1-thread
    speed (a perfect split)."""
    rows = []
    for w in workloads:
        if products[w.name] is None:
            continue
        fast = faster_torch(table, w.name)
        bound = threads * products[w.name]["samples_per_second"]
        needed = w.speedup_target * table[w.name, fast]["sps"]
        nabla = table[w.name, "nabla"]["sps"]
        rows.append((w.title, f"{products[w.name]['samples_per_second']:,.0f}", f"{bound:,.0f}",
                     f"{nabla:,.0f} ({100 * nabla / bound:.0f}%)",
                     f"{needed:,.0f}",
                     f"{100 * 3 * w.forward_flops() * needed * 1e-9 / ceiling:.0f}%",
                     f"{100 * needed / bound:.0f}%"))
    return markdown_table(
        ("workload", "products alone, 1 thread", f"products alone, {threads} threads (bound)",
         "nabla (% of bound)", "speed target needs", "that as % of sgemm ceiling",
         "that as % of bound"), rows)


def summary_tables(workloads, table, target_rows, ceiling_text, bounds, accuracy):
    """The tables printed to stdout and placed in RESULTS.md; `bounds` and `accuracy` may be
    None (no dense workload; no --accuracy-epochs runs)."""
    parts = [
        "### Training throughput (median samples/s, training loop only)", throughput_table(
            workloads, table),
        "Targets are judged against the faster of the two PyTorch configurations.",
        f"### Effective GFLOP/s and % of the sgemm ceiling\n\n"
        f"Effective GFLOP/s: 3 x the forward FLOPs of every conv2d and linear layer "
        f"(2·out·in·kh·kw·Ho·Wo and 2·in·out a sample) x samples/s: a conv2d counted as a "
        f"direct convolution, whatever computes it (nabla does 3x3 stride-1 convolutions with "
        f"8+ channels in by Winograd's method, 2.25 times fewer multiplications; bench/README.md)."
        f"{flops_note(workloads)} "
        f"{ceiling_text}", flops_table(workloads, table),
        "### Peak resident memory (/usr/bin/time -v, median) and test accuracy (median)",
        memory_accuracy_table(workloads, table)]
    if accuracy:
        parts += ["### Test accuracy after the --accuracy-epochs runs", accuracy]
    parts += ["### Targets", targets_table(target_rows)]
    if bounds:
        parts += [
            "### What the speed targets ask for\n\n"
            "samples/s. *Products alone* runs only the matrix products of one training step of "
            "the workload (forward, weight and input gradients, same shapes and batch; "
            "bench/step_products.c) on one OpenBLAS thread; a trainer on OpenBLAS can at best "
            "run them that fast on each thread, so their speed times the threads bounds any "
            "such trainer. *Speed target needs* is the target ratio times the faster PyTorch. "
            "Dense workloads only: `make bench-conv` times the CNN's convolutions alone.",
            bounds]
    return "\n\n".join(parts)


def reproduce_command(args):
    """`make bench ...` with the arguments given, less the --nabla that make itself passes."""
    argv = sys.argv[1:]
    if argv[:1] == ["--nabla"] and os.path.realpath(args.nabla) == os.path.realpath(DEFAULT_NABLA):
        argv = argv[2:]
    return "make bench" + (f" BENCH_ARGS={shlex.quote(shlex.join(argv))}" if argv else "")


def results_markdown(args, machine, kernel_note, ceilings, summary, runs, accuracy_runs):
    torch_versions = sorted({r.extra["torch"] for r in runs if "torch" in r.extra})
    machine = dict(machine, PyTorch=f"{', '.join(torch_versions) or 'unknown'} (Debian "
                   f"python3-torch {debian_version('python3-torch')})")
    env_notes = [f"{k}={os.environ[k]}" for k in sorted(os.environ)
                 if k.startswith(("OPENBLAS_", "OMP_", "MKL_", "GOTO"))]
    lines = [
        "# nabla vs PyTorch: training benchmark",
        "",
        f"Date: {datetime.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')}  ",
        f"Reproduce: `{reproduce_command(args)}` "
        f"(builds, then runs `python3 bench/run.py {shlex.join(sys.argv[1:])}`)",
        "",
        f"Every workload: {args.epochs} epoch(s) of Fashion-MNIST (60,000 training, 10,000 test "
        f"images), Adam lr 0.001, weights drawn as nabla draws them (He normal before relu, "
        f"zero biases; see nb_model_build) in both programs, each program building the model "
        f"from its text (the Workloads section), {args.threads} threads in both programs, "
        f"{args.runs} "
        f"alternating round(s) of nabla, PyTorch as shipped and PyTorch tuned "
        f"(OPENBLAS_NUM_THREADS=1 so OpenBLAS does not start its own threads inside torch's); "
        f"round r uses seed r in every program. Medians over the rounds.",
        "",
        "## Workloads",
        "",
        markdown_table(["workload", "`--layers` (input 1x28x28, 10 classes)", "batch"],
                       [(w.name, f"`{w.model}`", w.batch_size) for w in args.workloads]),
        "",
        "## Machine",
        "",
    ]
    lines += [f"- {k}: {v}" for k, v in machine.items()]
    lines += [f"- caller's environment: {', '.join(env_notes) or 'no OpenBLAS/OpenMP variables'}",
              "", "## OpenBLAS kernel", "", kernel_note, "", "## Results", "", summary, "",
              "## Raw runs", "",
              f"sgemm ceiling (n=1024, {args.threads} threads, best 0.5 s block): start "
              f"{ceilings[0]['gflops']:.1f}, end {ceilings[1]['gflops']:.1f} GFLOP/s, "
              f"kernel {ceilings[0]['core']}. 1-minute load average before each: "
              f"{ceilings[0]['load_average']:.2f} and {ceilings[1]['load_average']:.2f} "
              f"on {os.cpu_count()} CPUs (other work on the machine skews every number here).",
              "", raw_table(runs), ""]
    if accuracy_runs:
        lines += [f"Accuracy runs ({epochs_text(args.accuracy_epochs)} each, after the speed "
                  f"rounds and the second ceiling measurement; round is the seed):", "",
                  raw_table(accuracy_runs), ""]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Main


def parse_workloads(text):
    names = [n for n in re.split(r"[,\s]+", text) if n]
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown workload(s) {', '.join(unknown) or '(none)'}; choose from "
            f"{', '.join(WORKLOADS)}")
    return [WORKLOADS[n] for n in WORKLOADS if n in names]  # in the table's order


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=3, help="alternating rounds per workload [3]")
    p.add_argument("--epochs", type=int, default=1, help="training epochs per run [1]")
    p.add_argument("--threads", type=int, default=2, help="threads for both programs [2]")
    p.add_argument("--workloads", type=parse_workloads, default=list(WORKLOADS.values()),
                   help=f"comma-separated subset of {','.join(WORKLOADS)} [all]")
    p.add_argument("--nabla", default=DEFAULT_NABLA,
                   help="the nabla program [build/nabla]")
    p.add_argument("--python", default="/usr/bin/python3",
                   help="the Python that has torch [/usr/bin/python3]")
    p.add_argument("--out", default=os.path.join(BENCH_DIR, "RESULTS.md"),
                   help="the Markdown report [bench/RESULTS.md]")
    p.add_argument("--accuracy-epochs", type=int, default=0, metavar="N",
                   help="after the speed rounds, train the workloads that have an accuracy "
                        "target (cnn: after 10 epochs) N epochs in nabla and in the faster "
                        "PyTorch, and judge that target; minutes a run [0: not run]")
    p.add_argument("--accuracy-runs", type=int, metavar="K",
                   help="seeds 1..K of those runs, each program [1]")
    a = p.parse_args()
    if a.accuracy_runs is not None and not a.accuracy_epochs:
        p.error("--accuracy-runs needs --accuracy-epochs")
    a.accuracy_runs = 1 if a.accuracy_runs is None else a.accuracy_runs
    if a.runs < 1 or a.epochs < 1 or a.threads < 1 or a.accuracy_runs < 1:
        p.error("--runs, --epochs, --threads and --accuracy-runs must be at least 1")
    if a.accuracy_epochs < 0:
        p.error("--accuracy-epochs must be 0 (not run) or more")
    if a.accuracy_epochs and not any(w.trained for w in a.workloads):
        p.error("--accuracy-epochs: none of the chosen workloads has an accuracy target ("
                + ", ".join(w.name for w in WORKLOADS.values() if w.trained) + " has)")
    return a


def timed_run(args, workload, program, envs, scratch, round_, rounds, epochs):
    """run_program, logged."""
    r = run_program(args, workload, program, envs, scratch, round_, epochs)
    log(f"[{workload.name} {round_}/{rounds}, {epochs_text(epochs)}] {program:13s} "
        f"{r.samples_per_second:9,.0f} samples/s  acc {100 * r.test_accuracy:.2f}%  "
        f"{r.peak_rss_kib / 1024:5.0f} MiB  {r.wall_seconds:5.1f} s")
    return r


def check_tools(args):
    for path, why in [(TIME, "install the Debian package 'time'"),
                      (args.nabla, "build it with 'make'"), (args.python, "")]:
        if not os.access(path, os.X_OK):
            raise BenchError(f"{path} is not an executable{': ' + why if why else ''}")


def benchmark(args, scratch):
    """Runs everything and returns the Markdown report; prints the summary to stdout."""
    check_tools(args)
    ceiling_exe = compile_ceiling(scratch)
    products_exe = compile_products(scratch)
    coretype, kernel_note, probe = choose_kernel(ceiling_exe, args.threads)
    log(kernel_note)
    envs = program_environments(coretype)
    kernel_changed = coretype is not None and coretype != os.environ.get("OPENBLAS_CORETYPE")
    start = measure_ceiling(ceiling_exe, args.threads, envs["nabla"]) if kernel_changed else probe
    log(f"sgemm ceiling at start: {start['gflops']:.1f} GFLOP/s ({start['core']})")

    runs = []
    for w in args.workloads:
        for round_ in range(1, args.runs + 1):
            for program in PROGRAMS:
                runs.append(timed_run(args, w, program, envs, scratch, round_, args.runs,
                                      args.epochs))

    end = measure_ceiling(ceiling_exe, args.threads, envs["nabla"])
    log(f"sgemm ceiling at end: {end['gflops']:.1f} GFLOP/s ({end['core']})")
    ceiling = max(start["gflops"], end["gflops"])
    ceiling_text = (f"sgemm ceiling: {ceiling:.1f} GFLOP/s (the larger of {start['gflops']:.1f} "
                    f"at the start and {end['gflops']:.1f} at the end; n=1024, "
                    f"{args.threads} threads, OpenBLAS kernel {start['core']}).")
    products = {w.name: measure_products(products_exe, w, envs["nabla"]) for w in args.workloads}
    table = summarize(runs, args.workloads, ceiling)
    bounds = (bounds_table(args.workloads, table, products, ceiling, args.threads)
              if any(products.values()) else None)

    # The long accuracy runs: nabla and the faster PyTorch configuration, alternating seeds.
    accuracy_runs = []
    for w in args.workloads if args.accuracy_epochs else []:
        if w.trained is None:
            continue
        for seed in range(1, args.accuracy_runs + 1):
            for program in ("nabla", faster_torch(table, w.name)):
                accuracy_runs.append(timed_run(args, w, program, envs, scratch, seed,
                                               args.accuracy_runs, args.accuracy_epochs))
    accuracy = (accuracy_table(args.workloads, accuracy_runs, args.accuracy_epochs)
                if accuracy_runs else None)
    targets = judge_targets(runs, args.workloads, table, accuracy_runs, args.accuracy_epochs)
    summary = summary_tables(args.workloads, table, targets, ceiling_text, bounds, accuracy)
    print(summary, flush=True)
    return results_markdown(args, machine_description(args, start), kernel_note, (start, end),
                            summary, runs, accuracy_runs)


def main():
    args = parse_args()
    # Turn `kill` into an exception too, so the scratch directory is always removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        with tempfile.TemporaryDirectory(prefix="nabla-bench-") as scratch:
            report = benchmark(args, scratch)
    except BenchError as e:
        log(f"bench: {e}")
        return 1
    with open(args.out, "w") as f:
        f.write(report)
    log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

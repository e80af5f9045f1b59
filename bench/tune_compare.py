#!/usr/bin/python3
"""`nabla tune` against Optuna driving `nabla train`, side by side, with the same budget.

Four tuners search one space on Fashion-MNIST (N trials of E epochs, W workers, ASHA pruning):
  nabla-random  `nabla tune --sampler random`
  nabla-tpe     `nabla tune --sampler tpe` (its default --tpe-lag)
  optuna-random bench/tune_optuna.py --sampler random --pruner asha
  optuna-tpe    bench/tune_optuna.py --sampler tpe --pruner asha
for each number of trials N in --trials (24 and 64: one table each). Repeat r uses seed r in
all four. The four runs of a repeat follow each other and their order rotates from repeat to
repeat, so a slow spell of the shared machine hits all alike. Each run gets a fresh directory;
nothing is cached between runs.

Reported per run: the wall time of the whole command, the best dev accuracy, the test accuracy
of the best model (measured once, by the tuner itself), the complete/pruned/failed counts and,
for nabla, the worker-seconds its workers waited for earlier results (TPE's lag rule); then the
medians over repeats, and whether nabla-tpe meets the target against optuna-tpe (a median best
dev accuracy at least as high, in less median wall time). Writes bench/TUNE_RESULTS.md and
prints its tables.

    /usr/bin/python3 bench/tune_compare.py --nabla build/nabla
    /usr/bin/python3 bench/tune_compare.py --repeats 1 --trials 4 --epochs 1   # smoke run
"""

import argparse
import datetime
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from bench_args import check_args

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
OPTUNA_SCRIPT = os.path.join(HERE, "tune_optuna.py")

# The space of the issue, in `nabla tune --space` syntax. bench/tune_optuna.py spells the same
# space with Optuna's suggest_* calls (see its LR_RANGE ... WEIGHT_DECAY_RANGE).
SPACE = ("lr=log(1e-4,1e-1); beta=1-log(0.9,0.999); batch-size=choice(32,64,128,256); "
         "layers=choice(128|256,128|512,256,128); batchnorm=choice(on,off); "
         "weight-decay=log(1e-6,1e-2)")

METHODS = ["nabla-random", "nabla-tpe", "optuna-random", "optuna-tpe"]
FINISHED_STATES = ("complete", "pruned", "failed")


def log(message):
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# The commands


def nabla_command(args, sampler, trials, seed, out):
    return [args.nabla, "tune", "--data", "fashion-mnist", "--epochs", str(args.epochs),
            "--space", SPACE, "--sampler", sampler, "--trials", str(trials),
            "--workers", str(args.workers), "--prune", "asha", "--seed", str(seed),
            "--out", out, "--quiet"]


def optuna_command(args, sampler, trials, seed, out):
    return [args.python, OPTUNA_SCRIPT, "--nabla", args.nabla, "--sampler", sampler,
            "--pruner", "asha", "--trials", str(trials), "--epochs", str(args.epochs),
            "--workers", str(args.workers), "--seed", str(seed), "--out", out, "--json"]


def command_for(args, method, trials, seed, out):
    tuner, sampler = method.split("-", 1)
    command = nabla_command if tuner == "nabla" else optuna_command
    return command(args, sampler, trials, seed, out)


# ---------------------------------------------------------------------------------------------
# Reading what each tuner left


def journal_counts(path):
    """complete/pruned/failed from a `nabla tune` journal: the last finished state of each
    trial (by its "trial", "number" or "id" key when it has one, else one line per trial)."""
    last = {}
    with open(path) as f:
        for i, line in enumerate(f):
            if not line.strip():
                continue
            entry = json.loads(line)
            state = entry.get("state")
            if state not in FINISHED_STATES:
                continue
            key = next((entry[k] for k in ("trial", "number", "id") if k in entry), f"line-{i}")
            last[key] = state
    states = list(last.values())
    return {s: states.count(s) for s in FINISHED_STATES}


def read_nabla(out):
    with open(os.path.join(out, "best.json")) as f:
        best = json.load(f)
    return {"dev_accuracy": best.get("dev_accuracy"), "test_accuracy": best.get("test_accuracy"),
            "params": best.get("params"), "counts": journal_counts(os.path.join(out, "journal.jsonl")),
            "inner_seconds": None, "waited_seconds": best.get("waited_seconds")}


def read_optuna(stdout):
    result = json.loads(stdout)
    best = result["best"] or {}
    return {"dev_accuracy": best.get("dev_accuracy"), "test_accuracy": best.get("test_accuracy"),
            "params": best.get("params"), "counts": result["counts"],
            "inner_seconds": result["wall_seconds"], "waited_seconds": None}


def run_one(args, method, trials, seed, root):
    out = os.path.join(root, f"{method}-{trials}-{seed}")
    if os.path.exists(out):
        sys.exit(f"tune_compare.py: {out} already exists; every run needs a fresh directory")
    argv = command_for(args, method, trials, seed, out)
    start = time.perf_counter()
    proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - start
    run = {"method": method, "trials": trials, "seed": seed, "wall_seconds": wall,
           "status": proc.returncode, "error": None}
    try:
        if proc.returncode != 0:
            raise RuntimeError(f"exit status {proc.returncode}")
        run.update(read_nabla(out) if method.startswith("nabla") else read_optuna(proc.stdout))
    except (RuntimeError, OSError, ValueError, KeyError) as e:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        run["error"] = f"{shlex.join(argv)}: {e}\n{tail}"
    if not args.out:
        shutil.rmtree(out, ignore_errors=True)  # after the clock stopped, for every tuner alike
    return run


# ---------------------------------------------------------------------------------------------
# The machine


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def first_line(argv):
    try:
        out = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    except OSError:
        return "unknown"
    text = out.stdout.strip()
    return text.splitlines()[0] if text and out.returncode == 0 else "unknown"


def git_commit(repo):
    """The commit checked out in `repo`, read from .git directly (no git program needed)."""
    gitdir = os.path.join(repo, ".git")
    try:
        if os.path.isfile(gitdir):  # a worktree or submodule: "gitdir: <path>"
            with open(gitdir) as f:
                gitdir = os.path.join(repo, f.read().split(":", 1)[1].strip())
        common = gitdir
        if os.path.isfile(os.path.join(gitdir, "commondir")):
            with open(os.path.join(gitdir, "commondir")) as f:
                common = os.path.join(gitdir, f.read().strip())
        with open(os.path.join(gitdir, "HEAD")) as f:
            head = f.read().strip()
        if not head.startswith("ref:"):
            return head
        ref = head.split(":", 1)[1].strip()
        for base in (gitdir, common):
            path = os.path.join(base, ref)
            if os.path.isfile(path):
                with open(path) as f:
                    return f.read().strip()
        with open(os.path.join(common, "packed-refs")) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 2 and parts[1] == ref:
                    return parts[0]
    except (OSError, IndexError):
        pass
    return "unknown"


def machine(args):
    facts = {
        "nproc": first_line(["nproc"]),
        "CPU": cpu_model(),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "nabla": f"{first_line([args.nabla, '--version'])}, commit {git_commit(REPO)}",
        "Optuna": f"python3-optuna {first_line(['dpkg-query', '-W', '-f=${Version}', 'python3-optuna'])}",
        "Python": first_line([args.python, "--version"]),
        "OS": f"{platform.system()} {platform.release()}",
    }
    if "OPENBLAS_CORETYPE" in os.environ:
        facts["OPENBLAS_CORETYPE"] = os.environ["OPENBLAS_CORETYPE"]
    return facts


# ---------------------------------------------------------------------------------------------
# The report


def fmt(value, digits=4):
    return "-" if value is None else f"{value:.{digits}f}"


def plural(n, word):
    return f"{n} {word}" + ("" if n == 1 else "s")


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def counts_text(counts):
    return "/".join(str(counts[s]) for s in FINISHED_STATES) if counts else "-"


def params_text(params):
    if not params:
        return "-"
    return ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                     for k, v in params.items())


def markdown_table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    # A "|" inside a cell (layers=128|256) would end the cell: escape it.
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def target_text(runs, trials):
    """Whether nabla-tpe meets the issue's target against optuna-tpe at this many trials."""
    def med(method, key):
        return median([r[key] for r in runs if r["method"] == method and not r["error"]])
    dev = {m: med(m, "dev_accuracy") for m in ("nabla-tpe", "optuna-tpe")}
    wall = {m: med(m, "wall_seconds") for m in ("nabla-tpe", "optuna-tpe")}
    if None in dev.values() or None in wall.values():
        return f"Target at {trials} trials: not measured (nabla-tpe or optuna-tpe has no run)."
    accuracy_met = dev["nabla-tpe"] >= dev["optuna-tpe"]
    time_met = wall["nabla-tpe"] < wall["optuna-tpe"]
    return (f"Target at {trials} trials (nabla-tpe's median best dev accuracy at least "
            f"optuna-tpe's, in less median wall time): accuracy {fmt(dev['nabla-tpe'])} against "
            f"{fmt(dev['optuna-tpe'])}, {'met' if accuracy_met else 'NOT met'}; wall time "
            f"{fmt(wall['nabla-tpe'], 1)} s against {fmt(wall['optuna-tpe'], 1)} s, "
            f"{'met' if time_met else 'NOT met'}.")


def summary_table(runs, methods):
    rows = []
    for method in methods:
        good = [r for r in runs if r["method"] == method and not r["error"]]
        failed = sum(1 for r in runs if r["method"] == method and r["error"])
        med_counts = None
        if good:
            med_counts = {s: median([r["counts"][s] for r in good]) for s in FINISHED_STATES}
            med_counts = {s: f"{v:g}" for s, v in med_counts.items()}
        rows.append([method, f"{len(good)}" + (f" (+{failed} failed)" if failed else ""),
                     fmt(median([r["wall_seconds"] for r in good]), 1),
                     fmt(median([r["dev_accuracy"] for r in good])),
                     fmt(median([r["test_accuracy"] for r in good])),
                     counts_text(med_counts)])
    return markdown_table(["tuner", "runs", "wall s", "best dev acc", "test acc of best",
                           "complete/pruned/failed"], rows)


def runs_table(runs):
    rows = []
    for r in runs:
        if r["error"]:
            rows.append([r["seed"], r["method"], fmt(r["wall_seconds"], 1), "-", "-", "-", "-",
                         "-", f"FAILED (exit {r['status']})"])
            continue
        rows.append([r["seed"], r["method"], fmt(r["wall_seconds"], 1),
                     fmt(r["inner_seconds"], 1), fmt(r["waited_seconds"], 1),
                     fmt(r["dev_accuracy"]), fmt(r["test_accuracy"]),
                     counts_text(r["counts"]), params_text(r["params"])])
    return markdown_table(["seed", "tuner", "wall s", "study s", "waited s", "best dev acc",
                           "test acc of best", "c/p/f", "best parameters"], rows)


def report(args, methods, runs, facts, invocation):
    commands = "\n".join(f"    {shlex.join(command_for(args, m, 'N', 'S', 'DIR/' + m + '-N-S'))}"
                         for m in methods)
    errors = [r for r in runs if r["error"]]
    parts = [
        "# `nabla tune` against Optuna",
        "",
        "Generated by `bench/tune_compare.py`; regenerate it, don't edit it. See bench/README.md.",
        "",
        f"Fashion-MNIST (10% of the training set as the dev set), trials of "
        f"{plural(args.epochs, 'epoch')}, {plural(args.workers, 'worker')}, ASHA pruning, the "
        f"same search space. Medians over {plural(args.repeats, 'repeat')} (seeds "
        f"0..{args.repeats - 1}); the runs of a repeat follow each other in an order that "
        "rotates between repeats.",
    ]
    for trials in args.trials:
        these = [r for r in runs if r["trials"] == trials]
        parts += ["", f"## {plural(trials, 'trial')}", "", summary_table(these, methods), "",
                  target_text(these, trials)]
    parts += [
        "",
        "*wall s*: the whole command, timed by tune_compare.py, from its start to its exit: "
        "program start, the search and the one test evaluation of the best model (and, for "
        "Optuna, starting Python and importing Optuna). *study s*: Optuna's own clock, from "
        "`create_study` to the test accuracy. *waited s*: nabla's worker-seconds with a worker "
        "free and the next trial waiting for the earlier results it learns from (best.json's "
        "`waited_seconds`; TPE's lag rule). *best dev acc*: the highest dev accuracy among "
        "complete trials. *test acc of best*: that trial's model on the 10,000 test images.",
    ]
    for trials in args.trials:
        parts += ["", f"## Every run, {plural(trials, 'trial')}", "",
                  runs_table([r for r in runs if r["trials"] == trials])]
    parts += [
        "",
        "## Commands",
        "",
        f"    {invocation}",
        "",
        "runs, for each number of trials N and seed S (DIR is a fresh directory per run):",
        "",
        commands,
        "",
        "## Machine",
        "",
        "\n".join(f"- {k}: {v}" for k, v in facts.items()),
    ]
    if errors:
        parts += ["", "## Failures", ""]
        for r in errors:
            parts += [f"{r['method']}, {r['trials']} trials, seed {r['seed']}:", "", "```",
                      r["error"], "```", ""]
    return "\n".join(parts).rstrip() + "\n"


# ---------------------------------------------------------------------------------------------


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--nabla", default=os.path.join(REPO, "build", "nabla"),
                   help="the nabla program [build/nabla]")
    p.add_argument("--python", default="/usr/bin/python3",
                   help="the Python that has optuna, for tune_optuna.py [/usr/bin/python3]")
    p.add_argument("--repeats", type=int, default=10, help="repeats, seeds 0..K-1 [10]")
    p.add_argument("--trials", default="24,64",
                   help="the numbers of trials, comma-separated: one table each [24,64]")
    p.add_argument("--epochs", type=int, default=2, help="epochs per trial [2]")
    p.add_argument("--workers", type=int, default=2, help="[2]")
    p.add_argument("--out", help="keep every run's directory under this new directory "
                                 "[a temporary directory; each run's is removed once read]")
    p.add_argument("--results", default=os.path.join(HERE, "TUNE_RESULTS.md"),
                   help="the report to write [bench/TUNE_RESULTS.md]")
    p.add_argument("--skip-nabla", action="store_true",
                   help="compare only the two Optuna samplers (while `nabla tune` is missing)")
    args = p.parse_args()
    try:
        args.trials = [int(n) for n in args.trials.split(",")]
    except ValueError:
        p.error(f"--trials {args.trials}: whole numbers separated by commas, such as 24,64")
    if any(n < 1 for n in args.trials):
        p.error("--trials: each must be at least 1")
    check_args(p, args, ("repeats", "epochs", "workers"))
    return args


def check_tools(args):
    if not args.skip_nabla:
        status = subprocess.run([args.nabla, "tune", "--help"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL).returncode
        if status != 0:
            sys.exit(f"tune_compare.py: `{args.nabla} tune --help` exited with status {status}: "
                     f"this nabla has no tune command; rebuild it, or pass --skip-nabla")
    if subprocess.run([args.python, "-c", "import optuna"], stdout=subprocess.DEVNULL,
                      stderr=subprocess.DEVNULL).returncode != 0:
        sys.exit(f"tune_compare.py: {args.python} cannot import optuna; install it with "
                 f"`sudo apt-get install python3-optuna`")


def main():
    args = parse_args()
    check_tools(args)
    invocation = shlex.join(["/usr/bin/python3", "bench/tune_compare.py"] + sys.argv[1:])
    methods = [m for m in METHODS if not (args.skip_nabla and m.startswith("nabla"))]
    if args.out:
        if os.path.isdir(args.out) and os.listdir(args.out):
            sys.exit(f"tune_compare.py: --out {args.out} is not empty; the runs need fresh "
                     f"directories")
        os.makedirs(args.out, exist_ok=True)
        root = os.path.abspath(args.out)
    else:
        root = tempfile.mkdtemp(prefix="tune-compare-")
    runs = []
    try:
        total = len(args.trials) * args.repeats * len(methods)
        for trials, seed in ((n, seed) for n in args.trials for seed in range(args.repeats)):
            order = methods[seed % len(methods):] + methods[:seed % len(methods)]
            for method in order:
                log(f"[{len(runs) + 1}/{total}] {method}, {trials} trials, seed {seed} ...")
                run = run_one(args, method, trials, seed, root)
                runs.append(run)
                if run["error"]:
                    log(f"    FAILED: {run['error']}")
                else:
                    log(f"    {run['wall_seconds']:.1f} s, best dev {fmt(run['dev_accuracy'])}, "
                        f"test {fmt(run['test_accuracy'])}, c/p/f {counts_text(run['counts'])}")
    finally:
        if not args.out:
            shutil.rmtree(root, ignore_errors=True)
    runs.sort(key=lambda r: (r["trials"], r["seed"], methods.index(r["method"])))
    text = report(args, methods, runs, machine(args), invocation)
    with open(args.results + ".tmp", "w") as f:
        f.write(text)
    os.replace(args.results + ".tmp", args.results)
    print(text)
    log(f"wrote {args.results}")
    return 1 if any(r["error"] for r in runs) else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""Optuna driving `nabla train`: the reference point for `nabla tune`.

A study over the same search space and budget as the `nabla tune` benchmark
(bench/tune_compare.py): each trial is one `nabla train` subprocess on Fashion-MNIST with a
10% dev split and no test set, Optuna's RandomSampler or TPESampler picks the parameters, and
Optuna's own pruner (ASHA or median) stops a trial early from the dev accuracy that nabla
writes to metrics.jsonl after every epoch. Dev accuracy is maximized. After the study, the
best trial's model is evaluated once on the test set with `nabla eval`.

Run it with Debian's Python (`/usr/bin/python3`), which has `python3-optuna`:

    /usr/bin/python3 bench/tune_optuna.py --nabla build/nabla --sampler tpe --json
"""

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

from bench_args import check_args

try:
    import optuna
except ImportError:
    sys.exit("tune_optuna.py: cannot import optuna. Install Debian's package with\n"
             "    sudo apt-get install python3-optuna\n"
             "and run this script with /usr/bin/python3 (not a pyenv or virtualenv python).")

# The search space of the benchmark, in the terms of `nabla tune --space`:
#   lr=log(1e-4,1e-1); beta=1-log(0.9,0.999); batch-size=choice(32,64,128,256);
#   layers=choice(128|256,128|512,256,128); batchnorm=choice(on,off);
#   weight-decay=log(1e-6,1e-2)
# beta is searched through 1-beta, log-uniform in [1e-3, 1e-1]: equal odds for 0.9..0.99
# and 0.99..0.999, where beta's effect lives.
LR_RANGE = (1e-4, 1e-1)
ONE_MINUS_BETA_RANGE = (1e-3, 1e-1)
BATCH_SIZES = [32, 64, 128, 256]
LAYERS = ["128|256", "128|512", "256", "128"]
BATCHNORM = ["on", "off"]
WEIGHT_DECAY_RANGE = (1e-6, 1e-2)

POLL_SECONDS = 0.05


def suggest(trial):
    """The six parameters, drawn with Optuna's own API."""
    return {
        "lr": trial.suggest_float("lr", *LR_RANGE, log=True),
        "one_minus_beta": trial.suggest_float("one_minus_beta", *ONE_MINUS_BETA_RANGE, log=True),
        "batch_size": trial.suggest_categorical("batch_size", BATCH_SIZES),
        "layers": trial.suggest_categorical("layers", LAYERS),
        "batchnorm": trial.suggest_categorical("batchnorm", BATCHNORM),
        "weight_decay": trial.suggest_float("weight_decay", *WEIGHT_DECAY_RANGE, log=True),
    }


def train_options(params):
    """`nabla train` options for one point of the space (repr keeps every digit of a float)."""
    options = ["--lr", repr(params["lr"]),
               "--beta", repr(1.0 - params["one_minus_beta"]),
               "--batch-size", str(params["batch_size"]),
               "--layers", params["layers"].replace("|", ","),
               "--weight-decay", repr(params["weight_decay"])]
    if params["batchnorm"] == "on":
        options.append("--batchnorm")
    return options


def nabla_params(params):
    """The parameters as `nabla tune` names them, for the report."""
    return {"lr": params["lr"], "beta": 1.0 - params["one_minus_beta"],
            "batch-size": params["batch_size"], "layers": params["layers"],
            "batchnorm": params["batchnorm"], "weight-decay": params["weight_decay"]}


class MetricsFollower:
    """Reads the epochs nabla appends to metrics.jsonl, one complete line at a time.

    nabla creates the file at the start of a run and appends one line per finished epoch, so a
    line without its newline is still being written and is left for the next poll."""

    def __init__(self, path):
        self.path = path
        self.offset = 0

    def new_epochs(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                chunk = f.read()
        except FileNotFoundError:
            return []
        end = chunk.rfind(b"\n")
        if end < 0:
            return []
        self.offset += end + 1
        return [json.loads(line) for line in chunk[:end].splitlines() if line.strip()]


def read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


class Objective:
    def __init__(self, args, threads, out_dir):
        self.args = args
        self.threads = threads
        self.out_dir = out_dir
        self.commands = {}
        self.lock = threading.Lock()

    def command(self, run_dir, params):
        return [self.args.nabla, "train", "--data", "fashion-mnist",
                "--epochs", str(self.args.epochs), "--dev-fraction", "0.1", "--test", "none",
                "--seed", "0", "--threads", str(self.threads), "--quiet",
                "--out", run_dir] + train_options(params)

    def __call__(self, trial):
        params = suggest(trial)
        run_dir = os.path.join(self.out_dir, f"trial-{trial.number}")
        argv = self.command(run_dir, params)
        with self.lock:
            self.commands[trial.number] = argv
        follower = MetricsFollower(os.path.join(run_dir, "metrics.jsonl"))
        last_accuracy = None
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        # stderr is read on a thread so a chatty failure can never fill the pipe and stall.
        stderr_chunks = []
        reader = threading.Thread(target=lambda: stderr_chunks.append(proc.stderr.read()))
        reader.start()
        try:
            while True:
                try:
                    proc.wait(timeout=POLL_SECONDS)
                    finished = True
                except subprocess.TimeoutExpired:
                    finished = False
                for record in follower.new_epochs():
                    epoch = int(record["epoch"])
                    accuracy = record.get("dev_accuracy")
                    if accuracy is None or not math.isfinite(accuracy):
                        continue
                    last_accuracy = accuracy
                    trial.report(accuracy, epoch)
                    # No pruning after the last epoch: the run is done by then, so stopping
                    # it would save nothing and only throw its result away.
                    if epoch < self.args.epochs and trial.should_prune():
                        raise optuna.TrialPruned(f"pruned after epoch {epoch}")
                if finished:
                    break
        finally:
            if proc.poll() is None:
                # SIGKILL, not SIGTERM: nabla answers SIGTERM by writing a checkpoint, which
                # a pruned trial does not need.
                proc.kill()
                proc.wait()
            reader.join()
        stderr = b"".join(c for c in stderr_chunks if c).decode(errors="replace").strip()
        if proc.returncode != 0:
            summary = read_json(os.path.join(run_dir, "summary.json"))
            if proc.returncode == 1 and summary and summary.get("diverged"):
                # A diverged run is a fact about its hyperparameters, not a broken benchmark,
                # but its dev accuracy is that of a net that blew up. We do what the Optuna
                # FAQ recommends for a trial that cannot produce a value: return NaN, which
                # Optuna records as a FAIL and the study goes on, rather than a made-up score.
                # RandomSampler does not care; TPESampler then learns only from complete and
                # pruned trials. `nabla tune` also records such a trial as failed, so the
                # counts compare one to one.
                print(f"tune_optuna.py: trial {trial.number} diverged at epoch "
                      f"{summary.get('diverged_epoch')} (last dev accuracy {last_accuracy})",
                      file=sys.stderr)
                return float("nan")
            # Anything else (bad usage, missing data, a crash) is a broken benchmark, not a
            # result: stop the study and show why.
            raise RuntimeError(f"trial {trial.number}: {' '.join(argv)} exited with status "
                               f"{proc.returncode}: {stderr}")
        summary = read_json(os.path.join(run_dir, "summary.json"))
        if not summary or summary.get("dev_accuracy") is None:
            raise RuntimeError(f"trial {trial.number}: no dev accuracy in {run_dir}/summary.json")
        return float(summary["dev_accuracy"])


def make_sampler(name, seed):
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def make_pruner(name):
    if name == "asha":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3,
                                                      min_early_stopping_rate=0)
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=0)
    return optuna.pruners.NopPruner()


def usable_cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def evaluate_test(nabla, model):
    """The test accuracy of the best model: the one and only use of the test set."""
    out = subprocess.run([nabla, "eval", "--model", model, "--json"], stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"nabla eval --model {model} failed: {out.stderr.strip()}")
    return float(json.loads(out.stdout)["accuracy"])


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nabla", default="build/nabla", help="the nabla program [build/nabla]")
    p.add_argument("--sampler", choices=["random", "tpe"], default="tpe", help="[tpe]")
    p.add_argument("--pruner", choices=["asha", "median", "none"], default="asha",
                   help="asha: SuccessiveHalvingPruner(min_resource=1, reduction_factor=3, "
                        "min_early_stopping_rate=0); median: MedianPruner(n_startup_trials=5, "
                        "n_warmup_steps=0) [asha]")
    p.add_argument("--trials", type=int, default=24, help="[24]")
    p.add_argument("--epochs", type=int, default=2, help="epochs per trial [2]")
    p.add_argument("--workers", type=int, default=2,
                   help="trials at once; each trial gets max(1, cores // workers) threads [2]")
    p.add_argument("--seed", type=int, default=0, help="the sampler's seed [0]")
    p.add_argument("--out", help="directory for the trial run directories, new or empty "
                                 "[a temporary directory, removed at the end]")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    args = p.parse_args(argv)
    check_args(p, args, ("trials", "epochs", "workers"))
    return args


def trial_rows(study):
    rows = []
    for t in study.trials:
        steps = t.intermediate_values
        rows.append({"number": t.number, "state": t.state.name.lower(),
                     "params": nabla_params(t.params) if len(t.params) == 6 else t.params,
                     "dev_accuracy": t.value if t.value is not None else
                     (steps[max(steps)] if steps else None),
                     "epochs": max(steps) if steps else 0})
    return rows


def run_study(args, out_dir):
    threads = max(1, usable_cores() // args.workers)
    objective = Objective(args, threads, out_dir)
    start = time.perf_counter()
    study = optuna.create_study(direction="maximize", sampler=make_sampler(args.sampler, args.seed),
                                pruner=make_pruner(args.pruner))
    # Threads, not processes: each trial spends its time waiting for its `nabla train`
    # subprocess, which is where the parallel work happens.
    study.optimize(objective, n_trials=args.trials, n_jobs=args.workers)

    states = [t.state for t in study.trials]
    counts = {"complete": states.count(optuna.trial.TrialState.COMPLETE),
              "pruned": states.count(optuna.trial.TrialState.PRUNED),
              "failed": states.count(optuna.trial.TrialState.FAIL)}
    result = {"sampler": args.sampler, "pruner": args.pruner, "trials": args.trials,
              "epochs": args.epochs, "workers": args.workers, "threads_per_trial": threads,
              "seed": args.seed, "optuna_version": optuna.__version__,
              "wall_seconds": None, "eval_seconds": 0.0, "counts": counts, "best": None,
              "trial_list": trial_rows(study)}
    if counts["complete"] == 0:
        result["wall_seconds"] = time.perf_counter() - start
        return result
    best = study.best_trial  # the highest dev accuracy among complete trials
    model = os.path.join(out_dir, f"trial-{best.number}", "model.safetensors")
    eval_start = time.perf_counter()
    test_accuracy = evaluate_test(args.nabla, model)
    end = time.perf_counter()
    # The wall time runs from the study's creation to the test accuracy of its best model,
    # like `nabla tune`'s, which ends with that evaluation too.
    result["wall_seconds"] = end - start
    result["eval_seconds"] = end - eval_start
    result["best"] = {"trial": best.number, "params": nabla_params(best.params),
                      "dev_accuracy": best.value, "test_accuracy": test_accuracy,
                      "command": " ".join(objective.commands[best.number])}
    return result


def print_text(result):
    c = result["counts"]
    print(f"Optuna {result['optuna_version']} {result['sampler']} sampler, {result['pruner']} "
          f"pruner: {result['trials']} trials of {result['epochs']} epochs, "
          f"{result['workers']} workers x {result['threads_per_trial']} threads")
    print(f"wall time {result['wall_seconds']:.1f} s; {c['complete']} complete, "
          f"{c['pruned']} pruned, {c['failed']} failed")
    best = result["best"]
    if best is None:
        print("no trial completed")
        return
    print(f"best: trial {best['trial']}, dev accuracy {best['dev_accuracy']:.4f}, "
          f"test accuracy {best['test_accuracy']:.4f}")
    print("  " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                           for k, v in best["params"].items()))
    print(f"  {best['command']}")


def main(argv=None):
    args = parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if args.out:
        if os.path.isdir(args.out) and os.listdir(args.out):
            sys.exit(f"tune_optuna.py: --out {args.out} is not empty; every study needs a "
                     f"fresh directory")
        os.makedirs(args.out, exist_ok=True)
        out_dir, temporary = os.path.abspath(args.out), False
    else:
        out_dir, temporary = tempfile.mkdtemp(prefix="tune-optuna-"), True
    try:
        result = run_study(args, out_dir)
    except RuntimeError as e:
        sys.exit(f"tune_optuna.py: {e}")
    finally:
        if temporary:
            shutil.rmtree(out_dir, ignore_errors=True)
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        print_text(result)
    return 0 if result["best"] is not None else 1


if __name__ == "__main__":
    sys.exit(main())

"""nabla against scikit-learn's MLPClassifier / MLPRegressor on the data sets scikit-learn
ships (Debian's python3-sklearn), on the same splits: what a user of tabular data gets.

For each data set and seed, the rows are split 80/20 into train.csv and test.csv (a header, the
target in the last column(s)); then
  nabla      `nabla train --data train.csv --test test.csv --task T` with the recipe below
             (features standardized by default; a dev split of the training rows for early
             stopping), its test metric read from summary.json;
  sklearn    StandardScaler + MLPClassifier / MLPRegressor with scikit-learn's defaults (one
             hidden layer of 100, adam, lr 0.001, batch 200) and max_iter 2000, early_stopping
             off (its default), trained on the same train rows.
Also `nabla train` with every default (10 epochs), as a first try would be. Writes
bench/TABULAR_RESULTS.md. Timings are wall-clock seconds of the whole command (nabla) or of
fit (sklearn), on this machine, for scale only.

Usage: python3 bench/tabular.py --nabla build/nabla [--seeds 5]"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
from sklearn import datasets
from sklearn.metrics import accuracy_score, f1_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

RECIPE = ["--epochs", "300", "--dev-fraction", "0.15", "--early-stop", "30", "--layers", "64",
          "--lr", "0.003", "--batch-size", "32"]


def load(name):
    """(X, Y, task, target names, feature names); Y is 1-D for one target."""
    if name == "multilabel":
        x, y = datasets.make_multilabel_classification(n_samples=1000, n_features=20,
                                                       n_classes=5, random_state=0)
        return x, y, "multilabel", ["l%d" % i for i in range(5)], None
    loader = {"iris": datasets.load_iris, "wine": datasets.load_wine,
              "breast_cancer": datasets.load_breast_cancer, "digits": datasets.load_digits,
              "diabetes": datasets.load_diabetes, "linnerud": datasets.load_linnerud}[name]
    d = loader()
    task = "regression" if name in ("diabetes", "linnerud") else "classification"
    y = d.target
    if task == "classification":   # the classes by name, as a CSV file would have them
        names = getattr(d, "target_names", None)
        y = np.array([str(names[v]) if names is not None else str(v) for v in y])
    targets = list(getattr(d, "target_names", ["target"])) if name == "linnerud" else ["target"]
    return d.data, y, task, targets, list(getattr(d, "feature_names", []))


def write_csv(path, x, y, features, targets):
    features = features or ["x%d" % i for i in range(x.shape[1])]
    with open(path, "w") as f:
        f.write(",".join('"%s"' % n for n in list(features) + list(targets)) + "\n")
        for row, t in zip(x, y):
            t = t if np.ndim(t) else [t]
            f.write(",".join([repr(float(v)) for v in row] + [str(v) for v in t]) + "\n")


def metric_name(task):
    return {"classification": "accuracy", "regression": "r2", "multilabel": "micro_f1"}[task]


def run_nabla(nabla, folder, task, targets, extra):
    out = os.path.join(folder, "run")
    cmd = [nabla, "train", "--data", os.path.join(folder, "train.csv"), "--test",
           os.path.join(folder, "test.csv"), "--task", task, "--out", out, "--quiet",
           "--threads", "1"]
    if len(targets) > 1:
        cmd += ["--target", ",".join(targets)]
    start = time.time()
    done = subprocess.run(cmd + extra, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit("%s failed: %s" % (" ".join(cmd + extra), done.stderr.strip()))
    seconds = time.time() - start
    summary = json.load(open(os.path.join(out, "summary.json")))
    subprocess.run(["rm", "-rf", out], check=True)
    return summary["test_" + metric_name(task)], seconds


def run_sklearn(task, xtr, ytr, xte, yte, seed):
    make = MLPClassifier if task != "regression" else MLPRegressor
    model = make_pipeline(StandardScaler(), make(max_iter=2000, random_state=seed))
    start = time.time()
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(xtr, ytr)
    seconds = time.time() - start
    p = model.predict(xte)
    if task == "classification":
        return accuracy_score(yte, p), seconds
    if task == "multilabel":
        return f1_score(yte, p, average="micro"), seconds
    return r2_score(yte, p), seconds


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nabla", required=True)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__),
                                                  "TABULAR_RESULTS.md"))
    args = ap.parse_args()
    names = ["iris", "wine", "breast_cancer", "digits", "diabetes", "linnerud", "multilabel"]
    rows = []
    for name in names:
        x, y, task, targets, features = load(name)
        got = {"nabla": [], "nabla defaults": [], "sklearn": []}
        secs = {k: [] for k in got}
        for seed in range(args.seeds):
            xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.2, random_state=seed)
            with tempfile.TemporaryDirectory() as folder:
                write_csv(os.path.join(folder, "train.csv"), xtr, ytr, features, targets)
                write_csv(os.path.join(folder, "test.csv"), xte, yte, features, targets)
                for key, extra in (("nabla", RECIPE + ["--seed", str(seed)]),
                                   ("nabla defaults", ["--seed", str(seed)])):
                    v, s = run_nabla(args.nabla, folder, task, targets, extra)
                    got[key].append(v)
                    secs[key].append(s)
            v, s = run_sklearn(task, xtr, ytr, xte, yte, seed)
            got["sklearn"].append(v)
            secs["sklearn"].append(s)
        row = (name, task, metric_name(task), len(x),
               {k: (statistics.median(v), min(v), max(v), statistics.median(secs[k]))
                for k, v in got.items()})
        rows.append(row)
        print(name, {k: round(v[0], 4) for k, v in row[4].items()}, flush=True)
    with open(args.out, "w") as f:
        f.write("# nabla against scikit-learn on its bundled data sets\n\n")
        f.write("Written by `python3 bench/tabular.py --nabla build/nabla --seeds %d` "
                "(`make bench-tabular`). Test metric on a 20%% split, median over %d seeds "
                "(min-max), the same splits for both; seconds: median wall time of one run.\n\n"
                % (args.seeds, args.seeds))
        f.write("nabla recipe: `nabla train --data train.csv --test test.csv --task T %s`; "
                "nabla defaults: `--task T` only (10 epochs). scikit-learn: StandardScaler + "
                "MLP with its defaults, max_iter 2000.\n\n" % " ".join(RECIPE))
        f.write("| data | task | samples | metric | nabla recipe | nabla defaults | "
                "scikit-learn MLP | s nabla | s sklearn |\n|---|---|---:|---|---:|---:|---:|---:|---:|\n")
        for name, task, metric, n, r in rows:
            cell = lambda k: "%.4f (%.3f-%.3f)" % r[k][:3]
            f.write("| %s | %s | %d | %s | %s | %s | %s | %.1f | %.1f |\n"
                    % (name, task, n, metric, cell("nabla"), cell("nabla defaults"),
                       cell("sklearn"), r["nabla"][3], r["sklearn"][3]))
    print("wrote", args.out)


if __name__ == "__main__":
    sys.exit(main())

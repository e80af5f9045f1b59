#!/bin/bash
# The experiments under examples/ (optimizers, batchnorm, search, layernorm), each run in --quick mode:
# the one command succeeds, trains what its README says (the configurations are checked), writes
# its run and study directories and its reports (with their charts), and prints a summary whose
# numbers are the ones in the files. Also the scripts' usage errors.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

STARTED=$SECONDS
EXAMPLES=$(cd "$HERE/../../examples" && pwd)

# svgs FILE: the number of charts (inline <svg> elements) in a report.
svgs() { grep -o '<svg' "$1" | wc -l | tr -d ' '; }

# experiment NAME: runs examples/NAME/run.sh --quick into $WORK/NAME; stdout in NAME.out.
experiment() {
    bash "$EXAMPLES/$1/run.sh" "$NABLA" "$WORK/$1" --quick >"$WORK/$1.out" 2>"$WORK/$1.err"
    RC=$?
    if [ "$RC" -eq 0 ]; then pass; else fail "$1/run.sh --quick: exit $RC: $(tail -c 600 "$WORK/$1.err")"; fi
}

# ---- usage ------------------------------------------------------------------------------------
for name in optimizers batchnorm search layernorm; do
    bash "$EXAMPLES/$name/run.sh" "$NABLA" "$WORK/u" --bogus >/dev/null 2>&1
    check "$name: an unknown option is exit 2" [ $? -eq 2 ]
    bash "$EXAMPLES/$name/run.sh" "$WORK/no-such-nabla" "$WORK/u" --quick >/dev/null 2>"$WORK/stderr"
    check "$name: a missing program is exit 1" [ $? -eq 1 ]
    check "$name: a missing program is named" grep -q "no-such-nabla" "$WORK/stderr"
    bash "$EXAMPLES/$name/run.sh" --help >"$WORK/stdout"
    check "$name: --help shows the command" grep -q "examples/$name/run.sh" "$WORK/stdout"
done
for seeds in 0 x 100 ""; do
    bash "$EXAMPLES/layernorm/run.sh" "$NABLA" "$WORK/u" --seeds $seeds >/dev/null 2>"$WORK/stderr"
    check "layernorm: --seeds '$seeds' is exit 2" [ $? -eq 2 ]
    check "layernorm: --seeds '$seeds' is one line on stderr" [ "$(lines "$WORK/stderr")" -eq 1 ]
done
check "usage errors write nothing" absent "$WORK/u"

# ---- optimizers on moons ----------------------------------------------------------------------
experiment optimizers
O=$WORK/optimizers
check "optimizers: the course's setting for every run" "$PY" - "$O" <<'EOF'
import json, math, sys
out = sys.argv[1]
for schedule, lr in (("constant", 0.0007), ("decay", 0.1)):
    for opt in ("sgd", "momentum", "adam"):
        c = json.load(open(f"{out}/{schedule}/{opt}/config.json"))
        assert (c["data"], c["samples"], c["noise"], c["layers"], c["activation"], c["batch_size"],
                c["epochs"], c["optimizer"]) == ("moons", 300, 0.2, [5, 2], "relu", 64, 100, opt), c
        assert math.isclose(c["lr"], lr, rel_tol=1e-6), c["lr"]
        assert math.isclose(c["beta"], 0.9, rel_tol=1e-6) and math.isclose(c["beta2"], 0.999, rel_tol=1e-6)
        if schedule == "decay":
            assert (c["lr_decay"], c["decay_interval"]) == ("interval", 1000), c
            assert math.isclose(c["decay_rate"], 0.3, rel_tol=1e-6)
        else:
            assert c["lr_decay"] == "none"
        assert sum(1 for _ in open(f"{out}/{schedule}/{opt}/metrics.jsonl")) == 100
EOF
# The course's momentum, v = beta v + (1 - beta) g, moves like plain SGD at a small learning
# rate (the course's own remark); PyTorch's form (no 1 - beta) would take 10 times its steps.
check "optimizers: momentum stays close to SGD at lr 0.0007, but is not SGD" "$PY" - "$O" <<'EOF'
import json, sys
s = {o: json.load(open(f"{sys.argv[1]}/constant/{o}/summary.json"))["train_loss"] for o in ("sgd", "momentum")}
assert 0 < abs(s["sgd"] - s["momentum"]) < 0.01, s
EOF
check "optimizers: the table prints each run's numbers (train: nabla eval --split train)" "$PY" - "$O" "$WORK/optimizers.out" <<'EOF'
import json, sys
out, printed = sys.argv[1], open(sys.argv[2]).read().splitlines()
rows = [l.split() for l in printed if l.split()[:1] in (["constant"], ["decay"])]
assert len(rows) == 6, printed
for r in rows:
    s = json.load(open(f"{out}/{r[0]}/{r[1]}/summary.json"))
    e = json.load(open(f"{out}/{r[0]}/{r[1]}/train_eval.json"))
    assert e["samples"] == 300, e
    assert r[2:5] == [f"{e['loss']:.4f}", f"{e['accuracy']:.4f}", f"{s['test_accuracy']:.4f}"], r
EOF
for schedule in constant decay; do
    R=$O/$schedule/report.html
    check "optimizers: $schedule report written" [ -s "$R" ]
    # loss, accuracy and learning rate per epoch, and the three runs' decision regions
    check "optimizers: $schedule report has 6 charts (has $(svgs "$R"))" [ "$(svgs "$R")" -eq 6 ]
    check "optimizers: $schedule report draws decision regions" grep -q "Decision regions" "$R"
    for opt in sgd momentum adam; do
        check "optimizers: $schedule report names $opt" grep -q ">$opt<" "$R"
    done
done

# ---- batch normalization ------------------------------------------------------------------------
experiment batchnorm
B=$WORK/batchnorm
check "batchnorm: two runs, 3 x 100 sigmoid units, SGD, batches of 60, one with batch norm" "$PY" - "$B" <<'EOF'
import json, sys
for run, bn in (("without-bn", False), ("with-bn", True)):
    c = json.load(open(f"{sys.argv[1]}/{run}/config.json"))
    assert (c["layers"], c["activation"], c["batch_size"], c["optimizer"], c["batchnorm"]) == \
        ([100, 100, 100], "sigmoid", 60, "sgd", bn), c
    assert json.load(open(f"{sys.argv[1]}/{run}/summary.json"))["steps"] == 200
EOF
check "batchnorm: test accuracy every 100 steps, the trace every 20 (and step 1)" "$PY" - "$B" <<'EOF'
import json, sys
for run in ("without-bn", "with-bn"):
    steps = [json.loads(l) for l in open(f"{sys.argv[1]}/{run}/steps.jsonl")]
    assert [s["step"] for s in steps] == [100, 200], steps
    assert all(0 < s["test_accuracy"] <= 1 for s in steps)
    trace = [json.loads(l) for l in open(f"{sys.argv[1]}/{run}/trace.jsonl")]
    assert [t["step"] for t in trace] == [1] + list(range(20, 201, 20)), [t["step"] for t in trace]
    for t in trace:
        assert (t["layer"], t["unit"]) == (3, 0), t
        assert t["unit_p15"] <= t["unit_p50"] <= t["unit_p85"] and t["layer_p15"] <= t["layer_p50"] <= t["layer_p85"]
EOF
# With batch norm the sigmoid's input is the batch norm's output: at step 1 (gamma 1, beta 0)
# every unit is standardized over the batch, so the layer's percentiles are near a standard
# normal's, -1.04, 0 and 1.04. Without it they are W x + b of Xavier weights: much narrower.
check "batchnorm: the traced input is the batch norm's output" "$PY" - "$B" <<'EOF'
import json, sys
bn = json.loads(open(f"{sys.argv[1]}/with-bn/trace.jsonl").readline())
assert abs(bn["layer_p15"] + 1.04) < 0.25 and abs(bn["layer_p50"]) < 0.25 and abs(bn["layer_p85"] - 1.04) < 0.25, bn
plain = json.loads(open(f"{sys.argv[1]}/without-bn/trace.jsonl").readline())
assert plain["layer_p85"] - plain["layer_p15"] < 0.75 * (bn["layer_p85"] - bn["layer_p15"]), (plain, bn)
EOF
check "batchnorm: the table prints the runs' test accuracies" "$PY" - "$B" "$WORK/batchnorm.out" <<'EOF'
import json, sys
printed = open(sys.argv[2]).read().splitlines()
for run in ("without-bn", "with-bn"):
    row = next(l.split() for l in printed if l.split()[:1] == [run])
    steps = [json.loads(l) for l in open(f"{sys.argv[1]}/{run}/steps.jsonl")]
    assert row[1:] == [f"{s['test_accuracy']:.4f}" for s in steps], (row, steps)
EOF
R=$B/report.html
check "batchnorm: report written" [ -s "$R" ]
# loss, accuracy, learning rate per epoch; loss and accuracy every N steps; the unit's and the
# layer's percentiles
check "batchnorm: report has 7 charts (has $(svgs "$R"))" [ "$(svgs "$R")" -eq 7 ]
check "batchnorm: report shows the activations" grep -q "Activations during training" "$R"

# ---- random versus grid search --------------------------------------------------------------------
experiment search
S=$WORK/search
check "search: every study finished its trials" "$PY" - "$S" <<'EOF'
import json, sys
names = ["ranking"] + [f"{s}-{d}-4-s{k}" for s in ("grid", "random") for d in ("2d", "4d") for k in (1, 2)]
for name in names:
    b = json.load(open(f"{sys.argv[1]}/{name}/best.json"))
    assert b["complete"] == b["trials"] == (8 if name == "ranking" else 4), (name, b)
    assert set(b["params"]) == ({"lr", "beta2"} if "-2d-" in name else {"lr", "beta2", "eps", "weight-decay"}), b
assert set(json.load(open(f"{sys.argv[1]}/ranking/best.json"))["importance"]) == {"lr", "beta2", "eps", "weight-decay"}
sweep = json.load(open(f"{sys.argv[1]}/lr-sweep/best.json"))
assert sweep["complete"] == 5 and set(sweep["params"]) == {"lr"}, sweep
EOF
# 4 trials: a 2 x 2 grid tries 2 learning rates, random search 4; in 4 dimensions the grid is a
# subset of 2 x 2 x 2 x 2, so at most 2.
check "search: distinct learning rates (grid 2, random 4) as seeds.tsv says" "$PY" - "$S" <<'EOF'
import json, sys
out = sys.argv[1]
rows = [l.rstrip("\n").split("\t") for l in open(f"{out}/seeds.tsv")]
assert rows[0][:4] == ["space", "trials", "seed", "sampler"] and len(rows) == 9, rows
for dims, n, seed, sampler, dev, test, lrs, best_lr in rows[1:]:
    events = [json.loads(l) for l in open(f"{out}/{sampler}-{dims}-{n}-s{seed}/journal.jsonl")]
    params = [e["params"] for e in events if e.get("state") == "running" and "params" in e]
    distinct = len({p["lr"] for p in params})
    assert int(lrs) == distinct, (dims, seed, sampler, lrs, distinct)
    if sampler == "random":
        assert distinct == 4
    elif dims == "2d":
        assert distinct == 2 and len({p["beta2"] for p in params}) == 2
    else:
        assert distinct <= 2
    best = json.load(open(f"{out}/{sampler}-{dims}-{n}-s{seed}/best.json"))
    assert dev == f"{best['dev_accuracy']:.4f}", (dev, best)
EOF
check "search: the summary names the importance ranking" grep -q "^importance" "$WORK/search.out"
check "search: the summary gives the learning rate's good region" grep -q "^lr alone, 5 values" "$WORK/search.out"
for study in ranking lr-sweep grid-2d-4-s1 random-2d-4-s1 grid-4d-4-s1 random-4d-4-s1; do
    R=$S/$study/report.html
    # one chart per hyperparameter, then best so far, learning curves, parallel coordinates,
    # importance
    want=8
    case $study in *-2d-*) want=6 ;; lr-sweep) want=5 ;; esac
    check "search: $study report has $want charts (has $(svgs "$R" 2>/dev/null))" [ "$(svgs "$R")" -eq "$want" ]
done
R=$S/best-models.html
# the two best trials' loss, accuracy and learning rate, and their two decision regions
check "search: the best models' report has 5 charts (has $(svgs "$R" 2>/dev/null))" [ "$(svgs "$R")" -eq 5 ]

# ---- layer norm against batch norm at small batches ------------------------------------------------
experiment layernorm
L=$WORK/layernorm
check "layernorm: 9 runs (3 norms x batches of 2, 8, 64), each 1 epoch of the same 512 samples" "$PY" - "$L" <<'EOF'
import json, sys
out = sys.argv[1]
for b in (2, 8, 64):
    for norm in ("batchnorm", "layernorm", "none"):
        d = f"{out}/b{b}/{norm}"
        c = json.load(open(f"{d}/config.json"))
        n = "" if norm == "none" else f"{norm},"
        want = (f"conv2d(8,3,padding=1),{n}relu,maxpool2d(2),conv2d(16,3,padding=1),{n}relu,"
                f"maxpool2d(2),flatten,linear(64),{n}relu,linear")
        assert (c["model"], c["input_shape"], c["batch_size"], c["epochs"], c["seed"],
                c["optimizer"], c["train_samples"], c["test_samples"]) == \
            (want, "1x28x28", b, 1, 0, "adam", 512, 500), (d, c)
        s = json.load(open(f"{d}/summary.json"))
        assert (s["samples"], s["steps"], s["test_samples"]) == (512, 512 // b, 500), (d, s)
        # the test accuracy after every 128 samples, the same points at every batch size
        steps = [json.loads(l) for l in open(f"{d}/steps.jsonl")]
        assert [e["step"] * b for e in steps] == [128, 256, 384, 512], (d, steps)
        assert steps[-1]["test_accuracy"] == s["test_accuracy"], (d, steps[-1], s)
EOF
# What each norm put in the model: BatchNorm2d and BatchNorm1d have per-channel (per-unit)
# weights and running statistics, and the layer before them no bias; LayerNorm weights shaped
# like the sample (normalized_shape); the plain network neither.
check "layernorm: the models hold the tensors of their norm" "$PY" - "$L" <<'EOF'
import json, struct, sys
def shapes(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        return {k: v["shape"] for k, v in json.loads(f.read(n)).items() if k != "__metadata__"}
for b in (2, 8, 64):
    bn = shapes(f"{sys.argv[1]}/b{b}/batchnorm/model.safetensors")
    assert bn["1.running_var"] == [8] and bn["5.weight"] == [16] and bn["10.running_mean"] == [64], bn
    assert "0.bias" not in bn and "4.bias" not in bn and "9.bias" not in bn, bn
    ln = shapes(f"{sys.argv[1]}/b{b}/layernorm/model.safetensors")
    assert ln["1.weight"] == [8, 28, 28] and ln["5.bias"] == [16, 14, 14] and ln["10.weight"] == [64], ln
    assert ln["0.bias"] == [8] and not any("running" in k for k in ln), ln
    plain = shapes(f"{sys.argv[1]}/b{b}/none/model.safetensors")
    assert sorted(plain) == ["0.bias", "0.weight", "3.bias", "3.weight", "7.bias", "7.weight",
                             "9.bias", "9.weight"], plain
EOF
# Every network learns something from 512 images (chance is 0.1); and at batch 2 batch norm
# trains worst: its BatchNorm1d standardizes each unit over 2 samples, so every unit gives -1 or
# +1, and the training batches' accuracy falls far below layer norm's and the plain network's.
check "layernorm: above chance everywhere; batch norm trains worst at batch 2" "$PY" - "$L" <<'EOF'
import json, sys
s = {(b, n): json.load(open(f"{sys.argv[1]}/b{b}/{n}/summary.json"))
     for b in (2, 8, 64) for n in ("batchnorm", "layernorm", "none")}
assert all(v["test_accuracy"] > 0.2 for v in s.values()), s
train = {n: s[2, n]["train_accuracy"] for n in ("batchnorm", "layernorm", "none")}
assert train["batchnorm"] < min(train["layernorm"], train["none"]) - 0.1, train
EOF
check "layernorm: the tables print each run's accuracies, its curve and the differences" "$PY" - "$L" "$WORK/layernorm.out" <<'EOF'
import json, sys
out, printed = sys.argv[1], open(sys.argv[2]).read().splitlines()
rows = {(int(l.split()[1]), l.split()[2]): l.split() for l in printed if l.startswith("batch ")}
assert len(rows) == 9, printed
for (b, norm), r in rows.items():
    s = json.load(open(f"{out}/b{b}/{norm}/summary.json"))
    assert r[3:] == ["test", f"{s['test_accuracy']:.4f}", "mean", f"{s['test_accuracy']:.4f}", "|",
                     "train", f"{s['train_accuracy']:.4f}", "mean", f"{s['train_accuracy']:.4f}"], r
curves = [l.split() for l in printed if l.startswith("  batch ")]
assert len(curves) == 9, printed
for r in curves:
    d = f"{out}/b{r[1]}/{r[2]}"
    steps = [json.loads(l) for l in open(f"{d}/steps.jsonl")]
    s = json.load(open(f"{d}/summary.json"))
    want = [(e["step"] * int(r[1]), e["test_accuracy"]) for e in steps] + [(512, s["test_accuracy"])]
    assert r[3:] == [w for k, a in want for w in (f"{k}:", f"{a:.4f}")], (r, want)
diff = next(l for l in printed if l.startswith("layer norm minus batch norm"))
for b in (2, 8, 64):
    want = 100 * (json.load(open(f"{out}/b{b}/layernorm/summary.json"))["test_accuracy"]
                  - json.load(open(f"{out}/b{b}/batchnorm/summary.json"))["test_accuracy"])
    assert f"batch {b} {want:+.2f} points" in diff, (diff, want)
EOF
for b in 2 8 64; do
    R=$L/b$b/report.html
    # loss, accuracy and learning rate per epoch; loss and accuracy every N steps
    check "layernorm: batch $b report has 5 charts (has $(svgs "$R" 2>/dev/null))" [ "$(svgs "$R")" -eq 5 ]
    for norm in batchnorm layernorm none; do
        check "layernorm: batch $b report names $norm" grep -q ">$norm<" "$R"
    done
done

echo "($((SECONDS - STARTED)) s)"
finish

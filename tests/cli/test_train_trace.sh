#!/bin/bash
# --trace-activations (trace.jsonl) and --eval-every (steps.jsonl): the records' values against
# numpy on the exact first mini-batch, their number, steps and epochs, the evaluations against
# metrics.jsonl, summary.json and `nabla eval`; neither option changes what is trained (the
# model is byte-identical without them, with and without batch norm); a resumed run ends with
# the uninterrupted run's files; usage errors exit 2 and create nothing.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

TESTS_DIR=$(cd "$HERE/.." && pwd)

# ---- a small CSV data set and initial weights, so that Python knows the first batch ----
# 302 training samples (the 15th, 50th and 85th percentiles then fall between two values),
# 3 features, 3 classes; a test set of 90.
"$PY" - <<'EOF'
import numpy as np
rng = np.random.default_rng(5)
for name, n in (("train.csv", 302), ("test.csv", 90)):
    x = rng.normal(size=(n, 3)).astype(np.float32) * np.float32(1.5)
    y = rng.integers(0, 3, size=n)
    with open(name, "w") as f:
        f.write("a,b,c,label\n")
        for row, label in zip(x, y):
            f.write(",".join("%.9g" % v for v in row) + ",%d\n" % label)
EOF

# init_weights FILE BATCHNORM: random weights for --layers 10,6 on 3 inputs and 3 classes, with
# gamma and beta away from 1 and 0 so that they count.
init_weights() {
    "$PY" - "$1" "$2" "$TESTS_DIR" <<'EOF'
import sys
import numpy as np
sys.path.insert(0, sys.argv[3])
import safetensors_py
rng = np.random.default_rng(9)
bn = sys.argv[2] == "1"
f32 = lambda *shape: rng.normal(size=shape).astype(np.float32)
t, index, inputs = [], 0, 3
for width in (10, 6):
    t.append(("%d.weight" % index, f32(width, inputs)))
    if bn:
        t.append(("%d.weight" % (index + 1), (1 + 0.5 * rng.random(width)).astype(np.float32)))
        t.append(("%d.bias" % (index + 1), f32(width)))
        t.append(("%d.running_mean" % (index + 1), np.zeros(width, np.float32)))
        t.append(("%d.running_var" % (index + 1), np.ones(width, np.float32)))
        t.append(("%d.num_batches_tracked" % (index + 1), np.array(0, np.int64)))
        index += 3
    else:
        t.append(("%d.bias" % index, f32(width)))
        index += 2
    inputs = width
t.append(("%d.weight" % index, f32(3, inputs)))
t.append(("%d.bias" % index, f32(3)))
safetensors_py.write(sys.argv[1], t)
EOF
}
init_weights init.safetensors 0
init_weights init-bn.safetensors 1

# shellcheck disable=SC2054  # the commas are in --layers 10,6
# The features as they are (numpy computes W x + b from the file itself).
CSV=(--data train.csv --test test.csv --layers 10,6 --seed 4 --threads 1 --quiet --normalize none)

# first_record_matches DIR INIT BATCHNORM ACTIVATION LAYER UNIT: the one record of a 1-step run
# on the whole training set, in order, holds numpy.percentile (linear, its default) of the
# traced layer's pre-activation computed here: W x + b, or gamma (z - mean) / sqrt(var + 1e-5)
# + beta with the batch's mean and biased variance.
first_record_matches() {
    "$PY" - "$@" "$TESTS_DIR" <<'EOF'
import json, sys
import numpy as np
d, init, bn, act, layer, unit, tests = sys.argv[1:8]
sys.path.insert(0, tests)
import safetensors_py
w, _ = safetensors_py.read(init)
bn, layer, unit = bn == "1", int(layer), int(unit)
rows = np.loadtxt("train.csv", delimiter=",", skiprows=1, dtype=np.float32)
h = rows[:, :3].astype(np.float64)
f = {"sigmoid": lambda z: 1 / (1 + np.exp(-z)), "relu": lambda z: np.maximum(z, 0),
     "tanh": np.tanh}[act]
index = 0
for l in range(1, layer + 1):
    z = h @ w["%d.weight" % index].astype(np.float64).T
    if bn:
        g, b = w["%d.weight" % (index + 1)], w["%d.bias" % (index + 1)]
        z = g * (z - z.mean(axis=0)) / np.sqrt(z.var(axis=0) + 1e-5) + b
        index += 3
    else:
        z = z + w["%d.bias" % index]
        index += 2
    h = f(z)
lines = open(d + "/trace.jsonl").read().splitlines()
assert len(lines) == 1, lines
r = json.loads(lines[0])
assert (r["step"], r["epoch"], r["layer"], r["unit"]) == (1, 1, layer, unit), r
want = {}
for p in (15, 50, 85):
    want["unit_p%d" % p] = np.percentile(z[:, unit], p)
    want["layer_p%d" % p] = np.percentile(z, p)
for k, v in want.items():
    assert abs(r[k] - v) <= 1e-5 * (1 + abs(v)), (k, r[k], v)
# Interpolation happens: the percentile is not one of the values.
assert not np.isin(np.float32(r["unit_p50"]), z[:, unit].astype(np.float32)), r
EOF
}

ONE_STEP=(--batch-size full --no-shuffle --max-steps 1 --trace-activations --trace-every 1)
run train "${CSV[@]}" "${ONE_STEP[@]}" --activation sigmoid --init-weights init.safetensors \
    --trace-layer 2 --trace-unit 3 --out p-plain
check "1-step trace run exits 0 (stderr: $(head -c 300 "$WORK/stderr"))" [ "$RC" -eq 0 ]
check "sigmoid, layer 2 unit 3: the record holds numpy's percentiles of W x + b" \
    first_record_matches p-plain init.safetensors 0 sigmoid 2 3
run train "${CSV[@]}" "${ONE_STEP[@]}" --activation relu --init-weights init.safetensors \
    --trace-layer 1 --trace-unit 9 --out p-relu
check "relu, layer 1 unit 9: the record holds numpy's percentiles of W x + b" \
    first_record_matches p-relu init.safetensors 0 relu 1 9
run train "${CSV[@]}" "${ONE_STEP[@]}" --activation sigmoid --batchnorm \
    --init-weights init-bn.safetensors --trace-layer 1 --trace-unit 5 --out p-bn
check "1-step batch-norm trace run exits 0 (stderr: $(head -c 300 "$WORK/stderr"))" [ "$RC" -eq 0 ]
check "batch norm, sigmoid, layer 1 unit 5: numpy's percentiles of the batch norm's output" \
    first_record_matches p-bn init-bn.safetensors 1 sigmoid 1 5
run train "${CSV[@]}" "${ONE_STEP[@]}" --activation tanh --batchnorm \
    --init-weights init-bn.safetensors --out p-bn2
check "batch norm, tanh, the default layer (2) and unit (0): numpy's percentiles" \
    first_record_matches p-bn2 init-bn.safetensors 1 tanh 2 0

# ---- trace.jsonl over a run: lines, steps, epochs, keys, order of the percentiles ----
# 2000 samples in batches of 32: 63 batches an epoch, so about 20 records an epoch is every 3
# steps; 2 epochs: step 1 and steps 3, 6, ..., 126.
# shellcheck disable=SC2054  # the commas are in --layers 16,8
SPIRALS=(--data spirals --samples 2000 --layers 16,8 --seed 2 --threads 1 --quiet)
run train "${SPIRALS[@]}" --batch-size 32 --epochs 2 --trace-activations --out tr
check "trace run exits 0 (stderr: $(head -c 300 "$WORK/stderr"))" [ "$RC" -eq 0 ]
# shellcheck disable=SC2012  # the names are known
check "trace run: trace.jsonl is in the run directory (got: $(ls -A tr | tr '\n' ' '))" \
    [ "$(ls -A tr | tr '\n' ' ')" = ".lock checkpoint.prev.safetensors checkpoint.safetensors config.json metrics.jsonl model.safetensors summary.json trace.jsonl " ]
check "trace.jsonl: step 1 and every 3rd step, the right epochs, every key, p15 <= p50 <= p85" \
    "$PY" - <<'EOF'
import json
rows = [json.loads(line) for line in open("tr/trace.jsonl")]
assert [r["step"] for r in rows] == [1] + list(range(3, 127, 3)), [r["step"] for r in rows]
keys = ["step", "epoch", "layer", "unit", "unit_p15", "unit_p50", "unit_p85", "layer_p15",
        "layer_p50", "layer_p85"]
for r in rows:
    assert list(r.keys()) == keys, r.keys()
    assert r["epoch"] == (1 if r["step"] <= 63 else 2), r
    assert r["layer"] == 2 and r["unit"] == 0, r
    for what in ("unit", "layer"):
        assert r[what + "_p15"] <= r[what + "_p50"] <= r[what + "_p85"], r
    assert r["layer_p15"] < r["layer_p85"], r
# The weights move: the records are not all the same.
assert len({r["layer_p50"] for r in rows}) > 10
EOF
check "trace run: config.json records the trace" "$PY" - <<'EOF'
import json
c = json.load(open("tr/config.json"))
assert (c["trace_activations"], c["trace_layer"], c["trace_unit"], c["trace_every"],
        c["eval_every"]) == (True, 2, 0, 3, None), c
EOF
run train "${SPIRALS[@]}" --batch-size full --epochs 5 --trace-activations --out tr-full
check "full batches of 2000 for 5 epochs: a record at every step" \
    [ "$RC $(lines tr-full/trace.jsonl)" = "0 5" ]
check "full batches: config.json says trace_every 1" \
    [ "$(json tr-full/config.json 'j["trace_every"]')" = 1 ]
run train "${SPIRALS[@]}" --batch-size 32 --epochs 1 --out tr-off
check "a run without the options: config.json has them off" "$PY" - <<'EOF'
import json
c = json.load(open("tr-off/config.json"))
assert c["trace_activations"] is False and c["trace_layer"] is None
assert c["trace_unit"] is None and c["trace_every"] is None and c["eval_every"] is None, c
EOF

# ---- neither option changes training: byte-identical models ----
for bn in "" --batchnorm; do
    for act in relu sigmoid; do
        what="${act}${bn:+ with batch norm}"
        base=(train "${SPIRALS[@]}" --batch-size 50 --epochs 2 --dev-fraction 0.2
              --activation "$act")
        [ -n "$bn" ] && base+=("$bn")
        run "${base[@]}" --out "same-$act$bn"
        check "$what: plain run exits 0" [ "$RC" -eq 0 ]
        run "${base[@]}" --trace-activations --trace-layer 1 --trace-every 2 --out "same-$act$bn-t1"
        check "$what: traced run (layer 1) exits 0 (stderr: $(head -c 300 "$WORK/stderr"))" [ "$RC" -eq 0 ]
        check "$what: --trace-activations --trace-layer 1 gives a byte-identical model" \
            cmp -s "same-$act$bn/model.safetensors" "same-$act$bn-t1/model.safetensors"
        run "${base[@]}" --trace-activations --threads 2 --out "same-$act$bn-t2"
        check "$what: --trace-activations (layer 2, 2 threads) gives a byte-identical model" \
            cmp -s "same-$act$bn/model.safetensors" "same-$act$bn-t2/model.safetensors"
        run "${base[@]}" --eval-every 3 --out "same-$act$bn-e"
        check "$what: --eval-every run exits 0 (stderr: $(head -c 300 "$WORK/stderr"))" [ "$RC" -eq 0 ]
        check "$what: --eval-every 3 gives a byte-identical model" \
            cmp -s "same-$act$bn/model.safetensors" "same-$act$bn-e/model.safetensors"
        check "$what: --eval-every 3 gives the same metrics.jsonl numbers" "$PY" - \
            "same-$act$bn/metrics.jsonl" "same-$act$bn-e/metrics.jsonl" <<'EOF'
import json, sys
a, b = ([json.loads(line) for line in open(f)] for f in sys.argv[1:3])
for x in a + b:
    del x["seconds"]
assert a == b, (a, b)
EOF
    done
done

# ---- steps.jsonl ----
# 1600 training samples (after a dev split of 400) in batches of 50: 32 steps an epoch; every
# 8 steps over 3 epochs: steps 8, 16, ..., 96, three of them at an epoch's end.
EV=(train "${SPIRALS[@]}" --batch-size 50 --dev-fraction 0.2 --batchnorm --lr 0.01)
run "${EV[@]}" --epochs 3 --eval-every 8 --out ev
check "--eval-every run exits 0 (stderr: $(head -c 300 "$WORK/stderr"))" [ "$RC" -eq 0 ]
check "steps.jsonl: steps 8, 16, ..., 96 with their epochs, lr and every key" "$PY" - <<'EOF'
import json
rows = [json.loads(line) for line in open("ev/steps.jsonl")]
assert [r["step"] for r in rows] == list(range(8, 97, 8)), rows
keys = ["step", "epoch", "lr", "dev_loss", "dev_accuracy", "test_loss", "test_accuracy"]
for r in rows:
    assert list(r.keys()) == keys, r.keys()
    assert r["epoch"] == (r["step"] - 1) // 32 + 1 and r["lr"] == 0.01, r
    for k in keys[3:]:
        assert isinstance(r[k], float) and r[k] >= 0, r
# The model learns: the loss at the end is below the loss at the start.
assert rows[-1]["test_loss"] < rows[0]["test_loss"], rows
EOF
check "steps.jsonl at an epoch's end equals that epoch's metrics.jsonl evaluation" "$PY" - <<'EOF'
import json
steps = {r["step"]: r for r in map(json.loads, open("ev/steps.jsonl"))}
epochs = [json.loads(line) for line in open("ev/metrics.jsonl")]
assert len(epochs) == 3
for e in epochs:
    s = steps[32 * e["epoch"]]
    for k in ("dev_loss", "dev_accuracy", "test_loss", "test_accuracy"):
        assert s[k] == e[k], (e["epoch"], k, s[k], e[k])
EOF
check "the last line equals summary.json's final evaluation" "$PY" - <<'EOF'
import json
last = [json.loads(line) for line in open("ev/steps.jsonl")][-1]
s = json.load(open("ev/summary.json"))
for k in ("dev_loss", "dev_accuracy", "test_loss", "test_accuracy"):
    assert last[k] == s[k], (k, last[k], s[k])
EOF
check "config.json records eval_every 8" [ "$(json ev/config.json 'j["eval_every"]')" = 8 ]
# Mid-epoch: the line at step 40 is what `nabla eval` says of a run stopped after 40 steps.
run "${EV[@]}" --epochs 3 --max-steps 40 --out ev40
check "a 40-step run exits 0" [ "$RC" -eq 0 ]
run eval --model ev40/model.safetensors --data spirals --samples 2000 --seed 2 --json
check "eval of the 40-step model exits 0 (stderr: $(head -c 300 "$WORK/stderr"))" [ "$RC" -eq 0 ]
check "the line at step 40 (mid-epoch 2) equals nabla eval of the 40-step model (got: $(cat "$WORK/stdout"))" \
    "$PY" - "$(cat "$WORK/stdout")" <<'EOF'
import json, sys
e = json.loads(sys.argv[1])
s = {r["step"]: r for r in map(json.loads, open("ev/steps.jsonl"))}[40]
assert s["epoch"] == 2
assert e["accuracy"] == s["test_accuracy"] and abs(e["loss"] - s["test_loss"]) < 1e-6, (e, s)
EOF
# No dev set: its columns are null; with the trace too, both files.
run train "${SPIRALS[@]}" --batch-size 100 --epochs 1 --eval-every 5 --trace-activations \
    --out ev-nodev
check "no dev set: steps 5..20, dev null, test numbers" "$PY" - <<'EOF'
import json
rows = [json.loads(line) for line in open("ev-nodev/steps.jsonl")]
assert [r["step"] for r in rows] == [5, 10, 15, 20], rows
for r in rows:
    assert r["dev_loss"] is None and r["dev_accuracy"] is None, r
    assert 0 <= r["test_accuracy"] <= 1, r
EOF
check "no dev set, with the trace: trace.jsonl has step 1 and every step (20 batches)" \
    [ "$(lines ev-nodev/trace.jsonl)" -eq 20 ]

# ---- a new run in a directory starts the files afresh ----
run train "${SPIRALS[@]}" --batch-size 100 --epochs 1 --eval-every 10 --trace-activations \
    --trace-every 4 --out ev-nodev
check "a new traced run in the directory starts trace.jsonl empty (steps 1, 4, ..., 20)" \
    [ "$(lines ev-nodev/trace.jsonl)" -eq 6 ]
check "... and steps.jsonl (steps 10, 20)" [ "$(lines ev-nodev/steps.jsonl)" -eq 2 ]
run train "${SPIRALS[@]}" --batch-size 100 --epochs 1 --out ev-nodev
check "a new run without the options removes the earlier run's trace.jsonl and steps.jsonl" \
    bash -c "[ ! -e ev-nodev/trace.jsonl ] && [ ! -e ev-nodev/steps.jsonl ]"

# ---- resume: the files end as the uninterrupted run's ----
# 4 epochs of 32 steps, checkpoints every 7 steps too, batch norm.
RES=("${EV[@]}" --trace-activations --trace-every 4 --eval-every 8 --checkpoint-every 7)
run "${RES[@]}" --epochs 4 --out res-ref
check "resume reference run exits 0 (stderr: $(head -c 300 "$WORK/stderr"))" [ "$RC" -eq 0 ]
check "resume reference: 33 trace lines (1, 4, ..., 128), 16 evaluations (8, ..., 128)" \
    [ "$(lines res-ref/trace.jsonl) $(lines res-ref/steps.jsonl)" = "33 16" ]
same_files() {
    cmp -s "$1/model.safetensors" res-ref/model.safetensors &&
        cmp -s "$1/trace.jsonl" res-ref/trace.jsonl && cmp -s "$1/steps.jsonl" res-ref/steps.jsonl
}
# (a) 2 epochs, then --resume --epochs 4.
run "${RES[@]}" --epochs 2 --out res-ext
run train --resume res-ext --epochs 4 --threads 1 --quiet
check "2 epochs then --resume --epochs 4 exits 0 (stderr: $(head -c 300 "$WORK/stderr"))" [ "$RC" -eq 0 ]
check "2 epochs then --resume --epochs 4: model, trace.jsonl and steps.jsonl as uninterrupted" \
    same_files res-ext
# (b) a run resumed from a checkpoint older than its last lines: those lines go, and are
# written again. The finished run's checkpoint.prev is from step 126 (the last 7th step): its
# files have lines for step 128, and a line cut short by a crash is added.
run "${RES[@]}" --epochs 4 --out res-old
mv res-old/checkpoint.prev.safetensors res-old/checkpoint.safetensors
rm res-old/model.safetensors res-old/summary.json
printf '{"step":130,"epoch":4,"lay' >>res-old/trace.jsonl
run train --resume res-old --threads 1 --quiet
check "resume from step 126 exits 0 (stderr: $(head -c 300 "$WORK/stderr"))" [ "$RC" -eq 0 ]
check "resume from step 126: model, trace.jsonl and steps.jsonl as uninterrupted" same_files res-old
# (c) SIGINT in the middle, then --resume.
rm -rf res-int
env --default-signal=INT "$NABLA" "${RES[@]}" --epochs 4 --out res-int >/dev/null 2>&1 &
pid=$!
for ((i = 0; i < 3000; i++)); do
    [ "$(lines res-int/steps.jsonl)" -ge 3 ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.01
done
kill -INT "$pid" 2>/dev/null
wait "$pid"
int_rc=$?
# A busy machine may let the run end first; the resume then has nothing left to train.
[ "$int_rc" -eq 130 ] || echo "the SIGINT run ended (exit $int_rc) before it was interrupted"
run train --resume res-int --threads 1 --quiet
check "SIGINT (exit $int_rc), then --resume exits 0 (stderr: $(head -c 300 "$WORK/stderr"))" [ "$RC" -eq 0 ]
check "SIGINT, then --resume: model, trace.jsonl and steps.jsonl as uninterrupted" same_files res-int
# The options are the run's: --resume refuses them.
for opt in "--trace-every 3" "--eval-every 4" "--trace-activations" "--trace-unit 1"; do
    # shellcheck disable=SC2086  # opt is an option and its value
    expect_exit 2 "--resume with $opt" train --resume res-ext $opt
    check "--resume with $opt: one line naming it (got: $(head -c 300 "$WORK/stderr"))" \
        bash -c "[ \$(wc -l < '$WORK/stderr') -eq 1 ] && grep -qF -- '${opt%% *}' '$WORK/stderr'"
done

# ---- usage errors: exit 2, one line, nothing created ----
mkdir u && cd u || exit 1
usage() {
    local desc=$1 want=$2
    shift 2
    expect_exit 2 "$desc" train "${SPIRALS[@]}" --out r "$@"
    check "$desc: one line 'nabla train: ...' (got: $(head -c 300 "$WORK/stderr"))" \
        one_line_error "nabla train: "
    check "$desc: says '$want' (got: $(head -c 300 "$WORK/stderr"))" grep -qF -- "$want" "$WORK/stderr"
    check "$desc: creates nothing" [ -z "$(ls -A .)" ]
}
usage "no hidden layer" "needs an activation layer" --layers none --trace-activations
usage "--trace-layer beyond the layers" "--trace-layer 3" --trace-activations --trace-layer 3
usage "--trace-layer 0" "--trace-layer" --trace-activations --trace-layer 0
usage "--trace-unit = width" "--trace-unit 8" --trace-activations --trace-unit 8
usage "--trace-unit beyond layer 1's width" "--trace-unit 16" --trace-activations --trace-layer 1 --trace-unit 16
usage "--trace-unit -1" "--trace-unit" --trace-activations --trace-unit -1
usage "--trace-every 0" "--trace-every" --trace-activations --trace-every 0
usage "--trace-every x" "--trace-every" --trace-activations --trace-every x
usage "--trace-layer without --trace-activations" "--trace-activations" --trace-layer 1
usage "--trace-unit without --trace-activations" "--trace-activations" --trace-unit 0
usage "--trace-every without --trace-activations" "--trace-activations" --trace-every 4
usage "--eval-every 0" "--eval-every" --eval-every 0
usage "--eval-every -3" "--eval-every" --eval-every -3
usage "--eval-every without dev or test set" "--eval-every" --eval-every 5 --test none
cd "$WORK" || exit 1
# --trace-unit 15 is layer 1's last unit: accepted.
run train "${SPIRALS[@]}" --epochs 1 --trace-activations --trace-layer 1 --trace-unit 15 --out ok
check "--trace-layer 1 --trace-unit 15 (the last unit) exits 0" [ "$RC" -eq 0 ]
check "... and traces unit 15 of layer 1" \
    [ "$(json ok/config.json '(j["trace_layer"], j["trace_unit"])')" = "(1, 15)" ]
run train --help
for opt in trace-activations trace-layer trace-unit trace-every eval-every; do
    check "train --help lists --$opt" grep -q -- "--$opt\b" "$WORK/stdout"
done

finish

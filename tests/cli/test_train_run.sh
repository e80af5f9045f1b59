#!/bin/bash
# Good runs: the four run files and their contents, accuracy on moons, reproducibility,
# save -> eval round trips (also with --normalize standard), CSV and IDX data, batch sizes,
# --max-steps, the progress output.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# ---- moons: files, JSON, metrics, accuracy ----
run train --data moons --layers 16,16 --lr 0.01 --epochs 20 --seed 3 --out moons \
    --save-weights saved.safetensors
check "moons run exits 0 (stderr: $(cat "$WORK/stderr"))" [ "$RC" -eq 0 ]
for f in config.json metrics.jsonl model.safetensors summary.json; do
    check "moons run writes $f" [ -s "moons/$f" ]
done
check "no temporary files are left in the run directory (the checkpoints, current and previous, are kept)" \
    [ "$(ls -A moons | tr '\n' ' ')" = ".lock checkpoint.prev.safetensors checkpoint.safetensors config.json metrics.jsonl model.safetensors summary.json " ]
check "config.json is valid JSON" valid_json moons/config.json
check "summary.json is valid JSON" valid_json moons/summary.json
check "metrics.jsonl has exactly --epochs lines" [ "$(lines moons/metrics.jsonl)" -eq 20 ]
check "every metrics line is JSON with epoch 1..20 and every field" "$PY" - <<'EOF'
import json
keys = {"epoch", "lr", "train_loss", "train_accuracy", "dev_loss", "dev_accuracy", "test_loss",
        "test_accuracy", "seconds"}
rows = [json.loads(line) for line in open("moons/metrics.jsonl")]
assert [r["epoch"] for r in rows] == list(range(1, 21)), rows
for r in rows:
    assert keys <= r.keys(), r.keys()
    assert r["lr"] == 0.01 and r["dev_loss"] is None and r["dev_accuracy"] is None
    assert 0 <= r["train_accuracy"] <= 1 and 0 <= r["test_accuracy"] <= 1
    assert r["train_loss"] > 0 and r["seconds"] >= 0
EOF
# The resolved configuration: what was asked, and what the data turned out to be.
check "config.json holds the resolved configuration" "$PY" - <<'EOF'
import json
c = json.load(open("moons/config.json"))
want = {"data": "moons", "features": 2, "classes": 2, "train_samples": 1000, "dev_samples": 0,
        "test_samples": 250, "layers": [16, 16], "activation": "relu", "optimizer": "adam",
        "lr": 0.01, "beta": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0,
        "batch_size": 64, "epochs": 20, "seed": 3, "lr_decay": "none", "noise": 0.2,
        "samples": 1000, "batchnorm": False, "shuffle": True, "normalize": "standard",
        "save_weights": "saved.safetensors",
        # 2*16+16 + 16*16+16 + 16*2+2
        "parameters": 354}
for k, v in want.items():
    assert c.get(k) == v, (k, c.get(k), v)
assert c["threads"] >= 1
EOF
# 1000 samples in batches of 64: 16 steps an epoch.
check "summary.json: counts, rates and the last epoch's test metrics" "$PY" - <<'EOF'
import json
s = json.load(open("moons/summary.json"))
last = [json.loads(l) for l in open("moons/metrics.jsonl")][-1]
assert s["epochs"] == 20 and s["steps"] == 20 * 16 and s["samples"] == 20 * 1000, s
assert s["diverged"] is False
assert s["test_samples"] == 250 and s["dev_loss"] is None and s["dev_accuracy"] is None
assert s["test_accuracy"] == last["test_accuracy"], (s["test_accuracy"], last)
assert abs(s["test_loss"] - last["test_loss"]) < 1e-9
assert s["train_loss"] == last["train_loss"]
assert s["train_seconds"] > 0
assert abs(s["samples_per_second"] - s["samples"] / s["train_seconds"]) < 1e-6 * s["samples_per_second"]
EOF
check "moons with a small net reaches test accuracy > 0.9" \
    pytrue "json.load(open('moons/summary.json'))['test_accuracy'] > 0.9"
check "--save-weights writes the same bytes as model.safetensors" \
    cmp -s saved.safetensors moons/model.safetensors
# Plain output (stdout is not a terminal): one line per epoch, no carriage returns, a result.
check "one plain line per epoch" [ "$(grep -c '^epoch [0-9]*/20  lr 0.01  train loss' "$WORK/stdout")" -eq 20 ]
check "no live bar when stdout is not a terminal" [ "$(tr -cd '\r' <"$WORK/stdout" | wc -c)" -eq 0 ]
acc=$(json moons/summary.json '"%.4f" % j["test_accuracy"]')
check "the final line gives the test accuracy" grep -q "^test accuracy $acc (loss " "$WORK/stdout"
check "the output says where the files went" grep -q "moons" "$WORK/stdout"

# ---- the same seed gives the same bytes; another seed does not ----
run train --data moons --layers 16,16 --lr 0.01 --epochs 20 --seed 3 --out moons-again --quiet
check "second run exits 0" [ "$RC" -eq 0 ]
check "same seed twice: byte-identical model.safetensors" \
    cmp -s moons/model.safetensors moons-again/model.safetensors
run train --data moons --layers 16,16 --lr 0.01 --epochs 20 --seed 4 --out moons-seed4 --quiet
check "another seed gives other weights" \
    bash -c '! cmp -s moons/model.safetensors moons-seed4/model.safetensors'
# Restricted to one core (taskset; mpirun binds a rank so), a run gives the same bytes: products
# are cut by the machine's cores, not by the cores the process may use. A batch of 100 and a
# layer of 300 give OpenBLAS blocks whose sums it orders differently when cut otherwise.
SPIRALS=(train --data spirals --samples 600 --layers 300,24 --batch-size 100 --epochs 3
         --threads 1 --quiet)
run "${SPIRALS[@]}" --out anywhere
taskset -c 0 "$NABLA" "${SPIRALS[@]}" --out one-core >/dev/null 2>&1
check "on one core (taskset -c 0): byte-identical model" \
    cmp anywhere/model.safetensors one-core/model.safetensors
run train --data moons --layers 16,16 --lr 0.01 --epochs 20 --seed 4 --out moons-seed4 --quiet
check "--quiet prints only the result line" [ "$(lines "$WORK/stdout")" -eq 1 ] 
check "--quiet result line" grep -q "^test accuracy 0\.[0-9]\{4\} (loss [0-9.]*)$" "$WORK/stdout"

# ---- save, then eval: the same numbers as summary.json ----
run eval --model moons/model.safetensors --data moons --seed 3 --json
check "eval --json exits 0 (stderr: $(cat "$WORK/stderr"))" [ "$RC" -eq 0 ]
cp "$WORK/stdout" eval.json
check "eval --json gives the summary's test accuracy and loss on 250 samples" "$PY" - <<'EOF'
import json
e = json.load(open("eval.json"))
s = json.load(open("moons/summary.json"))
assert {"task", "loss", "accuracy", "samples", "classes", "per_class", "confusion"} <= set(e), e
assert e["task"] == "classification" and e["classes"] == ["0", "1"], e
assert sum(map(sum, e["confusion"])) == 250, e
assert e["samples"] == 250 and e["accuracy"] == s["test_accuracy"], (e, s)
assert abs(e["loss"] - s["test_loss"]) < 1e-5, (e, s)
EOF
run eval --model moons/model.safetensors --data moons --seed 3 --batch-size 7
check "eval text output" grep -q "^loss [0-9.]* accuracy $acc (250 samples)$" "$WORK/stdout"
# The synthetic test set depends on the seed: another seed, other numbers of the same size.
run eval --model moons/model.safetensors --data moons --seed 9 --json
check "eval of another seed's test set runs" [ "$RC" -eq 0 ]
check "eval --samples sizes the synthetic test set like train does" bash -c \
    "'$NABLA' eval --model moons/model.safetensors --data moons --samples 2000 --json | grep -q '\"samples\":500}'"

# matches_summary EVAL_JSON SUMMARY N SPLIT: `nabla eval --json` scored N samples, with the
# summary's SPLIT (dev or test) accuracy exactly and its loss to 1e-5.
matches_summary() {
    "$PY" - "$@" <<'EOF'
import json, sys
e, s = (json.load(open(f)) for f in sys.argv[1:3])
n, split = int(sys.argv[3]), sys.argv[4]
assert e["samples"] == n and e["accuracy"] == s[split + "_accuracy"], (e, s)
assert abs(e["loss"] - s[split + "_loss"]) < 1e-5, (e, s)
EOF
}

# ---- eval --split: the training data as train read it, its dev split held out the same way ----
run train --data moons --samples 500 --layers 16,16 --lr 0.01 --epochs 30 --dev-fraction 0.2 \
    --seed 5 --out moons-dev --quiet
DEV=(--model moons-dev/model.safetensors --data moons --samples 500 --seed 5 --json)
run eval "${DEV[@]}" --split dev --dev-fraction 0.2
check "eval --split dev: the 100 dev samples and the summary's dev accuracy and loss" \
    matches_summary "$WORK/stdout" moons-dev/summary.json 100 dev
run eval "${DEV[@]}" --split train --dev-fraction 0.2
check "eval --split train with the dev fraction: the other 400 samples" \
    grep -q '"samples":400}' "$WORK/stdout"
run eval "${DEV[@]}" --split train
check "eval --split train: all 500 training samples" grep -q '"samples":500}' "$WORK/stdout"
# A run's model without --data: the run's data, seed and dev split.
run eval --model moons-dev --split dev --json
check "eval of a run directory: the run's data and dev split" \
    matches_summary "$WORK/stdout" moons-dev/summary.json 100 dev
run eval --model moons-dev/model.safetensors --split train --json
check "eval --split train of a run's model: the run's 400 training samples" \
    grep -q '"samples":400}' "$WORK/stdout"
run eval --model moons-dev --split train --dev-fraction 0 --json
check "eval --split train --dev-fraction 0: all 500 training samples" \
    grep -q '"samples":500}' "$WORK/stdout"
run eval --model moons-dev --split dev --dev-fraction 0.3
check "eval --split dev with another --dev-fraction than the run's: exit 2" [ "$RC" -eq 2 ]
check "... saying the run's" grep -q "but the run held out 0.2" "$WORK/stderr"
run eval --model moons-dev --json
check "eval of a run directory: its test set" matches_summary "$WORK/stdout" \
    moons-dev/summary.json 200 test
run eval "${DEV[@]}" --split dev --dev-fraction 0.2 --seed 6
check "eval --split dev: another seed holds out other samples" \
    bash -c "! cmp -s dev.json '$WORK/stdout'"

# ---- --normalize standard round-trips through the model file ----
# Features far from zero and on very different scales: standardization is what makes this
# trainable in a few epochs, and eval must apply the saved mean and std to match.
"$PY" - <<'EOF'
import random
random.seed(1)
with open("offset.csv", "w") as f:
    f.write("a,b,label\n")
    for i in range(400):
        a, b = random.gauss(0, 1), random.gauss(0, 1)
        f.write(f"{1000 + 50 * a:.4f},{-3 + 0.01 * b:.6f},{int(a + b > 0)}\n")
EOF
run train --data offset.csv --test offset.csv --normalize standard --layers 8 --lr 0.01 \
    --epochs 30 --out norm --quiet
check "--normalize standard run exits 0 (stderr: $(cat "$WORK/stderr"))" [ "$RC" -eq 0 ]
check "standardized data is learned (accuracy > 0.9)" \
    pytrue "json.load(open('norm/summary.json'))['test_accuracy'] > 0.9"
check "--normalize standard: the model file holds the training set's mean and std" "$PY" - <<'EOF'
import json, math, struct
rows = [list(map(float, l.split(",")[:2])) for l in open("offset.csv").readlines()[1:]]
mean = [sum(r[i] for r in rows) / len(rows) for i in range(2)]
std = [math.sqrt(sum((r[i] - mean[i]) ** 2 for r in rows) / len(rows)) for i in range(2)]
raw = open("norm/model.safetensors", "rb").read()
meta = json.loads(raw[8:8 + struct.unpack("<Q", raw[:8])[0]])["__metadata__"]
got_mean, got_std = json.loads(meta["normalize_mean"]), json.loads(meta["normalize_std"])
for g, w in zip(got_mean + got_std, mean + std):
    assert abs(g - w) <= 1e-5 * abs(w), (got_mean, got_std, mean, std)
EOF
run train --data offset.csv --test offset.csv --layers 8 --epochs 1 --normalize none \
    --out no-norm --quiet
check "with --normalize none the model file has no mean and std" bash -c \
    "! grep -q normalize_mean no-norm/model.safetensors"
run eval --model norm/model.safetensors --data offset.csv --json
check "--normalize standard: eval gives the summary's accuracy and loss" \
    matches_summary "$WORK/stdout" norm/summary.json 400 test
run eval --model norm/model.safetensors --data offset.csv --test offset.csv --json
check "eval --test evaluates the CSV given" grep -q '"samples":400' "$WORK/stdout"

# ---- CSV with a dev split and a test set ----
"$PY" - <<'EOF'
import random
random.seed(2)
for name, n in (("three.csv", 300), ("three-test.csv", 90)):
    with open(name, "w") as f:
        for i in range(n):
            c = i % 3
            f.write(f"{c + random.gauss(0, 0.2):.5f},{-c + random.gauss(0, 0.2):.5f},{c}\n")
EOF
run train --data three.csv --test three-test.csv --dev-fraction 0.2 --layers 8 --lr 0.02 \
    --epochs 5 --batch-size 32 --out csv
check "CSV run exits 0 (stderr: $(cat "$WORK/stderr"))" [ "$RC" -eq 0 ]
check "CSV run: classes, features and split sizes" "$PY" - <<'EOF'
import json
c = json.load(open("csv/config.json"))
s = json.load(open("csv/summary.json"))
assert (c["classes"], c["features"]) == (3, 2), c
assert (c["train_samples"], c["dev_samples"], c["test_samples"]) == (240, 60, 90), c
assert c["data_kind"] == "csv" and c["test"] == "three-test.csv" and c["dev_fraction"] == 0.2
# 240 samples in batches of 32: 8 steps an epoch.
assert s["steps"] == 40 and s["dev_samples"] == 60 and s["test_samples"] == 90, s
for r in map(json.loads, open("csv/metrics.jsonl")):
    assert r["dev_loss"] is not None and r["test_loss"] is not None, r
EOF
check "dev metrics appear in the epoch lines" grep -q "  dev loss [0-9.]* acc [0-9.]*  test loss" "$WORK/stdout"
# A CSV without --test: no test metrics anywhere, and a result line that says so.
run train --data three.csv --layers 8 --epochs 2 --out csv-notest
check "CSV without --test exits 0" [ "$RC" -eq 0 ]
check "no test set: null test metrics" "$PY" - <<'EOF'
import json
s = json.load(open("csv-notest/summary.json"))
assert s["test_accuracy"] is None and s["test_loss"] is None and s["test_samples"] == 0, s
assert all(json.loads(l)["test_accuracy"] is None for l in open("csv-notest/metrics.jsonl"))
EOF
check "no test set: the result line says so" grep -q "no test set" "$WORK/stdout"

# ---- batch sizes and --max-steps: step counts worked out by hand ----
run train --data three.csv --layers 4 --batch-size full --epochs 3 --out full --quiet
check "--batch-size full: one step per epoch" pytrue "json.load(open('full/summary.json'))['steps'] == 3"
check "--batch-size full is recorded" pytrue "json.load(open('full/config.json'))['batch_size'] == 'full'"
run train --data three.csv --layers 4 --batch-size 1 --epochs 2 --out sgd1 --quiet
check "--batch-size 1: one step per sample" pytrue "json.load(open('sgd1/summary.json'))['steps'] == 600"
run train --data three.csv --layers 4 --batch-size 1000 --epochs 2 --out big --quiet
check "a batch larger than the set is the whole set" pytrue "json.load(open('big/summary.json'))['steps'] == 2"
run train --data three.csv --layers 4 --batch-size 32 --epochs 5 --max-steps 13 --out capped --quiet
check "--max-steps caps the steps" pytrue "json.load(open('capped/summary.json'))['steps'] == 13"
# 300 samples: 9 batches of 32 and one of 12 in the first epoch, then 3 batches of 32.
check "--max-steps: samples trained" pytrue "json.load(open('capped/summary.json'))['samples'] == 300 + 3 * 32"
run train --data spirals --samples 300 --layers 16 --batchnorm --activation tanh --optimizer nesterov \
    --lr 0.1 --lr-decay cosine --warmup-epochs 1 --epochs 3 --no-shuffle --out options --quiet
check "a run with many options exits 0 (stderr: $(cat "$WORK/stderr"))" [ "$RC" -eq 0 ]
check "spirals have 3 classes" pytrue "json.load(open('options/config.json'))['classes'] == 3"
check "cosine decay reaches the metrics: lr falls" "$PY" - <<'EOF'
import json
lrs = [json.loads(l)["lr"] for l in open("options/metrics.jsonl")]
assert len(lrs) == 3 and lrs[1] > lrs[2], lrs
EOF
run train --data moons --samples 200 --layers none --epochs 2 --out linear --quiet
check "--layers none trains a linear model (2*2+2 parameters)" \
    pytrue "json.load(open('linear/config.json'))['parameters'] == 6"

# ---- the default run directory ----
mkdir default && cd default || exit 1
run train --data moons --samples 100 --layers 4 --epochs 1 --quiet
check "default --out exits 0" [ "$RC" -eq 0 ]
check "default --out is runs/YYYYmmdd-HHMMSS" bash -c 'ls runs | grep -Eq "^[0-9]{8}-[0-9]{6}$"'
check "default --out holds the four files and the checkpoint" bash -c '[ "$(ls runs/*/ | wc -l)" -eq 5 ]'
run train --data moons --samples 100 --layers 4 --epochs 1 --quiet
check "a second run in the same second gets its own directory" \
    bash -c '[ "$(ls runs | wc -l)" -eq 2 ]'
cd "$WORK" || exit 1

# ---- Fashion-MNIST, briefly ----
if [ -e /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
    run train --max-steps 5 --layers 32 --epochs 1 --out fashion --quiet
    check "Fashion-MNIST run exits 0 (stderr: $(cat "$WORK/stderr"))" [ "$RC" -eq 0 ]
    check "Fashion-MNIST sizes" "$PY" - <<'EOF'
import json
c = json.load(open("fashion/config.json"))
s = json.load(open("fashion/summary.json"))
assert (c["features"], c["classes"], c["train_samples"], c["test_samples"]) == (784, 10, 60000, 10000), c
assert c["data_kind"] == "idx" and c["data"] == "fashion-mnist"
assert s["steps"] == 5 and s["samples"] == 5 * 64 and s["test_samples"] == 10000, s
EOF
    run eval --model fashion/model.safetensors --json
    cp "$WORK/stdout" fashion-eval.json
    check "Fashion-MNIST: eval on t10k matches the summary" "$PY" - <<'EOF'
import json
e = json.load(open("fashion-eval.json"))
s = json.load(open("fashion/summary.json"))
assert e["samples"] == 10000 and e["accuracy"] == s["test_accuracy"], (e, s)
assert abs(e["loss"] - s["test_loss"]) < 1e-5, (e, s)
EOF
else
    echo "skipped: Fashion-MNIST is not installed"
fi

# ---- the live bar, on a pseudo-terminal ----
if script -qc true /dev/null >/dev/null 2>&1; then
    script -qec "'$NABLA' train --data moons --samples 5000 --layers 32 --batch-size 8 --epochs 2 --out tty" \
        /dev/null >tty.txt 2>&1
    check "on a terminal: a bar redrawn with \\r" grep -q $'\r\033\\[2Kepoch 1/2 \\[[#.]\\{10\\}\\] [0-9]*/625 loss' tty.txt
    check "on a terminal: samples/s and ETA" grep -q "samples/s ETA [0-9]*:[0-9][0-9]" tty.txt
    check "on a terminal: still one plain line per epoch" grep -q "epoch 2/2  lr 0.001  train loss" tty.txt
else
    echo "skipped: no pseudo-terminal (script) for the live bar"
fi

finish

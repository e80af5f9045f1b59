#!/bin/bash
# Batch normalization (Ioffe & Szegedy 2015, section 4.1) on Fashion-MNIST: three hidden layers
# of 100 sigmoid units, mini-batches of 60, plain SGD, trained with and without batch norm.
# Records the test accuracy every 250 steps (--eval-every) and the 15th, 50th and 85th
# percentiles of the input of the last hidden layer's sigmoids (--trace-activations), writes
# one report over the two runs and prints a summary table.
#
#   examples/batchnorm/run.sh [NABLA [OUT]] [--quick] [--lr X] [--epochs N]
#
# NABLA: the nabla program (default build/nabla in the repository); OUT: the output directory
# (default runs/batchnorm in the repository). --quick: 200 steps instead of 10 epochs (10,000
# steps), for the tests; --lr: SGD's learning rate [0.5]; --epochs: the budget [10].
set -euo pipefail

LR=0.5
EPOCHS=10
REST=()
while [ $# -gt 0 ]; do
    case $1 in
        --lr) LR=${2:?run.sh: --lr needs a value}; shift ;;
        --epochs) EPOCHS=${2:?run.sh: --epochs needs a value}; shift ;;
        *) REST+=("$1") ;;
    esac
    shift
done
. "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
example_start batchnorm "${REST[@]}"

# 60,000 training images / 60 = 1,000 steps an epoch. The trace records the last hidden layer
# (the default), unit 0, 20 times an epoch (step 1 and every 50 steps).
# shellcheck disable=SC2054  # the commas are inside values
TRAIN=(train --data fashion-mnist --layers 100,100,100 --activation sigmoid --batch-size 60
       --optimizer sgd --lr "$LR" --epochs "$EPOCHS" --seed 0 --threads 1 --quiet
       --trace-activations --trace-every 50 --eval-every 250)
[ $QUICK -eq 1 ] && TRAIN+=(--max-steps 200 --trace-every 20 --eval-every 100)

mkdir -p "$OUT/logs"
rm -f "$OUT"/logs/*.failed
# The two runs at once, one thread each (the machine's two cores).
for run in without-bn with-bn; do
    flag=()
    [ $run = with-bn ] && flag=(--batchnorm)
    ( "$NABLA" "${TRAIN[@]}" "${flag[@]}" --out "$OUT/$run" >"$OUT/logs/$run.log" 2>&1 ||
      touch "$OUT/logs/$run.failed" ) &
done
wait
for run in without-bn with-bn; do
    if [ -e "$OUT/logs/$run.failed" ]; then
        echo "run.sh: $run failed:" >&2
        cat "$OUT/logs/$run.log" >&2
        exit 1
    fi
done

(cd "$OUT" && "$NABLA" report --out report.html \
    --title "Batch normalization: 3 x 100 sigmoid units, SGD lr $LR, batches of 60, Fashion-MNIST" \
    without-bn with-bn) >"$OUT/logs/report.log"

"$PY" - "$OUT" <<'EOF'
import json, sys
out = sys.argv[1]

def rows(path):
    return [json.loads(line) for line in open(path) if line.strip()]

runs = ("without-bn", "with-bn")
steps = {r: rows(f"{out}/{r}/steps.jsonl") for r in runs}
marks = [s["step"] for s in steps["with-bn"]]
marks = sorted({m for m in marks if m in (100, 200, 500, 1000, 2000, 5000)} | {marks[-1]})
print("test accuracy at step " + " ".join(f"{m:>7}" for m in marks))
for r in runs:
    acc = {s["step"]: s["test_accuracy"] for s in steps[r]}
    print(f"  {r:19}" + " ".join(f"{acc.get(m, float('nan')):7.4f}" for m in marks))

# The trace: percentiles of the sigmoid's input at the first traced step, then averaged over the
# first and over the last tenth of the traced steps, for the traced unit and the whole layer.
print("input of the last hidden layer's sigmoids, 15th/50th/85th percentiles over the batch:")
print("  at step 1  |  mean over the first tenth of training  |  mean over the last tenth")
for r in runs:
    t = rows(f"{out}/{r}/trace.jsonl")
    k = max(1, len(t) // 10)
    for who in ("unit", "layer"):
        def show(part):
            return "/".join(f"{sum(x[f'{who}_p{p}'] for x in part) / len(part):+.2f}"
                            for p in (15, 50, 85))
        label = f"unit {t[0]['unit']}" if who == "unit" else f"layer {t[0]['layer']}"
        print(f"  {r:11} {label:8} {show(t[:1])}  |  {show(t[:k])}  |  {show(t[-k:])}")
for r in runs:
    s = json.load(open(f"{out}/{r}/summary.json"))
    print(f"{r}: final test accuracy {s['test_accuracy']:.4f}, {s['steps']} steps, "
          f"{s['train_seconds']:.1f} s of training")
EOF
echo "report: $OUT/report.html ($((SECONDS - STARTED)) s)"

#!/bin/bash
# Optimization methods on moons, as in the deep-learning course's assignment: the same 3-layer
# network ([2, 5, 2, output], relu) trained with mini-batch gradient descent, momentum and Adam
# for the same budget, first at a constant learning rate, then with the course's
# fixed-interval learning-rate decay. Writes one report per schedule (the three runs' loss
# curves overlaid, each run's decision regions) and prints a summary table.
#
#   examples/optimizers/run.sh [NABLA [OUT]] [--quick]
#
# NABLA: the nabla program (default build/nabla in the repository); OUT: the output directory
# (default runs/optimizers in the repository). --quick: 100 epochs instead of 5000 and seed 0
# alone (for the tests); the default is the full experiment, repeated over seeds 0-4.
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
example_start optimizers "$@"

# The course: 300 points, noise 0.2, layers [2, 5, 2, 1] (here a 2-way softmax output),
# mini-batches of 64, 5000 epochs, beta 0.9, Adam 0.9/0.999/1e-8. nabla's moons are sklearn's
# make_moons; its test set (200 points, seed + 1) is extra: the course reports training accuracy.
EPOCHS=5000
SEEDS=(0 1 2 3 4)
[ $QUICK -eq 1 ] && EPOCHS=100 SEEDS=(0)
# shellcheck disable=SC2054  # the commas are inside values
COMMON=(train --data moons --samples 300 --noise 0.2 --layers 5,2 --activation relu
        --batch-size 64 --epochs "$EPOCHS" --threads 1 --quiet)
CONSTANT=(--lr 0.0007)
DECAY=(--lr 0.1 --lr-decay interval --decay-rate 0.3 --decay-interval 1000)
optimizer_args() {
    case $1 in
        sgd) echo "--optimizer sgd" ;;
        momentum) echo "--optimizer momentum --beta 0.9" ;;
        adam) echo "--optimizer adam --beta 0.9 --beta2 0.999 --eps 1e-8" ;;
    esac
}

# Each run has one thread; two run at a time (the machine's two cores): start_job, wait_jobs.
start_jobs

# Seed 0 (the report's runs) in OUT/<schedule>/<optimizer>; seeds 1-4, each with its own
# moons, initial weights and batch order, in OUT/seeds/<k>/<schedule>/<optimizer>.
for seed in "${SEEDS[@]}"; do
    dir=$OUT
    [ "$seed" -eq 0 ] || dir=$OUT/seeds/$seed
    for schedule in constant decay; do
        for opt in sgd momentum adam; do
            if [ $schedule = constant ]; then sched=("${CONSTANT[@]}"); else sched=("${DECAY[@]}"); fi
            # shellcheck disable=SC2046  # the optimizer's options are words
            start_job "$schedule-$opt-s$seed" "$NABLA" "${COMMON[@]}" "${sched[@]}" \
                $(optimizer_args $opt) --seed "$seed" --out "$dir/$schedule/$opt"
        done
    done
done
wait_jobs

# Training accuracy as the course measures it: the final weights on the 300 training points
# (metrics.jsonl's train accuracy is a running one, over an epoch of changing weights).
for seed in "${SEEDS[@]}"; do
    dir=$OUT
    [ "$seed" -eq 0 ] || dir=$OUT/seeds/$seed
    for run in "$dir"/{constant,decay}/{sgd,momentum,adam}; do
        "$NABLA" eval --model "$run/model.safetensors" --data moons --samples 300 --noise 0.2 \
            --seed "$seed" --split train --json >"$run/train_eval.json"
    done
done

# Run from inside each schedule's directory, so the legends say sgd, momentum and adam.
(cd "$OUT/constant" && "$NABLA" report --out report.html \
    --title "Optimizers on moons: constant learning rate 0.0007, $EPOCHS epochs" \
    sgd momentum adam) >"$OUT/logs/report-constant.log"
(cd "$OUT/decay" && "$NABLA" report --out report.html \
    --title "Optimizers on moons: learning rate 0.1 / (1 + 0.3 floor(epoch / 1000)), $EPOCHS epochs" \
    sgd momentum adam) >"$OUT/logs/report-decay.log"

"$PY" - "$OUT" "${SEEDS[@]}" <<'EOF'
import json, sys
out, seeds = sys.argv[1], sys.argv[2:]

def summary(seed, schedule, opt):
    """summary.json, with the final weights' loss and accuracy on the training set."""
    d = out if seed == "0" else f"{out}/seeds/{seed}"
    s = json.load(open(f"{d}/{schedule}/{opt}/summary.json"))
    e = json.load(open(f"{d}/{schedule}/{opt}/train_eval.json"))
    s["train_loss"], s["train_accuracy"] = e["loss"], e["accuracy"]
    return s

print("seed 0 (the report's runs); train: the final weights on the 300 training points; "
      "test: 200 other points")
print("schedule  optimizer  train loss  train acc  test acc", end="")
print(f" | over seeds {','.join(seeds)}: train acc mean (min-max)  test acc mean (min-max)"
      if len(seeds) > 1 else "")
for schedule in ("constant", "decay"):
    for opt in ("sgd", "momentum", "adam"):
        s = summary("0", schedule, opt)
        line = (f"{schedule:9} {opt:9} {s['train_loss']:11.4f} {s['train_accuracy']:10.4f} "
                f"{s['test_accuracy']:9.4f}")
        if len(seeds) > 1:
            runs = [summary(k, schedule, opt) for k in seeds]
            for key in ("train_accuracy", "test_accuracy"):
                v = [r[key] for r in runs]
                line += f" | {sum(v) / len(v):.4f} ({min(v):.4f}-{max(v):.4f})"
        print(line)
EOF
echo "reports: $OUT/constant/report.html $OUT/decay/report.html ($((SECONDS - STARTED)) s)"

#!/bin/bash
# Layer norm against batch norm at batch sizes 2, 8 and 64 (Ba, Kiros & Hinton 2016): a small
# CNN on Fashion-MNIST with batch norm, with layer norm, or with neither after each conv2d and
# after its hidden linear layer, trained with Adam on the same 60,000 samples (one epoch: 30,000
# steps of 2, 7,500 of 8, 938 of 64), seeds 0 to N-1. Records the test accuracy every 12,800
# samples (--eval-every), writes one report per batch size (the three norms overlaid) and prints
# a summary table.
#
#   examples/layernorm/run.sh [NABLA [OUT]] [--quick] [--seeds N]
#
# NABLA: the nabla program (default build/nabla in the repository); OUT: the output directory
# (default runs/layernorm in the repository). --seeds: how many seeds [2]. --quick: one epoch
# of a 512-image subset (test: 500 images), seed 0 alone, for the tests.
set -euo pipefail

SEEDS=2
REST=()
while [ $# -gt 0 ]; do
    case $1 in
        --seeds) [ $# -ge 2 ] || { echo "run.sh: --seeds needs a value" >&2; exit 2; }
                 SEEDS=$2; shift ;;
        *) REST+=("$1") ;;
    esac
    shift
done
case $SEEDS in [1-9] | [1-9][0-9]) ;; *) echo "run.sh: --seeds must be 1 to 99, not '$SEEDS'" >&2; exit 2 ;; esac
. "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
example_start layernorm "${REST[@]}"

BATCHES=(2 8 64)
NORMS=(batchnorm layernorm none)
# The network: conv 8 - norm - relu - pool, conv 16 - norm - relu - pool, linear 64 - norm -
# relu, linear 10. Batch norm after conv2d is BatchNorm2d (statistics per channel over the
# batch and the image), after linear BatchNorm1d (per unit over the batch alone).
model() {
    local n=${1/#none/}
    echo "conv2d(8,3,padding=1),${n:+$n,}relu,maxpool2d(2),conv2d(16,3,padding=1),${n:+$n,}relu,maxpool2d(2),flatten,linear(64),${n:+$n,}relu,linear"
}
DATA=fashion-mnist
SAMPLES=60000   # one epoch of the training set
EVAL=12800      # samples between evaluations: a whole number of steps at every batch size
if [ $QUICK -eq 1 ]; then
    SEEDS=1 SAMPLES=512 EVAL=128
fi

start_jobs
if [ $QUICK -eq 1 ]; then
    # The first 512 training and 500 test images of Fashion-MNIST, as IDX files.
    DATA=$OUT/data
    mkdir -p "$DATA"
    "$PY" - "$DATA" <<'PYEOF'
import gzip, struct, sys
src, out = "/usr/share/datasets/fashion-mnist", sys.argv[1]
for split, n in (("train", 512), ("t10k", 500)):
    for kind, item in (("images-idx3", 784), ("labels-idx1", 1)):
        raw = gzip.open(f"{src}/{split}-{kind}-ubyte.gz").read()
        ndim = raw[3]
        head = raw[:4] + struct.pack(">I", n) + raw[8:4 + 4 * ndim]
        with open(f"{out}/{split}-{kind}-ubyte", "wb") as f:
            f.write(head + raw[4 + 4 * ndim:4 + 4 * ndim + n * item])
PYEOF
fi

# Seed 0 (the reports' runs) in OUT/b<batch>/<norm>, seed k in OUT/seeds/k/b<batch>/<norm>;
# each run on one thread, two at a time (the machine's two cores).
for ((seed = 0; seed < SEEDS; seed++)); do
    dir=$OUT
    [ "$seed" -eq 0 ] || dir=$OUT/seeds/$seed
    for b in "${BATCHES[@]}"; do
        for norm in "${NORMS[@]}"; do
            start_job "b$b-$norm-s$seed" "$NABLA" train --data "$DATA" --layers "$(model $norm)" \
                --batch-size "$b" --epochs 1 \
                --seed "$seed" --threads 1 --quiet --eval-every $((EVAL / b)) \
                --out "$dir/b$b/$norm"
        done
    done
done
wait_jobs

# One report per batch size; run from inside its directory, so the legends name the norms.
for b in "${BATCHES[@]}"; do
    (cd "$OUT/b$b" && "$NABLA" report --out report.html \
        --title "Batch norm, layer norm, neither: small CNN, batches of $b, Adam, $SAMPLES samples, seed 0" \
        "${NORMS[@]}") >"$OUT/logs/report-b$b.log"
done

"$PY" - "$OUT" "$SEEDS" "$SAMPLES" <<'PYEOF'
import json, statistics, sys
out, seeds, samples = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
batches, norms = (2, 8, 64), ("batchnorm", "layernorm", "none")

def run(seed, b, norm):
    d = f"{out}/b{b}/{norm}" if seed == 0 else f"{out}/seeds/{seed}/b{b}/{norm}"
    return {"summary": json.load(open(f"{d}/summary.json")),
            "steps": [json.loads(l) for l in open(f"{d}/steps.jsonl") if l.strip()]}

runs = {(s, b, n): run(s, b, n) for s in range(seeds) for b in batches for n in norms}
print(f"{samples} training samples per run, seeds 0-{seeds - 1}; test accuracy with the final weights "
      "(batch norm: running statistics); train: the accuracy on the training batches during the "
      "epoch (batch norm: each batch's own statistics)")
means = {}
for b in batches:
    for n in norms:
        test = [runs[s, b, n]["summary"]["test_accuracy"] for s in range(seeds)]
        train = [runs[s, b, n]["summary"]["train_accuracy"] for s in range(seeds)]
        means[b, n] = statistics.mean(test)
        print(f"batch {b:<3} {n:10} test " + " ".join(f"{v:.4f}" for v in test)
              + f" mean {means[b, n]:.4f} | train " + " ".join(f"{v:.4f}" for v in train)
              + f" mean {statistics.mean(train):.4f}")
print("layer norm minus batch norm, mean test accuracy: "
      + ", ".join(f"batch {b} {100 * (means[b, 'layernorm'] - means[b, 'batchnorm']):+.2f} points"
                  for b in batches))
print("test accuracy during training, seed 0, by samples seen:")
for b in batches:
    for n in norms:
        pts = [(s["step"] * b, s["test_accuracy"]) for s in runs[0, b, n]["steps"]]
        pts.append((runs[0, b, n]["summary"]["samples"], runs[0, b, n]["summary"]["test_accuracy"]))
        print(f"  batch {b:<3} {n:10} " + "  ".join(f"{k}: {a:.4f}" for k, a in pts))
PYEOF
echo "reports: $OUT/b2/report.html $OUT/b8/report.html $OUT/b64/report.html ($((SECONDS - STARTED)) s)"

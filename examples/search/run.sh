#!/bin/bash
# Random search against grid search (Bergstra & Bengio 2012) with nabla tune: the same number of
# trials over a space where one hyperparameter matters (Adam's learning rate, log scale) and the
# others barely do: Adam's beta2 (2d), or beta2, eps and weight decay (4d). First a larger
# random study ranks the four by importance, and a fine grid over the learning rate alone shows
# how wide its good region is; then, for each of several seeds (a seed makes its own spirals,
# initial weights, random draws and grid subset), a grid study and a random study of 9 and of
# 16 trials in each space. Writes the reports of the ranking and sweep studies and of the
# seed-1 studies of 16 trials, one comparing the best models of the 2d pair, and prints a
# summary table (per seed in OUT/seeds.tsv).
#
#   examples/search/run.sh [NABLA [OUT]] [--quick]
#
# NABLA: the nabla program (default build/nabla in the repository); OUT: the output directory
# (default runs/search in the repository). --quick: 2 seeds, 4 trials of 2 epochs (for the
# tests); the default is the full experiment (20 seeds, 9 and 16 trials of 10 epochs).
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
example_start search "$@"

# The important hyperparameter, Adam's learning rate, with one unimportant one (2d) or three
# (4d); the ranking study over the 4d space shows which matter.
LR="lr=log(1e-4,1)"
SPACE_2d="$LR; beta2=1-log(0.9,0.9999)"
SPACE_4d="$SPACE_2d; eps=log(1e-8,1e-4); weight-decay=log(1e-6,1e-3)"
# 3,000 points of three spiral arms with 0.5 rad of noise on the angle (2,700 train, 300 dev),
# a 32-32 relu network, 10 epochs of Adam: a trial takes about 0.1 s.
# shellcheck disable=SC2054  # the commas are inside values
FIXED=(--data spirals --samples 3000 --noise 0.5 --layers 32,32 --epochs 10 --batch-size 64
       --optimizer adam --workers 2 --quiet)
SEEDS=({1..20})
SIZES="9 16"
RANKING_TRIALS=64
SWEEP_TRIALS=33
if [ $QUICK -eq 1 ]; then
    # shellcheck disable=SC2054
    FIXED=(--data spirals --samples 600 --noise 0.5 --layers 16 --epochs 2 --batch-size 64
           --optimizer adam --workers 2 --quiet)
    SEEDS=(1 2)
    SIZES=4
    RANKING_TRIALS=8
    SWEEP_TRIALS=5
fi

mkdir -p "$OUT/logs"
# A study continues when run again, and refuses other settings: start every study afresh.
study() {   # study NAME SPACE ARGS...
    local name=$1 space=$2
    shift 2
    rm -rf "${OUT:?}/$name"
    "$NABLA" tune "${FIXED[@]}" --space "$space" "$@" --out "$OUT/$name" >"$OUT/logs/$name.log" 2>&1 ||
        { echo "run.sh: study $name failed:" >&2; cat "$OUT/logs/$name.log" >&2; exit 1; }
}

study ranking "$SPACE_4d" --sampler random --trials "$RANKING_TRIALS" --seed 100
# The learning rate alone, on a fine grid (beta2 at its default): how wide the good region is.
study lr-sweep "$LR" --sampler grid --trials "$SWEEP_TRIALS" --seed 1
for seed in "${SEEDS[@]}"; do
    for dims in 2d 4d; do
        space=SPACE_$dims
        for n in $SIZES; do
            for sampler in grid random; do
                study "$sampler-$dims-$n-s$seed" "${!space}" --sampler $sampler --trials "$n" --seed "$seed"
            done
        done
    done
done

LAST=${SIZES##* }
FIRST_SEED=${SEEDS[0]}
REPORTS=()
(cd "$OUT" && for s in ranking lr-sweep {grid,random}-{2d,4d}-"$LAST-s$FIRST_SEED"; do
    "$NABLA" report --out "$s/report.html" "$s" >>logs/report.log
done)
REPORTS+=("$OUT/ranking/report.html" "$OUT/lr-sweep/report.html" "$OUT"/{grid,random}-{2d,4d}-"$LAST-s$FIRST_SEED"/report.html)
# The best models of the two 2d studies side by side: their curves and decision regions.
GRID=grid-2d-$LAST-s$FIRST_SEED
RANDOM_STUDY=random-2d-$LAST-s$FIRST_SEED
best_trial() { "$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["trial"])' "$1/best.json"; }
GRID_BEST=$(best_trial "$OUT/$GRID")
RANDOM_BEST=$(best_trial "$OUT/$RANDOM_STUDY")
(cd "$OUT" && "$NABLA" report --out best-models.html \
    --title "The best trial of grid search and of random search (lr and beta2, $LAST trials, seed $FIRST_SEED)" \
    "$GRID/trials/$GRID_BEST" "$RANDOM_STUDY/trials/$RANDOM_BEST" >>logs/report.log)
REPORTS+=("$OUT/best-models.html")

"$PY" - "$OUT" "$SIZES" "${SEEDS[@]}" <<'PYEOF' | tee "$OUT/summary.txt"
import json, sys
out, sizes, seeds = sys.argv[1], [int(n) for n in sys.argv[2].split()], sys.argv[3:]

def study(name):
    best = json.load(open(f"{out}/{name}/best.json"))
    events = [json.loads(line) for line in open(f"{out}/{name}/journal.jsonl")]
    lrs = {json.dumps(e["params"]["lr"]) for e in events if "params" in e}
    return best, len(lrs)

ranking, _ = study("ranking")
print(f"importance (share of the variance of dev accuracy over {ranking['complete']} random trials; "
      f"about {3 / (ranking['complete'] - 1):.2f} by chance):")
print("  " + ", ".join(f"{k} {v:.3f}" for k, v in
                       sorted(ranking["importance"].items(), key=lambda kv: -kv[1])))
events = [json.loads(line) for line in open(f"{out}/lr-sweep/journal.jsonl")]
lr = {e["trial"]: e["params"]["lr"] for e in events if "params" in e}
dev = {e["trial"]: e["dev_accuracy"] for e in events if e.get("state") == "complete"}
top = max(dev.values())
near = sorted(lr[t] for t in dev if dev[t] >= top - 0.02)
print(f"lr alone, {len(dev)} values from 1e-4 to 1 (seed 1): best dev accuracy {top:.4f}; within 0.02 of it"
      f" for lr {near[0]:.3g} .. {near[-1]:.3g}" + ("" if len(near) == sum(near[0] <= v <= near[-1] for v in lr.values())
                                                 else " (not every lr between)"))
detail = open(f"{out}/seeds.tsv", "w")
detail.write("space\ttrials\tseed\tsampler\tbest_dev_accuracy\ttest_accuracy\tlr_values\tbest_lr\n")
print(f"\nmeans over {len(seeds)} seeds (each seed: its own spirals, initial weights, draws)")
print("space         trials   grid: dev   test  lr values | random: dev   test  lr values |"
      " random vs grid, seeds better/equal/worse: dev  test")
for dims, label in (("2d", "lr, beta2"), ("4d", "lr + 3 more")):
    for n in sizes:
        agg = {}
        for sampler in ("grid", "random"):
            rows = []
            for seed in seeds:
                best, lrs = study(f"{sampler}-{dims}-{n}-s{seed}")
                rows.append((best["dev_accuracy"], best["test_accuracy"], lrs))
                detail.write(f"{dims}\t{n}\t{seed}\t{sampler}\t{best['dev_accuracy']:.4f}\t"
                             f"{best['test_accuracy']:.4f}\t{lrs}\t{best['params']['lr']:.4g}\n")
            agg[sampler] = rows
        mean = lambda s, i: sum(r[i] for r in agg[s]) / len(agg[s])
        lr_values = lambda s: "/".join(sorted({str(r[2]) for r in agg[s]}))
        def tally(i):
            diff = [r[i] - g[i] for g, r in zip(agg["grid"], agg["random"])]
            better, equal = sum(d > 1e-9 for d in diff), sum(abs(d) <= 1e-9 for d in diff)
            return f"{better}/{equal}/{len(diff) - better - equal}"
        print(f"{label:13} {n:6}      {mean('grid', 0):.4f} {mean('grid', 1):.4f} {lr_values('grid'):>9} |"
              f"        {mean('random', 0):.4f} {mean('random', 1):.4f} {lr_values('random'):>9} |"
              f" {tally(0):>8} {tally(1):>8}")
print(f"(per seed: {out}/seeds.tsv)")
PYEOF
echo "reports: ${REPORTS[*]} ($((SECONDS - STARTED)) s)"

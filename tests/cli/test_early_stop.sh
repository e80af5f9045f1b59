#!/bin/bash
# Early stopping (--early-stop N, --monitor, --min-delta) and runs of 0 epochs: the run stops N
# epochs after its best dev epoch, model.safetensors holds that epoch's weights bit for bit,
# summary.json says which epoch and why it stopped; a run killed (kill -9) at several points
# and resumed, or extended with --resume --epochs, ends as the uninterrupted run, byte for
# byte; nabla tune's trials report their best epoch; bad usage exits 2 with one line and
# writes nothing. --epochs 0 saves and evaluates the initial weights, and resumes.
. "$(dirname "$0")/lib.sh"

COMMON=(--data moons --samples 300 --layers 32,32 --lr 0.05 --dev-fraction 0.3 --threads 1)

# metric RUN EPOCH COLUMN: metrics.jsonl's COLUMN at EPOCH.
metric() {
    "$PY" -c 'import json,sys
for l in open(sys.argv[1]):
    j = json.loads(l)
    if j["epoch"] == int(sys.argv[2]): print(repr(j[sys.argv[3]]))' "$1/metrics.jsonl" "$2" "$3"
}

# best_of RUN COLUMN HIGHER: the first epoch with the best COLUMN (HIGHER 1: the largest).
best_of() {
    "$PY" -c 'import json,sys
rows = [json.loads(l) for l in open(sys.argv[1])]
best = None
for r in rows:
    v = r[sys.argv[2]]
    if best is None or (v > best[1] if sys.argv[3] == "1" else v < best[1]): best = (r["epoch"], v)
print(best[0])' "$1/metrics.jsonl" "$2" "$3"
}

# ---- 1. it stops, and keeps the best epoch ----
# stops_at_best NAME PATIENCE MONITOR COLUMN HIGHER ARGS...: trains (with ES_ARGS too), then
# checks the stop epoch, summary.json, the progress lines, and that the model is the one a run of
# exactly best_epoch epochs ends with (bit for bit) and evaluates on the dev split as that
# epoch's line says.
ES_ARGS=()
stops_at_best() {
    local name=$1 patience=$2 monitor=$3 col=$4 higher=$5
    shift 5
    run train "${COMMON[@]}" --epochs 80 --early-stop "$patience" --monitor "$monitor" \
        "${ES_ARGS[@]}" "$@" --out "$name"
    check "$name: exit 0 (stderr: $(head -c 300 "$WORK/stderr"))" [ "$RC" -eq 0 ]
    local best epochs
    best=$(json "$name/summary.json" 'j["best_epoch"]')
    epochs=$(json "$name/summary.json" 'j["epochs"]')
    check "$name: best_epoch is metrics.jsonl's best dev $monitor ($best)" \
        [ "$best" = "$(best_of "$name" "$col" "$higher")" ]
    check "$name: stopped $patience epochs after the best ($epochs, best $best)" \
        [ "$epochs" -eq $((best + patience)) ] && [ "$epochs" -lt 80 ]
    check "$name: summary says it stopped early, on dev $monitor" \
        pytrue "json.load(open('$name/summary.json'))['stopped_early'] is True and json.load(open('$name/summary.json'))['monitor'] == '$monitor'"
    check "$name: best_value is that epoch's dev $monitor" \
        [ "$(json "$name/summary.json" 'repr(j["best_value"])')" = "$(metric "$name" "$best" "$col")" ]
    check "$name: summary's dev figures are the best epoch's" \
        [ "$(json "$name/summary.json" 'repr(j["dev_loss"])')" = "$(metric "$name" "$best" dev_loss)" ]
    check "$name: the progress says where it stops" \
        grep -qx "stopping early: no better dev $monitor for $patience epochs\{0,1\} (best: epoch $best)" "$WORK/stdout"
    check "$name: the best epoch's line is marked" grep -q "^epoch $best/80 .*(best)\$" "$WORK/stdout"
    # The same run for exactly best_epoch epochs: the same weights, byte for byte.
    run train "${COMMON[@]}" --epochs "$best" "$@" --out "$name.ref"
    check "$name: model.safetensors is epoch $best's weights" \
        same_tensors "$name/model.safetensors" "$name.ref/model.safetensors" 0
    run eval --model "$name/model.safetensors" --data moons --samples 300 --split dev --dev-fraction 0.3 --json
    check "$name: eval's dev loss is epoch $best's line" \
        pytrue "abs(json.load(open('$WORK/stdout'))['loss'] - $(metric "$name" "$best" dev_loss)) <= 1e-6"
    run report "$name" --out "$name.html"
    check "$name: nabla report reads the run (stderr: $(head -c 300 "$WORK/stderr"))" [ "$RC" -eq 0 ]
}

stops_at_best es_loss 5 loss dev_loss 0
stops_at_best es_acc 3 accuracy dev_accuracy 1
stops_at_best es_bn 2 loss dev_loss 0 --batchnorm --batch-size 32
ES_ARGS=(--min-delta 0.0001)
stops_at_best es_delta 4 loss dev_loss 0 --lr 0.03
ES_ARGS=()

# summary.json written by hand: a best epoch the metrics do not have is refused by readers.
cp -r es_loss es_bad
"$PY" -c 'import json; j = json.load(open("es_bad/summary.json")); j["best_epoch"] = 79; json.dump(j, open("es_bad/summary.json", "w"))'
run report es_bad --out es_bad.html
check "report refuses a best_epoch metrics.jsonl does not have" grep -q '"best_epoch" is 79' "$WORK/stderr"

# ---- 2. kill -9 at several points, then --resume: the uninterrupted run's model ----
# strace kills the run at its Nth rename (each checkpoint renames three times; --checkpoint-every
# 2 gives one in every epoch of 4 steps): before any best epoch is known, in the middle, and at
# the checkpoint of the stop itself. Wherever the kill lands, the resumed run must end as the
# uninterrupted one.
if command -v strace >/dev/null; then
    run train "${COMMON[@]}" --epochs 80 --early-stop 5 --checkpoint-every 2 --quiet --out es_whole
    ASAN_OPTIONS=$TRACED_ASAN strace -f -qq -o renames.log -e trace=rename \
        "$NABLA" train "${COMMON[@]}" --epochs 80 --early-stop 5 --checkpoint-every 2 --quiet \
        --out es_count >/dev/null 2>&1
    total=$(grep -c 'rename(' renames.log)
    for nth in 4 25 60 $((total - 4)); do
        # (In a subshell, so that the shell's "Killed" goes to /dev/null too.)
        (ASAN_OPTIONS=$TRACED_ASAN strace -f -qq -o /dev/null -e trace=rename \
            -e inject=rename:signal=SIGKILL:when="$nth" \
            "$NABLA" train "${COMMON[@]}" --epochs 80 --early-stop 5 --checkpoint-every 2 --quiet \
            --out "es_kill$nth" || true) >/dev/null 2>&1
        check "kill -9 at rename $nth of $total: no summary before the resume" absent "es_kill$nth/summary.json"
        run train --resume "es_kill$nth" --quiet
        check "kill -9 at rename $nth: resume exits 0 (stderr: $(head -c 300 "$WORK/stderr"))" [ "$RC" -eq 0 ]
        check "kill -9 at rename $nth: the uninterrupted run's model, byte for byte" \
            cmp -s "es_kill$nth/model.safetensors" es_whole/model.safetensors
        check "kill -9 at rename $nth: the same best epoch and stop" \
            pytrue "all(json.load(open('es_kill$nth/summary.json'))[k] == json.load(open('es_whole/summary.json'))[k] for k in ('best_epoch', 'best_value', 'stopped_early', 'epochs', 'dev_loss', 'test_loss'))"
    done
else
    fail "strace is missing: kill -9 and resume of an early-stopping run are not tested"
fi

# ---- 3. extended with --resume --epochs: the run started with the longer --epochs ----
for first in 3 12; do
    run train "${COMMON[@]}" --epochs "$first" --early-stop 5 --quiet --out "es_ext$first"
    run train --resume "es_ext$first" --epochs 80 --quiet
    check "extended from $first epochs: exit 0" [ "$RC" -eq 0 ]
    check "extended from $first epochs: the 80-epoch run's model" \
        cmp -s "es_ext$first/model.safetensors" es_loss/model.safetensors
done
# A run that stopped early, extended: it stays stopped, with the same model.
run train --resume es_loss --epochs 90 --quiet
check "a stopped run extended: exit 0" [ "$RC" -eq 0 ]
check "a stopped run extended: still its best epoch's model" same_tensors es_loss/model.safetensors es_loss.ref/model.safetensors 0
check "a stopped run extended: still stopped early" pytrue "json.load(open('es_loss/summary.json'))['stopped_early'] is True"

# ---- 4. bad usage: exit 2, one line, nothing written ----
refused() {
    local desc=$1 words=$2
    shift 2
    expect_exit 2 "$desc" train "$@" --out bad
    check "$desc: one line saying '$words' ($(head -c 300 "$WORK/stderr"))" \
        one_line_error "nabla train: " && grep -q -- "$words" "$WORK/stderr"
    check "$desc: nothing written" absent bad
}
refused "no dev split" "give --dev-fraction" --data moons --early-stop 3
refused "dev split 0" "give --dev-fraction" --data moons --early-stop 3 --dev-fraction 0
refused "--early-stop 0" "--early-stop must be > 0" --data moons --dev-fraction 0.2 --early-stop 0
refused "--early-stop -2" "--early-stop" --data moons --dev-fraction 0.2 --early-stop -2
refused "--early-stop 1.5" "--early-stop" --data moons --dev-fraction 0.2 --early-stop 1.5
refused "--early-stop x" "--early-stop" --data moons --dev-fraction 0.2 --early-stop x
refused "unknown --monitor" "unknown --monitor 'dev_los'" --data moons --dev-fraction 0.2 --early-stop 3 --monitor dev_los
refused "--monitor r2 on a classifier" "has no r2 to monitor (it has: loss, accuracy)" \
    --data moons --dev-fraction 0.2 --early-stop 3 --monitor r2
refused "--monitor macro_f1 on a classifier" "has no macro_f1" --data moons --dev-fraction 0.2 --early-stop 3 --monitor macro_f1
refused "--monitor without --early-stop" "--monitor goes with --early-stop" --data moons --dev-fraction 0.2 --monitor accuracy
refused "--min-delta without --early-stop" "--min-delta goes with --early-stop" --data moons --dev-fraction 0.2 --min-delta 0.1
refused "--min-delta -1" "--min-delta must be >= 0" --data moons --dev-fraction 0.2 --early-stop 3 --min-delta -1
refused "--min-delta inf" "--min-delta must be a finite number" --data moons --dev-fraction 0.2 --early-stop 3 --min-delta inf
refused "--epochs -1" "--epochs must be >= 0" --data moons --epochs -1
refused "--epochs 0 with cosine and no horizon" "give --decay-epochs" --data moons --epochs 0 --lr-decay cosine
expect_exit 2 "--early-stop with --resume" train --resume es_loss --early-stop 2
check "--early-stop with --resume: refused as a fixed option" grep -q "cannot be given with --resume" "$WORK/stderr"
run train --help
check "--help lists --early-stop, --monitor and --min-delta" \
    grep -q -- "--early-stop N" "$WORK/stdout" && grep -q -- "--monitor M" "$WORK/stdout" && grep -q -- "--min-delta X" "$WORK/stdout"

# ---- 5. --epochs 0: the initial weights, saved and evaluated ----
run train "${COMMON[@]}" --epochs 0 --out e0
check "--epochs 0: exit 0 (stderr: $(head -c 300 "$WORK/stderr"))" [ "$RC" -eq 0 ]
check "--epochs 0: no epoch in metrics.jsonl" [ "$(lines e0/metrics.jsonl)" -eq 0 ]
check "--epochs 0: summary of no steps, with the initial weights' dev and test figures" \
    pytrue "(lambda j: j['epochs'] == 0 and j['steps'] == 0 and j['train_loss'] is None and j['dev_loss'] > 0 and j['test_accuracy'] is not None)(json.load(open('e0/summary.json')))"
run train "${COMMON[@]}" --epochs 0 --out e0b --init-weights e0/model.safetensors
check "--epochs 0 --init-weights F: model.safetensors is F's weights" \
    same_tensors e0b/model.safetensors e0/model.safetensors 0
run eval --model e0/model.safetensors --data moons --samples 300 --split dev --dev-fraction 0.3 --json
check "--epochs 0: eval reads the model, dev loss as the summary's" \
    pytrue "abs(json.load(open('$WORK/stdout'))['loss'] - json.load(open('e0/summary.json'))['dev_loss']) <= 1e-6"
run report e0 --out e0.html
check "--epochs 0: nabla report reads the run (stderr: $(head -c 300 "$WORK/stderr"))" [ "$RC" -eq 0 ]
check "--epochs 0: a checkpoint to resume from" [ -f e0/checkpoint.safetensors ]
run train --resume e0 --epochs 4 --quiet
check "--epochs 0 extended to 4: exit 0" [ "$RC" -eq 0 ]
run train "${COMMON[@]}" --epochs 4 --quiet --out e4
check "--epochs 0 extended to 4: the 4-epoch run's model" cmp -s e0/model.safetensors e4/model.safetensors
run train "${COMMON[@]}" --epochs 0 --early-stop 2 --out e0es
check "--epochs 0 with --early-stop: exit 0, no best epoch" \
    pytrue "(lambda j: j['best_epoch'] is None and j['stopped_early'] is False)(json.load(open('e0es/summary.json')))"
run train "${COMMON[@]}" --epochs 0 --lr-decay cosine --decay-epochs 4 --quiet --out e0cos
run train --resume e0cos --epochs 4 --quiet
run train "${COMMON[@]}" --epochs 4 --lr-decay cosine --quiet --out e4cos
check "--epochs 0 --decay-epochs 4 extended to 4: the 4-epoch cosine run" cmp -s e0cos/model.safetensors e4cos/model.safetensors

# ---- 6. nabla tune: a trial's result is its best epoch's ----
run tune --data moons --samples 300 --epochs 30 --early-stop 3 --trials 3 --workers 2 --threads 1 --quiet --out study
check "tune with --early-stop: exit 0 (stderr: $(head -c 300 "$WORK/stderr"))" [ "$RC" -eq 0 ]
for t in 0 1 2; do
    d=study/trials/$t
    b=$(json "$d/summary.json" 'j["best_epoch"]')
    check "trial $t: the journal's dev accuracy is its best epoch's ($b)" \
        pytrue "[e for e in map(json.loads, open('study/journal.jsonl')) if e.get('trial') == $t and e.get('state') == 'complete'][0]['dev_accuracy'] == $(metric "$d" "$b" dev_accuracy)"
done
# The finished study reads back: its trials ended early, with their best epoch's figures.
check "tune with --early-stop: some trial stopped before its 30 epochs" \
    pytrue "any(e['epochs'] < 30 for e in map(json.loads, open('study/journal.jsonl')) if e.get('state') == 'complete')"
run tune --data moons --samples 300 --epochs 30 --early-stop 3 --trials 3 --workers 2 --threads 1 --quiet --out study
check "the same tune command again: the study reads back, exit 0 (stderr: $(head -c 300 "$WORK/stderr"))" [ "$RC" -eq 0 ]
run report study --out study.html
check "report of the study: exit 0 (stderr: $(head -c 300 "$WORK/stderr"))" [ "$RC" -eq 0 ]
run tune --data moons --samples 300 --epochs 0 --trials 2 --workers 1 --threads 1 --quiet --out study0
check "tune --epochs 0: exit 0, trials of 0 epochs" \
    pytrue "[e['epochs'] for e in map(json.loads, open('study0/journal.jsonl')) if e.get('state') == 'complete'] == [0, 0]"

finish

#!/bin/bash
# nabla tune end to end: bad usage, --dry-run, a whole study and its files, results that do not
# depend on --workers, a study killed (-9) at random moments and rerun until it ends (exactly N
# trials, none twice, the same results as an uninterrupted study), SIGINT, coarse to fine, the
# grid, the lock, and the command in best.json training the best model again bit for bit.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

STARTED=$SECONDS
SPACE="lr=log(1e-3,3e-1); beta=1-log(0.5,0.99); units=choice(64,128); depth=int(1,2); batchnorm=choice(on,off)"
# 8 trials of 3 epochs, pruned by ASHA, about 1.5 s with 2 workers; checkpoints come often, so
# kill -9 finds trials in the middle of writing them too.
STUDY=(tune --data spirals --samples 100000 --epochs 3 --batch-size 40 --checkpoint-every 100
       --space "$SPACE" --trials 8 --prune asha --seed 3 --quiet)

differ() { ! cmp -s "$1" "$2"; }

# finished DIR: how many trials the journal has finished.
finished() { study_outcome "$1" | wc -l; }

# ---- usage errors: exit 2, one line, nothing written -----------------------------------------
expect_exit 2 "no --out" tune --trials 2
check "no --out: says so" grep -q -- "--out STUDY is required" "$WORK/stderr"
expect_exit 2 "malformed space" tune --space "lr=log(1e-4,1e-1); beta=1-lg(0.9,0.999)" --out s0
check "malformed space: points at the part" grep -q '"beta=1-lg(0.9,0.999)"' "$WORK/stderr"
expect_exit 2 "log range with 0" tune --space "lr=log(0,1)" --out s0
check "log range: names the part" grep -q '"lr=log(0,1)"' "$WORK/stderr"
expect_exit 2 "unknown train option in space" tune --space "frobs=uniform(0,1)" --out s0
check "unknown option: named" grep -q "frobs" "$WORK/stderr"
expect_exit 2 "searched and fixed" tune --lr 0.1 --space "lr=log(1e-3,1e-1)" --out s0
check "searched and fixed: says so" grep -q "both held fixed and searched" "$WORK/stderr"
expect_exit 2 "a flag needs on/off" tune --space "batchnorm=uniform(0,1)" --out s0
expect_exit 2 "a value train refuses" tune --space "beta=uniform(0.5,1.5)" --out s0
check "refused value: named" grep -q "beta=1.5" "$WORK/stderr"
expect_exit 2 "decay-rate without a decay" tune --space "decay-rate=log(0.1,1)" --out s0
expect_exit 2 "data cannot be searched" tune --space "data=choice(moons,circles)" --out s0
expect_exit 2 "--resume is not for tune" tune --resume x --out s0
expect_exit 2 "unknown option" tune --frobnicate --out s0
expect_exit 2 "bad sampler" tune --sampler sobol --out s0
expect_exit 2 "bad pruner" tune --prune hyperband --out s0
expect_exit 2 "dev fraction 0" tune --dev-fraction 0 --out s0
expect_exit 2 "too many rounds" tune --trials 4 --rounds 3 --out s0
expect_exit 2 "bad fixed train option" tune --lr -1 --out s0
check "nothing written by usage errors" absent s0
expect_exit 1 "missing data" tune --data no/such/file.csv --out s0
check "missing data: nothing written" absent s0

# ---- help and dry run -------------------------------------------------------------------------
expect_exit 0 "help" tune --help
check "help shows the default space" grep -q "lr=log(1e-4,1e-1)" "$WORK/stdout"
expect_exit 0 "help via nabla help tune" help tune
expect_exit 0 "dry run" tune --dry-run --trials 7 --space "$SPACE"
check "dry run: 7 configurations" [ "$(grep -c '^trial ' "$WORK/stdout")" -eq 7 ]
check "dry run: values in range" pytrue "all(1e-3 <= float(l.split('lr=')[1].split()[0]) <= 3e-1 for l in open('$WORK/stdout') if l.startswith('trial'))"
cp "$WORK/stdout" dry1
run tune --dry-run --trials 7 --space "$SPACE"
check "dry run: the same seed gives the same trials" cmp -s dry1 "$WORK/stdout"
run tune --dry-run --trials 7 --space "$SPACE" --seed 9
check "dry run: another seed, other trials" differ dry1 "$WORK/stdout"
expect_exit 0 "grid dry run" tune --dry-run --sampler grid --trials 9 --space "lr=log(1e-4,1e-1); beta=uniform(0.5,0.9)"
check "grid: 3 values of lr" [ "$(grep -o 'lr=[^ ]*' "$WORK/stdout" | sort -u | wc -l)" -eq 3 ]
check "grid: 3 values of beta" [ "$(grep -o 'beta=[^ ]*' "$WORK/stdout" | sort -u | wc -l)" -eq 3 ]
run tune --dry-run --trials 9 --space "lr=log(1e-4,1e-1); beta=uniform(0.5,0.9)"
check "random: 9 values of lr" [ "$(grep -o 'lr=[^ ]*' "$WORK/stdout" | sort -u | wc -l)" -eq 9 ]
check "dry run: nothing written" absent runs

# ---- a whole study: one worker, then two ------------------------------------------------------
expect_exit 0 "study, 1 worker" "${STUDY[@]}" --workers 1 --out w1
check "1 worker: 8 trials finished" [ "$(finished w1)" -eq 8 ]
check "journal: valid JSON lines with the fields" "$PY" -c '
import json, sys
evs = [json.loads(l) for l in open("w1/journal.jsonl")]
assert all("trial" in e and "state" in e and "params" in e for e in evs if "trial" in e and "epoch" not in e)
fin = [e for e in evs if e.get("state") in ("complete", "pruned", "failed")]
assert all(k in e for e in fin for k in ("dev_accuracy", "dev_loss", "epochs", "seconds"))
assert any(e["state"] == "pruned" for e in fin), "ASHA pruned nothing"
assert all(e["epochs"] < 3 for e in fin if e["state"] == "pruned")
'
check "leaderboard printed" grep -q "^rank" "$WORK/stdout"
cp "$WORK/stdout" w1.out
check "leaderboard: every trial once; complete, then pruned, then failed; dev accuracy down; ties by number" "$PY" - <<'EOF'
import json
lines = open("w1.out").read().split("\n")
head = next(i for i, l in enumerate(lines) if l.startswith("rank"))
rows = []
for l in lines[head + 1:]:
    if not l.strip():
        break
    f = l.split()
    rows.append((int(f[1]), f[2], float(f[3])))
final = {}
for l in open("w1/journal.jsonl"):
    e = json.loads(l)
    if e.get("state") in ("complete", "pruned", "failed"):
        final[e["trial"]] = e
assert sorted(t for t, _, _ in rows) == sorted(final), rows
group = {"complete": 0, "pruned": 1, "failed": 2}
assert all(final[t]["state"] == state for t, state, _ in rows), rows
# ties of the objective: the lower dev loss first, then the lower trial number
key = [(group[state], -final[t]["dev_accuracy"],
        float("inf") if final[t]["dev_loss"] is None else final[t]["dev_loss"], t)
       for t, state, _ in rows]
assert key == sorted(key), rows
EOF
check "importance printed" grep -q "what mattered" "$WORK/stdout"
check "best.json" pytrue "(lambda j: j['trial'] is not None and 0 < j['dev_accuracy'] <= 1 and 0 < j['test_accuracy'] <= 1 and j['command'].startswith('nabla train') and set(j['importance']) == {'lr','beta','units','depth','batchnorm'})(json.load(open('w1/best.json')))"
check "best is the best complete trial" pytrue "(lambda j, evs: j['dev_accuracy'] == max(e['dev_accuracy'] for e in evs if e.get('state') == 'complete'))(json.load(open('w1/best.json')), [json.loads(l) for l in open('w1/journal.jsonl')])"
check "trials never saw a test set" pytrue "all(json.load(open('w1/trials/%d/config.json' % i))['test_samples'] == 0 for i in range(8))"

expect_exit 0 "study, 2 workers" "${STUDY[@]}" --workers 2 --out w2
check "workers 1 and 2: the same results" diff <(study_outcome w1) <(study_outcome w2)
B=$(json w1/best.json "j['trial']")
check "workers 1 and 2: the same best model" cmp -s "w1/trials/$B/model.safetensors" "w2/trials/$B/model.safetensors"

# The command in best.json trains the best model again, bit for bit.
CMD=$(json w1/best.json "j['command']")
eval "set -- ${CMD#nabla }"
run "$@" --quiet
check "best command runs" [ "$RC" -eq 0 ]
check "best command: the same model" cmp -s "w1/trials/$B/model.safetensors" w1/best/model.safetensors

# Running a finished study again changes nothing.
cp w1/journal.jsonl journal.before
expect_exit 0 "rerun of a finished study" "${STUDY[@]}" --workers 1 --out w1
check "rerun: journal unchanged" cmp -s journal.before w1/journal.jsonl
expect_exit 2 "rerun with other settings" "${STUDY[@]}" --workers 1 --out w1 --trials 9
check "other settings: says which" grep -q "trials" "$WORK/stderr"

# A line cut short by a crash is dropped; any other damage is an error that names the line.
cp -r w1 wd
printf '{"trial":3,"state":"comp' >>wd/journal.jsonl
expect_exit 0 "journal with a torn last line" "${STUDY[@]}" --workers 1 --out wd
check "torn line cut off" cmp -s w1/journal.jsonl wd/journal.jsonl
sed -i '3s/.*/not json/' wd/journal.jsonl
expect_exit 1 "journal with a damaged line" "${STUDY[@]}" --workers 1 --out wd
check "damaged journal: names file and line" grep -q "journal.jsonl:3:" "$WORK/stderr"

# A trial's end is final: the tuner journals nothing of a trial after it (a pruned trial that
# runs ahead until it is killed reports epochs it ignores), so an event after it is damage.
cp -r w1 wp
P=$(json w1/best.json "[json.loads(l)['trial'] for l in open('w1/journal.jsonl') if json.loads(l).get('state') == 'pruned'][0]")
echo "{\"trial\":$P,\"state\":\"running\",\"epoch\":3,\"epochs_planned\":3,\"dev_accuracy\":0.5,\"dev_loss\":1,\"seconds\":1}" >>wp/journal.jsonl
cp wp/journal.jsonl journal.before
expect_exit 1 "an epoch event after a pruned end" "${STUDY[@]}" --workers 1 --out wp
check "an event after the end: names the line" grep -q "wp/journal.jsonl:$(lines wp/journal.jsonl): an event of trial $P after its end" "$WORK/stderr"
check "an event after the end: journal untouched" cmp -s journal.before wp/journal.jsonl

# ---- kill -9 at random moments, then the same command finishes it ----------------------------
# Each run is killed once the journal has 1 to 6 more lines, in the middle of the study however
# fast the machine, 4 times.
KILLS=0
for attempt in 1 2 3 4; do
    want=$(($(lines k/journal.jsonl) + RANDOM % 6 + 1))
    if kill_at_lines k/journal.jsonl "$want" "$NABLA" "${STUDY[@]}" --workers 2 --out k; then
        KILLS=$((KILLS + 1))
    fi
done
check "killed at least twice" [ "$KILLS" -ge 2 ]
expect_exit 0 "killed study: the same command finishes it" "${STUDY[@]}" --workers 2 --out k
check "killed study: exactly 8 trials, none twice, same results" diff <(study_outcome w1) <(study_outcome k)
check "killed study: no trial process left" no_trials_left k

# ---- SIGINT: stops with the checkpoints, the same command continues ---------------------------
"$NABLA" "${STUDY[@]}" --workers 2 --out i >i.out 2>i.err &
pid=$!
sleep 0.5
kill -INT "$pid"
wait "$pid"
rc=$?
check "SIGINT: exit 130 (or finished first)" [ "$rc" -eq 130 -o "$rc" -eq 0 ]
[ "$rc" -eq 130 ] && check "SIGINT: says how to continue" grep -q "same command" i.err
expect_exit 0 "after SIGINT: continues" "${STUDY[@]}" --workers 2 --out i
check "after SIGINT: same results" diff <(study_outcome w1) <(study_outcome i)

# ---- the lock: one tuner per study ------------------------------------------------------------
flock w1/.lock sleep 3 &
sleep 0.3
expect_exit 1 "a locked study" "${STUDY[@]}" --out w1
check "locked: says so" grep -q "w1 is in use by another process" "$WORK/stderr"
wait

# ---- coarse to fine ---------------------------------------------------------------------------
expect_exit 0 "two rounds" tune --data spirals --samples 1000 --epochs 2 --space "lr=log(1e-4,1); beta=uniform(0.1,0.9)" --trials 8 --rounds 2 --quiet --out r2
check "two rounds: 8 trials" [ "$(finished r2)" -eq 8 ]
check "round 2 searched a narrower range inside the first" "$PY" -c '
import json, math
evs = [json.loads(l) for l in open("r2/journal.jsonl")]
space = [e["space"] for e in evs if e.get("round") == 1 and "space" in e]
assert len(space) == 1, space
lo, hi = [float(x) for x in space[0].split("lr=log(")[1].split(")")[0].split(",")]
assert 1e-4 <= lo < hi <= 1 and math.log10(hi / lo) < 4, (lo, hi)
r2 = [e for e in evs if e.get("round") == 1 and "params" in e]
assert len(r2) == 4 and all(lo <= e["params"]["lr"] <= hi for e in r2)
'

# ---- a trial that diverges is failed, and the study goes on -----------------------------------
expect_exit 0 "diverging trials" tune --data spirals --samples 1000 --epochs 2 --optimizer sgd --space "lr=choice(1e30,0.1)" --sampler grid --trials 2 --quiet --out dv
check "diverged: failed with a reason" pytrue "any(e.get('state') == 'failed' and 'diverged' in e.get('reason', '') for e in map(json.loads, open('dv/journal.jsonl')))"

# ---- train --test none ------------------------------------------------------------------------
expect_exit 0 "train --test none" train --data moons --epochs 1 --test none --quiet --out tn
check "--test none: no test set" pytrue "json.load(open('tn/summary.json'))['test_samples'] == 0"

echo "test_tune: $((SECONDS - STARTED)) s, the study killed $KILLS times"
finish

#!/bin/bash
# nabla tune --sampler tpe: usage errors; the same trials whatever --workers, and after kill -9
# and a resume (each trial's configuration depends on the final results of trials 0..i-1-L
# only); the first 10 trials (+ the lag) are the random sampler's, the later ones are not and
# gather near the best trial; the wait for earlier results is measured and journaled;
# study.json, the journal and best.json of a TPE study read back, and damaged ones refused;
# `nabla report` draws it.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

STARTED=$SECONDS
SPACE="lr=log(1e-3,1); units=choice(4,8,16); beta=1-log(0.5,0.99)"
# 14 trials of 3 epochs on 10000 points, pruned by ASHA, under a second with 2 workers;
# checkpoints come often, so kill -9 finds trials in the middle of writing them too. One
# thread a trial (results do not depend on it): two threads spin slowly on a loaded machine.
STUDY=(tune --data moons --samples 10000 --batch-size 40 --epochs 3 --checkpoint-every 100
       --space "$SPACE" --trials 14 --sampler tpe --tpe-lag 1 --prune asha --seed 4 --quiet
       --threads 1)

# starts DIR: every trial's start in journal order: its number and params.
starts() {
    "$PY" -c 'import json, sys
for line in open(sys.argv[1]):
    ev = json.loads(line)
    if "args" in ev:
        print(ev["trial"], json.dumps(ev["params"], sort_keys=True))' "$1/journal.jsonl"
}

# ---- usage errors: exit 2, one line, nothing written -----------------------------------------
expect_exit 2 "--tpe-lag without a sampler" tune --tpe-lag 1 --out u1
check "--tpe-lag without tpe: says so" one_line_error "nabla tune: --tpe-lag goes with --sampler tpe"
expect_exit 2 "--tpe-lag with random" tune --sampler random --tpe-lag 0 --out u1
check "--tpe-lag with random: says so" grep -q -- "--tpe-lag goes with --sampler tpe (the random sampler" "$WORK/stderr"
expect_exit 2 "--tpe-lag with grid, given first" tune --tpe-lag 2 --sampler grid --out u1
check "--tpe-lag with grid: says so" grep -q "the grid sampler learns from no result" "$WORK/stderr"
expect_exit 2 "--tpe-lag negative" tune --sampler tpe --tpe-lag -1 --out u1
check "--tpe-lag negative: says so" one_line_error "nabla tune: --tpe-lag must be at least 0, got -1"
expect_exit 2 "--tpe-lag not a number" tune --sampler tpe --tpe-lag two --out u1
check "--tpe-lag not a number: one line" [ "$(lines "$WORK/stderr")" -eq 1 ]
expect_exit 2 "--tpe-lag without a value" tune --sampler tpe --tpe-lag
expect_exit 2 "--rounds with tpe" tune --sampler tpe --rounds 2 --trials 8 --out u1
check "--rounds with tpe: says why" one_line_error "nabla tune: --rounds 2 with --sampler tpe: TPE narrows the search by itself"
expect_exit 2 "--rounds with tpe, in the other order" tune --rounds 3 --trials 9 --sampler=tpe --out u1
expect_exit 2 "a sampler that does not exist" tune --sampler TPE --out u1
check "bad sampler: lists tpe" grep -q "random, grid or tpe, got 'TPE'" "$WORK/stderr"
check "usage errors: nothing written" [ ! -e u1 ]
expect_exit 0 "--rounds 1 with tpe is no coarse to fine" tune --sampler tpe --rounds 1 --dry-run --trials 3

# ---- --dry-run: the trials known before any result --------------------------------------------
expect_exit 0 "dry run" tune --data moons --space "$SPACE" --trials 14 --sampler tpe --tpe-lag 1 --seed 4 --dry-run
cp "$WORK/stdout" dry.txt
check "dry run: trials 0 to 10 (10 random + the lag)" [ "$(grep -c '^trial ' dry.txt)" -eq 11 ]
check "dry run: says what the others depend on" grep -q "trials 11 to 13 are drawn by TPE from the results of the trials before them: trial i from those of trials 0 to i-2" dry.txt
run tune --data moons --space "$SPACE" --trials 14 --seed 4 --dry-run
check "dry run: the first 11 are the random sampler's" diff <(grep '^trial ' dry.txt) <(head -11 "$WORK/stdout")

# ---- the same trials with 1 and 2 workers ------------------------------------------------------
expect_exit 0 "1 worker" "${STUDY[@]}" --workers 1 --out w1
expect_exit 0 "2 workers" "${STUDY[@]}" --workers 2 --out w2
check "1 and 2 workers: the same trials, in the same order" diff <(starts w1) <(starts w2)
check "1 and 2 workers: the same results" diff <(study_outcome w1) <(study_outcome w2)
check "the study pruned some trials (they count with their epoch)" grep -q '"state":"pruned"' w1/journal.jsonl
check "study.json: the sampler and the lag" pytrue "(lambda j: j['sampler'] == 'tpe' and j['tpe_lag'] == 1)(json.load(open('w1/study.json')))"
check "1 worker never waits" pytrue "json.load(open('w1/best.json'))['waited_seconds'] == 0 and 'waited_seconds' not in open('w1/journal.jsonl').read()"
check "best.json: waited_seconds is the journal's sum" pytrue "abs(json.load(open('w2/best.json'))['waited_seconds'] - sum(e.get('waited_seconds', 0) for e in map(json.loads, open('w2/journal.jsonl')))) < 1e-9"
expect_exit 0 "the same command on a finished study" "${STUDY[@]}" --workers 2 --out w2

# ---- kill -9 at random moments, then the same command finishes it -----------------------------
# Each run is killed once the journal has 1 to 6 more lines (the study has about 50): in the
# middle of the study whatever the machine's speed (under ASan too), 4 times, then finished.
KILLS=0
for attempt in 1 2 3 4; do
    want=$(($(lines k/journal.jsonl) + RANDOM % 6 + 1))
    if kill_at_lines k/journal.jsonl "$want" "$NABLA" "${STUDY[@]}" --workers 2 --out k; then
        KILLS=$((KILLS + 1))
    fi
done
check "killed at least twice" [ "$KILLS" -ge 2 ]
expect_exit 0 "killed study: the same command finishes it" "${STUDY[@]}" --workers 2 --out k
check "killed study: the same trials as uninterrupted" diff <(starts w1) <(starts k)
check "killed study: the same results" diff <(study_outcome w1) <(study_outcome k)
check "killed study: no trial process left" no_trials_left k

# ---- TPE after the startup: not the random sampler's points, near the best trial --------------
# Lag 0: trials 10..13 learn from every trial before them. With this seed, the best of trials
# 0..9 has units=16 and lr 0.22; TPE's trials (unlike the random sampler's) all take units=16
# and an lr within a factor of 4 of it (the range spans 1000). (A fixed seed: the same points
# on every run.)
LEARN=(tune --data moons --epochs 2 --space "$SPACE" --trials 14 --seed 2 --threads 1)
expect_exit 0 "lag 0" "${LEARN[@]}" --sampler tpe --tpe-lag 0 --out l0
check "lag 0: says what waiting cost" grep -q "^waited: [0-9.]* worker-seconds .*(--sampler tpe, --tpe-lag 0): [0-9.]*% of the workers'" "$WORK/stdout"
run "${LEARN[@]}" --dry-run
cp "$WORK/stdout" random.txt
check "after the startup: gathered near the best trial, not the random sampler's" "$PY" - l0 random.txt <<'EOF'
import json, math, sys
evs = [json.loads(l) for l in open(sys.argv[1] + "/journal.jsonl")]
start = {e["trial"]: e["params"] for e in evs if "args" in e}
end = {e["trial"]: e for e in evs if e.get("state") in ("complete", "pruned", "failed")}
text = lambda p: " ".join(f"{k}={p[k]}" for k in ("lr", "units", "beta"))
rnd = [l.split(": ", 1)[1].strip() for l in open(sys.argv[2]) if l.startswith("trial ")]
assert [text(start[t]) for t in range(10)] == rnd[:10], "the startup is the random sampler's"
assert all(text(start[t]) != rnd[t] for t in range(10, 14)), "TPE's trials are its own"
best = max(range(10), key=lambda t: (end[t]["dev_accuracy"], -t))
b = start[best]
assert b["units"] == "16" and abs(math.log10(b["lr"] / 0.22)) < 0.1, b
for t in range(10, 14):
    assert start[t]["units"] == b["units"], (t, start[t])
    assert abs(math.log10(start[t]["lr"] / b["lr"])) < math.log10(4), (t, start[t])
EOF
run "${LEARN[@]}" --out r0
check "a random study says nothing of waiting" eval '! grep -q "^waited" "$WORK/stdout"'
check "a random study: waited_seconds 0" pytrue "json.load(open('r0/best.json'))['waited_seconds'] == 0"

# ---- nabla report of a TPE study ---------------------------------------------------------------
expect_exit 0 "report of a TPE study" report w2 --out w2.html
check "report: a page" [ -s w2.html ]

# ---- study.json, the journal and best.json, damaged --------------------------------------------
set_json() {
    "$PY" -c 'import json, sys
obj = json.load(open(sys.argv[1]))
if sys.argv[3] == "DELETE": del obj[sys.argv[2]]
else: obj[sys.argv[2]] = json.loads(sys.argv[3])
open(sys.argv[1], "w").write(json.dumps(obj, indent="\t") + "\n")' "$@"
}
line_of() { grep -n "\"$2\"" "$1" | head -1 | cut -d: -f1; }
fresh() { rm -rf "$1" && cp -r w2 "$1"; }

expect_exit 2 "resumed with another lag" "${STUDY[@]}" --tpe-lag 2 --out w2
check "another lag: says which setting" grep -q 'tpe_lag is 1 there, 2 now' "$WORK/stderr"
expect_exit 2 "resumed with the random sampler" tune --data moons --samples 30000 --batch-size 40 --epochs 3 --checkpoint-every 100 --space "$SPACE" --trials 14 --prune asha --seed 4 --quiet --out w2
check "another sampler: says which setting" grep -q 'sampler is "tpe" there, "random" now' "$WORK/stderr"

fresh s1 && set_json s1/study.json tpe_lag DELETE
expect_exit 1 "study.json of tpe without tpe_lag" report s1 --out s1.html
check "no tpe_lag: names the file and line" grep -q "s1/study.json:$(line_of s1/study.json sampler): \"sampler\" is tpe, but \"tpe_lag\" is missing" "$WORK/stderr"
fresh s2 && set_json s2/study.json tpe_lag -1
expect_exit 1 "study.json: a negative lag" report s2 --out s2.html
check "negative lag: names the member" grep -q "s2/study.json:$(line_of s2/study.json tpe_lag): \"tpe_lag\"" "$WORK/stderr"
fresh s3 && set_json s3/study.json sampler '"random"'
expect_exit 1 "study.json: a lag for the random sampler" report s3 --out s3.html
check "lag with random: names tpe_lag and why" grep -q "s3/study.json:$(line_of s3/study.json tpe_lag): \"tpe_lag\": --tpe-lag goes with --sampler tpe" "$WORK/stderr"
# Trial 13's start moved before trial 11's end: with lag 1 it learns from trials 0..11.
rm -rf s4 && cp -r w1 s4 && "$PY" -c 'import json
lines = open("s4/journal.jsonl").readlines()
ev = [json.loads(l) for l in lines]
start = next(k for k, e in enumerate(ev) if e["trial"] == 13 and "args" in e)
end = next(k for k, e in enumerate(ev) if e["trial"] == 11 and e["state"] != "running")
lines.insert(end, lines.pop(start))
open("s4/journal.jsonl", "w").writelines(lines)'
expect_exit 1 "journal: a TPE trial started before a result it learns from" report s4 --out s4.html
check "a start before the results it learns from: names the line" grep -q "s4/journal.jsonl:[0-9]*: trial 13 starts before trial 11 ended, whose result its configuration depends on (--sampler tpe, --tpe-lag 1)" "$WORK/stderr"
fresh s5 && set_json s5/best.json waited_seconds 99999
expect_exit 1 "best.json: another waited_seconds" report s5 --out s5.html
check "waited_seconds: names the line" grep -q "s5/best.json:$(line_of s5/best.json waited_seconds): \"waited_seconds\" is 99999, but the trials of journal.jsonl waited" "$WORK/stderr"
fresh s6 && set_json s6/best.json waited_seconds -1
expect_exit 1 "best.json: a negative waited_seconds" report s6 --out s6.html
fresh s7 && sed -i '0,/"args"/s/"params":\({[^}]*}\),/"params":\1,"waited_seconds":-2,/' s7/journal.jsonl
expect_exit 1 "journal: a negative wait" report s7 --out s7.html
check "negative wait: names the line" grep -q "s7/journal.jsonl:1: \"waited_seconds\" is -2: it cannot be negative" "$WORK/stderr"

echo "test_tune_tpe: $((SECONDS - STARTED)) s, the study killed $KILLS times"
finish

#!/bin/bash
# nabla tune --objective: a study ranked, pruned and reported by a dev metric of its task other
# than accuracy. Usage errors (a metric the task does not have, an unknown one, dev loss with the
# loss searched, the task searched); a classification study of dev loss (lower is better): the
# pruner's decisions, the leaderboard's order, best.json and the trials' summary.json, the
# report page; the same study killed (-9) at random moments and resumed; other settings refused;
# a study.json and best.json from before objectives read as studies of dev accuracy; damaged
# objective values refused with the file and the line; a regression study of dev RMSE and of
# R² (higher is better), and the default objective of a regression study (dev loss).
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

STARTED=$SECONDS
SPACE="lr=log(1e-4,3e-1); units=choice(8,64)"
# 12 trials of 3 epochs on a small spiral set, pruned by the median: a second or two.
LOSS_STUDY=(tune --data spirals --samples 1000 --epochs 3 --checkpoint-every 5 --space "$SPACE"
            --trials 12 --prune median --objective loss --seed 2 --quiet)

# outcome DIR KEY: one line per finished trial (trial, state, the objective KEY, epochs, params).
outcome() {
    "$PY" - "$1/journal.jsonl" "$2" <<'EOF'
import json, sys
final = {}
for line in open(sys.argv[1]):
    ev = json.loads(line)
    if ev.get("state") in ("complete", "pruned", "failed"):
        assert ev["trial"] not in final, ("finished twice", ev["trial"])
        final[ev["trial"]] = ev
for t in sorted(final):
    ev = final[t]
    print(t, ev["state"], ev[sys.argv[2]], ev["epochs"], json.dumps(ev["params"], sort_keys=True))
EOF
}

# leaderboard_ok OUT DIR KEY DIRECTION: the leaderboard printed in OUT (its first 10 rows) is
# the trials of study DIR in order: complete trials first, then pruned, then failed, each group
# by the objective KEY (DIRECTION 1: higher first, -1: lower first), ties by number; and its
# values are the journal's.
leaderboard_ok() {
    "$PY" - "$@" <<'EOF'
import json, sys
out, study, key, direction = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
lines = open(out).read().split("\n")
head = next(i for i, l in enumerate(lines) if l.startswith("rank"))
rows = []
for l in lines[head + 1:]:
    if not l.strip() or l.strip().startswith("("):
        break
    f = l.split()
    rows.append((int(f[1]), f[2], None if f[3] == "-" else float(f[3])))
final = {}
for l in open(study + "/journal.jsonl"):
    e = json.loads(l)
    if e.get("state") in ("complete", "pruned", "failed"):
        final[e["trial"]] = e
group = {"complete": 0, "pruned": 1, "failed": 2}
key_of = lambda t: (group[final[t]["state"]],
                    float("inf") if final[t][key] is None else -direction * final[t][key],
                    float("inf") if final[t]["dev_loss"] is None else final[t]["dev_loss"], t)
want = sorted(final, key=key_of)[:10]
assert [t for t, _, _ in rows] == want, (rows, want)
assert all(final[t]["state"] == state for t, state, _ in rows), rows
assert all(v is None or abs(v - final[t][key]) < 5e-5 for t, _, v in rows), rows
EOF
}

# median_ok DIR KEY: every decision of the median pruner in study DIR went the objective KEY's
# way (lower is better): trial t was stopped after epoch e (before its last) exactly when its
# value was above the median of the values trials 0..t-1 reported for epoch e, once 5 had.
median_ok() {
    "$PY" - "$1/journal.jsonl" "$2" <<'EOF'
import json, statistics, sys
key = sys.argv[2]
reported, ends = {}, {}
for l in open(sys.argv[1]):
    e = json.loads(l)
    if "epoch" in e:
        reported.setdefault(e["trial"], {})[e["epoch"]] = (e[key], e["epochs_planned"])
    elif e.get("state") in ("complete", "pruned", "failed"):
        ends[e["trial"]] = e
decisions = pruned = 0
for t in sorted(ends):
    stop_at = ends[t]["epochs"] if ends[t]["state"] == "pruned" else None
    for e, (value, planned) in sorted(reported.get(t, {}).items()):
        if e >= planned or (stop_at is not None and e > stop_at):
            continue
        others = [reported[u][e][0] for u in range(t) if e in reported.get(u, {})]
        if len(others) < 5:
            assert stop_at != e, ("pruned without 5 others", t, e)
            continue
        decisions += 1
        should = value > statistics.median(others)
        assert should == (stop_at == e), (t, e, value, statistics.median(others), stop_at)
        pruned += should
assert decisions >= 5 and pruned >= 1, (decisions, pruned)
EOF
}

# best_ok DIR KEY DIRECTION: best.json names the objective and the best complete trial (by KEY,
# DIRECTION as above), with the values of that trial's own summary.json.
best_ok() {
    "$PY" - "$@" <<'EOF'
import json, sys
study, key, direction = sys.argv[1], sys.argv[2], int(sys.argv[3])
best = json.load(open(study + "/best.json"))
study_json = json.load(open(study + "/study.json"))
assert best["objective"] == study_json["objective"] == key[len("dev_"):], (best, study_json)
ends = [json.loads(l) for l in open(study + "/journal.jsonl")]
complete = {e["trial"]: e for e in ends if e.get("state") == "complete"}
for t, e in complete.items():
    summary = json.load(open("%s/trials/%d/summary.json" % (study, t)))
    assert summary[key] == e[key] and summary["dev_loss"] == e["dev_loss"], (t, summary, e)
want = sorted(complete, key=lambda t: (-direction * complete[t][key], complete[t]["dev_loss"],
                                        t))[0]
assert best["trial"] == want, (best["trial"], want)
summary = json.load(open("%s/trials/%d/summary.json" % (study, want)))
for k in (key, "dev_loss", "dev_accuracy", "epochs"):
    assert best[k] == summary[k], (k, best[k], summary[k])
assert best["command"].startswith("nabla train "), best["command"]
EOF
}

# ---- usage errors: exit 2, one line naming what the task has, nothing written ----------------
expect_exit 2 "r2 on a classifier" tune --data moons --objective r2 --trials 2 --out s0
check "r2 on a classifier: one line, the metrics it has" one_line_error "nabla tune: --objective r2: a classification model has no dev r2; its dev metrics: loss, accuracy"
expect_exit 2 "dev_rmse on a classifier" tune --data moons --task classification --objective dev_rmse --out s0
check "dev_rmse: names the metrics" grep -q "has no dev rmse; its dev metrics: loss, accuracy" "$WORK/stderr"
expect_exit 2 "micro_f1 on a classifier" tune --data moons --objective micro_f1 --out s0
expect_exit 2 "accuracy for regression" tune --task regression --data moons --objective accuracy --out s0
check "accuracy for regression: the regression metrics" grep -q "a regression model has no dev accuracy; its dev metrics: loss, mse, rmse, mae, r2" "$WORK/stderr"
expect_exit 2 "macro_f1 for regression" tune --task regression --data moons --objective macro_f1 --out s0
expect_exit 2 "r2 for multilabel" tune --task multilabel --data moons --objective r2 --out s0
check "r2 for multilabel: the multilabel metrics" grep -q "its dev metrics: loss, accuracy, micro_f1, macro_f1" "$WORK/stderr"
expect_exit 2 "an unknown metric" tune --data moons --objective f1 --out s0
check "unknown metric: one line, every name" one_line_error "nabla tune: --objective expects a dev metric (loss, accuracy, mse, rmse, mae, r2, micro_f1, macro_f1; or dev_loss"
expect_exit 2 "a test metric" tune --data moons --objective test_loss --out s0
expect_exit 2 "an empty metric" tune --data moons --objective "" --out s0
expect_exit 2 "dev loss with the loss searched (the default of regression)" tune --task regression --data moons --space "loss=choice(mse,l1)" --out s0
check "loss searched: says to give --objective" grep -q "searches loss, but the objective is dev loss.*give --objective" "$WORK/stderr"
expect_exit 2 "dev loss with the loss searched (given)" tune --task regression --data moons --space "loss=choice(mse,huber)" --objective dev_loss --out s0
expect_exit 2 "the task searched" tune --data moons --space "task=choice(classification,regression)" --out s0
check "task searched: says why" grep -q "task cannot be searched" "$WORK/stderr"
check "usage errors: nothing written" absent s0
# Spellings that are accepted: the metric's name, with or without dev_.
expect_exit 0 "dry run, --objective loss" tune --data moons --objective loss --dry-run --trials 2
expect_exit 0 "dry run, --objective dev_accuracy" tune --data moons --objective dev_accuracy --dry-run --trials 2
expect_exit 0 "dry run, regression, --objective dev_r2" tune --task regression --data moons --objective dev_r2 --dry-run --trials 2 --space "lr=log(1e-3,1e-1)"
expect_exit 0 "dry run, regression, a loss searched with --objective rmse" tune --task regression --data moons --objective rmse --dry-run --trials 2 --space "loss=choice(mse,l1)"

# ---- a classification study of dev loss: lower is better --------------------------------------
expect_exit 0 "loss study" "${LOSS_STUDY[@]}" --workers 2 --out cl
cp "$WORK/stdout" cl.out
check "loss study: study.json names the objective" pytrue "json.load(open('cl/study.json'))['objective'] == 'loss'"
check "loss study: 12 trials finished" [ "$(outcome cl dev_loss | wc -l)" -eq 12 ]
check "loss study: the median pruner stopped trials whose dev loss was above the median, and only those" median_ok cl dev_loss
check "loss study: leaderboard by dev loss, lowest first" leaderboard_ok cl.out cl dev_loss -1
check "loss study: the leaderboard's column is dev loss" grep -q "^rank  trial  state     dev loss  epochs" cl.out
check "loss study: best.json is the trial of lowest dev loss, as its summary.json says" best_ok cl dev_loss -1
check "loss study: best.json has the test loss and accuracy" pytrue "(lambda j: j['test_loss'] > 0 and 0 < j['test_accuracy'] <= 1)(json.load(open('cl/best.json')))"
check "loss study: the summary line" grep -q "^best: trial $(json cl/best.json "j['trial']"), dev loss [0-9.]*, test loss [0-9.]*$" cl.out
check "loss study: the journal has no member but dev_loss for it" pytrue "all(not any(k.startswith('dev_') and k not in ('dev_accuracy', 'dev_loss') for k in json.loads(l)) for l in open('cl/journal.jsonl'))"
expect_exit 0 "loss study: report" report cl
check "report: charts of dev loss" pytrue "(lambda h: 'Dev loss against lr' in h and 'Best dev loss so far' in h and 'Dev loss per epoch, every trial' in h and 'share of the variance of dev loss' in h and 'Dev accuracy' not in h)(open('cl/report.html').read())"
check "report: the best trial's table shows the dev and test loss" pytrue "'<th>dev loss</th><th>test loss</th>' in open('cl/report.html').read()"

# The same study on one worker: the same decisions and results.
expect_exit 0 "loss study, 1 worker" "${LOSS_STUDY[@]}" --workers 1 --out cl1
check "loss study: workers 1 and 2, the same results" diff <(outcome cl dev_loss) <(outcome cl1 dev_loss)

# Coarse to fine narrows to the trials of lowest dev loss: the two best of round 0 inside round
# 1's range of lr, the worst outside it.
expect_exit 0 "loss study in two rounds" tune --data spirals --samples 1000 --epochs 2 --space "lr=log(1e-4,1); units=choice(8,64)" --trials 12 --rounds 2 --objective loss --seed 5 --quiet --out rn
check "two rounds: round 1 narrowed around the lowest dev losses of round 0" "$PY" - <<'EOF'
import json
evs = [json.loads(l) for l in open("rn/journal.jsonl")]
space = [e["space"] for e in evs if e.get("round") == 1 and "space" in e]
assert len(space) == 1, space
lo, hi = [float(x) for x in space[0].split("lr=log(")[1].split(")")[0].split(",")]
ends = {e["trial"]: e for e in evs if e.get("state") == "complete"}
first = sorted((t for t in ends if t < 6), key=lambda t: (ends[t]["dev_loss"], t))
assert len(first) >= 4, first
assert all(lo <= ends[t]["params"]["lr"] <= hi for t in first[:2]), (lo, hi, first)
assert not lo <= ends[first[-1]]["params"]["lr"] <= hi, (lo, hi, first)
EOF

# Another objective on the same study is another study.
cp cl/journal.jsonl journal.before
expect_exit 2 "loss study: continued with --objective accuracy" "${LOSS_STUDY[@]/loss/accuracy}" --out cl
check "other objective: says which setting" grep -q 'objective is "loss" there, "accuracy" now' "$WORK/stderr"
expect_exit 2 "loss study: continued without --objective" "${LOSS_STUDY[@]:0:15}" --seed 2 --quiet --out cl
check "loss study: journal untouched" cmp -s journal.before cl/journal.jsonl
expect_exit 0 "loss study: rerun with --objective dev_loss is the same study" "${LOSS_STUDY[@]/loss/dev_loss}" --out cl
check "rerun: journal untouched" cmp -s journal.before cl/journal.jsonl

# ---- killed at random moments, then the same command finishes it ------------------------------
# Each run is killed once the journal has 1 to 8 more lines (the study has about 60), in the
# middle of the study however fast the machine (the whole study can take 0.2 s), 3 times.
KILLS=0
for attempt in 1 2 3; do
    want=$(($(lines k/journal.jsonl) + RANDOM % 8 + 1))
    if kill_at_lines k/journal.jsonl "$want" "$NABLA" "${LOSS_STUDY[@]}" --workers 2 --out k; then
        KILLS=$((KILLS + 1))
    fi
done
check "killed at least once" [ "$KILLS" -ge 1 ]
expect_exit 0 "killed loss study: the same command finishes it" "${LOSS_STUDY[@]}" --workers 2 --out k
check "killed loss study: exactly the uninterrupted study's trials" diff <(outcome cl dev_loss) <(outcome k dev_loss)
check "killed loss study: the same best.json" pytrue "(lambda a, b: all(a[k] == b[k] for k in ('objective', 'trial', 'params', 'dev_loss', 'dev_accuracy', 'test_loss', 'importance')))(json.load(open('cl/best.json')), json.load(open('k/best.json')))"
check "killed loss study: no trial process left" no_trials_left k

# ---- studies from before objectives: dev accuracy ---------------------------------------------
ACC_STUDY=(tune --data moons --epochs 2 --space "lr=log(1e-3,1e-1)" --trials 4 --seed 1 --quiet)
expect_exit 0 "accuracy study" "${ACC_STUDY[@]}" --out acc
check "accuracy study: study.json names accuracy" pytrue "json.load(open('acc/study.json'))['objective'] == 'accuracy'"
check "accuracy study: best.json of the highest dev accuracy" best_ok acc dev_accuracy 1
check "accuracy study: the summary line as before" grep -q "^best: trial [0-9]*, dev accuracy [0-9.]*, test accuracy [0-9.]*$" "$WORK/stdout"
cp -r acc old
"$PY" - old <<'EOF'
import json, sys
for name in ("study.json", "best.json"):
    path = "%s/%s" % (sys.argv[1], name)
    j = json.load(open(path))
    del j["objective"]
    json.dump(j, open(path, "w"), indent="\t")
EOF
cp old/journal.jsonl journal.before
expect_exit 0 "a study.json without an objective: the same command continues it" "${ACC_STUDY[@]}" --out old
check "old study: journal untouched" cmp -s journal.before old/journal.jsonl
cp old/study.json study.before
"$PY" -c "import json; j = json.load(open('old/best.json')); j.pop('objective', None); json.dump(j, open('old/best.json', 'w'))"
expect_exit 0 "old study: report reads a best.json without an objective" report old
expect_exit 0 "old study: --objective accuracy continues it too" "${ACC_STUDY[@]}" --objective accuracy --out old
expect_exit 2 "old study: --objective loss is another study" "${ACC_STUDY[@]}" --objective loss --out old
check "old study: study.json untouched" cmp -s study.before old/study.json

# ---- damaged objectives: refused with the file and the line, by tune and report ---------------
# damage STUDY NAME PYTHON: a copy of STUDY (as NAME) with PYTHON run on its files.
damage() {
    rm -rf "$2"
    cp -r "$1" "$2"
    "$PY" -c "import json, sys; d = sys.argv[1]; $3" "$2"
}
# refused NAME PATTERN DESC: nabla report refuses study NAME (exit 1) with PATTERN in its
# message.
refused() {
    expect_exit 1 "$3: report refuses it" report "$1"
    check "$3: report names it ($2)" grep -q -- "$2" "$WORK/stderr"
}
LOSS_END=$(grep -n '"state":"complete"' cl/journal.jsonl | head -1 | cut -d: -f1)
LOSS_EPOCH=$(grep -n '"epoch":2' cl/journal.jsonl | head -1 | cut -d: -f1)
rewrite_line='
def rewrite(path, n, change):
    lines = open(path).read().split("\n")
    e = json.loads(lines[n - 1]); change(e); lines[n - 1] = json.dumps(e, separators=(",", ":"))
    open(path, "w").write("\n".join(lines))
'
damage cl d1 "$rewrite_line
rewrite(d + '/journal.jsonl', $LOSS_EPOCH, lambda e: e.update(dev_loss=None))"
refused d1 "d1/journal.jsonl:$LOSS_EPOCH: \"dev_loss\" must be a number" "a null dev loss in a loss study's report"
expect_exit 1 "a null dev loss: the tuner refuses it" "${LOSS_STUDY[@]}" --out d1
check "the tuner names the line" grep -q "d1/journal.jsonl:$LOSS_EPOCH: " "$WORK/stderr"
damage cl d2 "$rewrite_line
rewrite(d + '/journal.jsonl', $LOSS_END, lambda e: e.update(dev_loss=e['dev_loss'] / 2))"
refused d2 "d2/journal.jsonl:$LOSS_END: \"dev_loss\" is .*, but the trial reported" "an end's dev loss other than its last report"
damage cl d3 "j = json.load(open(d + '/best.json')); j['objective'] = 'accuracy'; json.dump(j, open(d + '/best.json', 'w'), indent=1)"
refused d3 "d3/best.json:[0-9]*: \"objective\" is \"accuracy\", but the study's is loss" "best.json of another objective"
damage cl d4 "j = json.load(open(d + '/best.json')); del j['objective']; json.dump(j, open(d + '/best.json', 'w'), indent=1)"
refused d4 "d4/best.json: \"objective\" is missing, but the study's is loss" "best.json without the objective of a loss study"
damage cl d5 "j = json.load(open(d + '/study.json')); j['objective'] = 'r2'; json.dump(j, open(d + '/study.json', 'w'), indent=1)"
refused d5 "d5/study.json:[0-9]*: \"objective\": --objective r2: a classification model has no dev r2" "study.json with an objective the task has not"
expect_exit 1 "study.json with r2: the tuner refuses it" "${LOSS_STUDY[@]}" --out d5
check "the tuner names study.json's line" grep -q "d5/study.json:[0-9]*: \"objective\"" "$WORK/stderr"
damage cl d6 "j = json.load(open(d + '/study.json')); j['objective'] = 'banana'; json.dump(j, open(d + '/study.json', 'w'), indent=1)"
refused d6 "d6/study.json:[0-9]*: \"objective\": --objective expects a dev metric" "study.json with an unknown objective"
damage cl d7 "j = json.load(open(d + '/study.json')); j['objective'] = 7; json.dump(j, open(d + '/study.json', 'w'), indent=1)"
refused d7 "d7/study.json:[0-9]*: " "study.json with a number for the objective"
B=$(json cl/best.json "j['trial']")
damage cl d8 "j = json.load(open(d + '/trials/$B/summary.json')); j['dev_loss'] = 0.5; json.dump(j, open(d + '/trials/$B/summary.json', 'w'), indent=1)"
refused d8 "d8/trials/$B/summary.json" "a trial's summary.json of another dev loss"

# ---- regression: dev RMSE and R², from a CSV whose last column is the target ----------------
"$PY" - <<'EOF'
import random
random.seed(7)
with open("reg.csv", "w") as f:
    f.write("a,b,c,y\n")
    for i in range(400):
        a, b, c = (random.uniform(-2, 2) for _ in range(3))
        f.write("%.4f,%.4f,%.4f,%.4f\n" % (a, b, c, 3 * a - 2 * b + a * c + random.gauss(0, 0.3)))
EOF
# A regression CSV must train (the CSV reader with --task regression, and summaries without an
# accuracy read back): if not, that is one loud failure, not every check below failing with it.
run train --task regression --data reg.csv --epochs 1 --dev-fraction 0.2 --quiet --out regcheck
if [ "$RC" -ne 0 ]; then
    fail "a regression CSV does not train, so the regression studies cannot run: $(head -c 300 "$WORK/stderr")"
    finish
    exit
fi
REG_STUDY=(tune --task regression --data reg.csv --epochs 3 --checkpoint-every 5
           --space "lr=log(1e-4,1e-1); units=choice(8,32)" --trials 8 --prune median --seed 4 --quiet)
expect_exit 0 "regression study of dev rmse" "${REG_STUDY[@]}" --objective rmse --workers 2 --out rr
cp "$WORK/stdout" rr.out
check "rmse study: 8 trials finished" [ "$(outcome rr dev_rmse | wc -l)" -eq 8 ]
check "rmse study: every report and end has dev_rmse, and no accuracy" pytrue "all(('dev_rmse' in e and e['dev_accuracy'] is None) for e in map(json.loads, open('rr/journal.jsonl')) if 'epoch' in e or e.get('state') in ('complete', 'pruned'))"
check "rmse study: leaderboard by dev rmse, lowest first" leaderboard_ok rr.out rr dev_rmse -1
check "rmse study: the leaderboard's column is dev rmse" grep -q "^rank  trial  state     dev rmse  epochs" rr.out
check "rmse study: best.json is the trial of lowest dev rmse" best_ok rr dev_rmse -1
check "rmse study: best.json has test_rmse (null: no test set)" pytrue "(lambda j: 'test_rmse' in j and j['test_rmse'] is None)(json.load(open('rr/best.json')))"
check "rmse study: the summary line" grep -q "^best: trial [0-9]*, dev rmse [0-9.]*, no test set$" rr.out
expect_exit 0 "rmse study: report" report rr
check "rmse report: charts of dev rmse" pytrue "(lambda h: 'Dev rmse against lr' in h and 'Best dev rmse so far' in h and 'accuracy' not in h)(open('rr/report.html').read())"
REG_EPOCH=$(grep -n '"epoch":1,' rr/journal.jsonl | head -1 | cut -d: -f1)
damage rr d9 "$rewrite_line
rewrite(d + '/journal.jsonl', $REG_EPOCH, lambda e: e.pop('dev_rmse'))"
refused d9 "d9/journal.jsonl:$REG_EPOCH: \"dev_rmse\" is missing" "a regression study's report without its dev rmse"
damage rr d10 "$rewrite_line
rewrite(d + '/journal.jsonl', $REG_EPOCH, lambda e: e.update(dev_rmse=-1))"
refused d10 "d10/journal.jsonl:$REG_EPOCH: \"dev_rmse\" is -1: it cannot be negative" "a negative dev rmse"
damage rr d11 "$rewrite_line
rewrite(d + '/journal.jsonl', $REG_EPOCH, lambda e: e.update(dev_accuracy=0.5))"
refused d11 "d11/journal.jsonl:$REG_EPOCH: \"dev_accuracy\" is 0.5, but a regression model has no accuracy" "an accuracy in a regression study"

expect_exit 0 "regression study of dev r2 (higher is better)" "${REG_STUDY[@]}" --objective r2 --out r2
cp "$WORK/stdout" r2.out
check "r2 study: leaderboard by dev r2, highest first" leaderboard_ok r2.out r2 dev_r2 1
check "r2 study: best.json is the trial of highest dev r2" best_ok r2 dev_r2 1
expect_exit 0 "regression study without --objective" "${REG_STUDY[@]}" --trials 4 --prune none --out rl
check "regression: the default objective is dev loss" pytrue "json.load(open('rl/study.json'))['objective'] == 'loss'"
check "regression default: best.json of the lowest dev loss" best_ok rl dev_loss -1

echo "test_tune_objective: $((SECONDS - STARTED)) s, the loss study killed $KILLS times"
finish

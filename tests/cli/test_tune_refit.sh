#!/bin/bash
# nabla tune --refit: the best configuration trained again on the whole training set (its dev
# split included) for the best trial's epochs, into STUDY/refit, and measured once on the test
# set. Checks: the refit's run (--dev-fraction 0 in its config.json, its epochs, its samples,
# its seed), best.json's "refit" beside the best trial's figures and the summary line, the
# command (it trains the same model bit for bit), a study finished without --refit refitted
# later and one finished with it run again with and without it, the epochs rule under
# --early-stop (the best epoch's, with a cosine schedule's horizon kept), a study without a
# test set and a regression study of dev RMSE, a study stopped (SIGTERM) during its refit and
# continued from the refit's checkpoint to the uninterrupted refit's model, refits that cannot
# run (another run's checkpoint in STUDY/refit, a file there, a full disk under it: exit 1
# naming what), best.json's refit damaged (report refuses it with the line), and the report.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MOUNTS=()
# The mounts go before the work directory does (lib.sh removes it on exit).
trap 'for m in "${MOUNTS[@]}"; do umount -l "$m" 2>/dev/null; done; rm -rf "$WORK"' EXIT

SPACE="lr=log(1e-3,1e-1)"
# One thread a trial: tiny batches gain nothing from more, on a machine others share.
STUDY=(tune --data moons --epochs 3 --trials 3 --space "$SPACE" --seed 1 --threads 1)

# ---- a study finished without --refit, then refitted -----------------------------------------
expect_exit 0 "study a without --refit" "${STUDY[@]}" --out a --quiet
check "no refit without --refit: no a/refit, best.json without refit" \
    eval 'absent a/refit && [ "$(json a/best.json "\"refit\" in j")" = False ]'
cp a/best.json best_before.json
expect_exit 0 "study a again with --refit" "${STUDY[@]}" --out a --refit
B=$(json a/best.json 'j["trial"]')
check "the best trial is unchanged by the refit" \
    pytrue "({k: v for k, v in json.load(open('a/best.json')).items() if k != 'refit'} ==
             json.load(open('best_before.json')))"
check "the refit's config.json: --dev-fraction 0, the trial's epochs, seed and lr, no test" \
    pytrue "(lambda r, t: r['dev_fraction'] == 0 and t['dev_fraction'] == 0.1 and
             r['epochs'] == t['epochs'] == 3 and r['seed'] == t['seed'] == 1 and
             r['lr'] == t['lr'] and r['early_stop'] is None)(
        json.load(open('a/refit/config.json')), json.load(open('a/trials/$B/config.json')))"
check "the refit trains on the trial's training and dev samples together" \
    pytrue "(lambda r, t: r['train_samples'] == t['train_samples'] + t['dev_samples'] and
             r['dev_samples'] == 0)(json.load(open('a/refit/config.json')),
                                     json.load(open('a/trials/$B/config.json')))"
check "best.json's refit: epochs, model, test figures, command" \
    pytrue "(lambda r: set(r) == {'epochs', 'model', 'test_accuracy', 'test_loss', 'command'} and
             r['epochs'] == 3 and r['model'] == 'refit/model.safetensors' and
             0 <= r['test_accuracy'] <= 1 and r['test_loss'] > 0 and
             r['command'].startswith('nabla train ') and ' --dev-fraction 0 ' in r['command']
             and r['command'].endswith('--out a/refit'))(json.load(open('a/best.json'))['refit'])"
REFIT_ACC=$(json a/best.json 'round(j["refit"]["test_accuracy"], 4)')
TRIAL_ACC=$(json a/best.json 'round(j["test_accuracy"], 4)')
check "the summary line has the trial's test figure and the refit's beside it" \
    eval "grep -q \"^best: trial $B, dev accuracy [0-9.]*, test accuracy $(printf %.4f "$TRIAL_ACC"); refit (3 epochs on train + dev): test accuracy $(printf %.4f "$REFIT_ACC")\$\" '$WORK/stdout'"
run eval --model a/refit/model.safetensors --data moons --seed 1 --json
check "the refit's test accuracy is eval's of its model" \
    pytrue "(json.loads(open('$WORK/stdout').read())['accuracy'] ==
             json.load(open('a/best.json'))['refit']['test_accuracy'])"
# The command trains the refit's model again, bit for bit (into another directory).
CMD=$(json a/best.json 'j["refit"]["command"]')
# shellcheck disable=SC2086  # the command's words (no blanks inside them here)
check "the refit's command trains its model again, bit for bit" \
    eval '"$NABLA" ${CMD#nabla } --out again --threads 1 --quiet >/dev/null 2>&1 &&
          cmp -s again/model.safetensors a/refit/model.safetensors'
# Again with --refit: the finished refit is measured, not trained again.
cp a/refit/metrics.jsonl metrics_before
cp a/best.json best_refit.json
touch -d '2000-01-01' a/refit/model.safetensors
expect_exit 0 "study a a third time, with --refit" "${STUDY[@]}" --out a --refit --quiet
check "a finished refit is not trained again, and best.json says the same" \
    eval 'cmp -s metrics_before a/refit/metrics.jsonl &&
          [ "$(stat -c %Y a/refit/model.safetensors)" = "$(date -d 2000-01-01 +%s)" ] &&
          ! grep -q "^refit:" "$WORK/stdout" && cmp -s best_refit.json a/best.json'
# Without --refit: best.json says what this command measured; the refit is left as it is.
expect_exit 0 "study a without --refit after a refit" "${STUDY[@]}" --out a
check "without --refit best.json has no refit, the run says a/refit is left out" \
    eval '[ "$(json a/best.json "\"refit\" in j")" = False ] &&
          grep -q "a/refit holds the refit of an earlier run with --refit" "$WORK/stdout" &&
          [ -f a/refit/model.safetensors ]'
expect_exit 0 "study a refitted once more" "${STUDY[@]}" --out a --refit --quiet
expect_exit 0 "report of a refitted study" report a --out a.html
check "the report shows the refit's test figure and command" \
    eval "grep -q '<td>refit</td>' a.html && grep -q -- '--dev-fraction 0' a.html &&
          grep -q '$(printf %.4f "$REFIT_ACC")' a.html"

# ---- best.json's refit damaged: report refuses it, naming the line ---------------------------
cp a/best.json best_ok.json
REFIT_LINE=$(grep -n '"refit"' best_ok.json | cut -d: -f1)
damage() { # DESCRIPTION PERL-SUBSTITUTION EXPECTED-TEXT
    perl -0pe "$2" best_ok.json >a/best.json
    if cmp -s a/best.json best_ok.json; then
        fail "damage $1: the substitution changed nothing"
        return
    fi
    run report a --out damaged.html
    if [ "$RC" -eq 1 ] && grep -q "a/best.json:[0-9]*: .*$3" "$WORK/stderr"; then pass; else
        fail "damage $1: exit $RC, $(cat "$WORK/stderr")"
    fi
}
damage "refit epochs" 's/("refit":\s*\{\s*"epochs":\s*)3/${1}2/' \
    "\"refit\": \"epochs\" is 2, but the refit of trial $B trains 3"
damage "refit model" 's/refit\/model\.safetensors/trials\/0\/model.safetensors/' \
    "\"refit\": \"model\" is"
damage "refit accuracy" 's/("refit":.*?"test_accuracy":\s*)[0-9.e-]+/${1}1.5/s' \
    "\"refit\": \"test_accuracy\" is 1.5"
damage "refit loss" 's/("refit":.*?"test_loss":\s*)[0-9.e-]+/${1}-1/s' \
    "\"refit\": \"test_loss\" is -1"
damage "refit without its command" 's/,\s*"command":\s*"nabla train [^"]*--out a\/refit"//' \
    "\"refit\": \"command\" is missing"
damage "refit not an object" 's/"refit":\s*\{.*?\}/"refit": 3/s' "\"refit\" must be an object"
damage "refit epochs not whole" 's/("refit":\s*\{\s*"epochs":\s*)3/${1}2.5/' \
    "\"refit\": \"epochs\" is 2.5"
check "damage messages name the refit's line" \
    eval "perl -0pe 's/(\"refit\":\s*\{\s*\"epochs\":\s*)3/\${1}4/' best_ok.json >a/best.json &&
          ! '$NABLA' report a --out d.html 2>&1 | grep -vq '^nabla: a/best.json:$REFIT_LINE: '"
cp best_ok.json a/best.json

# ---- the epochs rule under --early-stop, with a cosine schedule ------------------------------
# Large learning rates on moons stop early: each trial's model is its best epoch's.
expect_exit 0 "an early-stopping study with --refit" tune --data moons --epochs 8 --threads 1 \
    --early-stop 1 --lr-decay cosine --trials 3 --space "lr=log(1e-2,3e-1)" --out e --refit \
    --quiet
EB=$(json e/best.json 'j["trial"]')
BEST_EPOCH=$(json "e/trials/$EB/summary.json" 'j["best_epoch"]')
TRIAL_EPOCHS=$(json "e/trials/$EB/summary.json" 'j["epochs"]')
check "the best trial stopped early with a best epoch before its last (the rule is tried)" \
    eval "[ '$BEST_EPOCH' -lt '$TRIAL_EPOCHS' ] && [ '$TRIAL_EPOCHS' -lt 8 ]"
check "the refit trains the best epoch's count, no early stopping, the trial's cosine horizon" \
    pytrue "(lambda r, b: r['epochs'] == $BEST_EPOCH == b['refit']['epochs'] and
             r['early_stop'] is None and r['monitor'] is None and r['decay_epochs'] == 8 and
             json.load(open('e/refit/summary.json'))['epochs'] == $BEST_EPOCH)(
        json.load(open('e/refit/config.json')), json.load(open('e/best.json')))"
expect_exit 0 "report of the early-stopping study" report e --out e.html

# ---- no test set; another objective (a regression CSV, dev RMSE) -----------------------------
expect_exit 0 "a refit without a test set" "${STUDY[@]}" --test none --out n --refit
check "without a test set: the refit runs, no test figure, said" \
    eval 'grep -q "; refit (3 epochs on train + dev): no test set$" "$WORK/stdout" &&
          [ -f n/refit/model.safetensors ] &&
          [ "$(json n/best.json "(j[\"refit\"][\"test_accuracy\"], j[\"refit\"][\"test_loss\"])")" = "(None, None)" ]'
expect_exit 0 "report of a refit without a test set" report n --out n.html
check "the report says the refit has no test figure" grep -q 'no test figure' n.html
"$PY" - <<'EOF'
import random
random.seed(3)
for name, n in (("reg.csv", 120), ("reg_test.csv", 40)):
    with open(name, "w") as f:
        f.write("x1,x2,y\n")
        for _ in range(n):
            a, b = random.uniform(-1, 1), random.uniform(-1, 1)
            f.write(f"{a:.4f},{b:.4f},{2 * a - b + random.gauss(0, 0.1):.4f}\n")
EOF
expect_exit 0 "a regression study of dev rmse with --refit" tune --data reg.csv --test \
    reg_test.csv --task regression --objective rmse --epochs 2 --trials 2 --space "$SPACE" \
    --out r --refit --quiet --threads 1
check "the regression refit's test rmse in best.json, and in the summary line" \
    eval 'pytrue "json.load(open(\"r/best.json\"))[\"refit\"][\"test_rmse\"] >= 0" &&
          grep -q "; refit (2 epochs on train + dev): test rmse [0-9.]*$" "$WORK/stdout"'
expect_exit 0 "report of the regression refit" report r --out r.html

# ---- a study stopped during its refit, continued from the refit's checkpoint -----------------
# One trial on a tenth of the data (--dev-fraction 0.9): the refit, on all of it, trains ten
# times as many steps. It is held (SIGSTOP) once it has begun (its config.json), so the tuner's
# SIGTERM reaches it before it can finish whatever the load: the tuner passes the stop on (with
# SIGCONT) and the refit checkpoints where it is.
SLOW=(tune --data moons --samples 20000 --dev-fraction 0.9 --batch-size 8 --epochs 3 --trials 1
      --space "$SPACE" --threads 1)
"$NABLA" "${SLOW[@]}" --out s --refit >s.out 2>s.err &
TUNER=$!
REFIT_PID=
while kill -0 "$TUNER" 2>/dev/null; do
    [ -f s/refit/config.json ] && REFIT_PID=$(pgrep -P "$TUNER" -f -- "--out s/refit") &&
        [ -n "$REFIT_PID" ] && break
    sleep 0.01
done
if [ -n "$REFIT_PID" ] && kill -STOP "$REFIT_PID" && absent s/refit/summary.json; then
    pass
    kill -TERM "$TUNER"
else
    fail "the refit could not be held before it finished (pid '$REFIT_PID'): make it longer"
    kill -TERM "$TUNER" 2>/dev/null
fi
wait "$TUNER"
STOP_RC=$?
check "the stopped study: exit 143, one line on the refit, no best.json, the refit's checkpoint" \
    eval '[ "$STOP_RC" -eq 143 ] && absent s/best.json && [ -f s/refit/checkpoint.safetensors ] &&
          absent s/refit/summary.json &&
          grep -q "^nabla: stopped by SIGTERM during the refit of the best configuration (trial 0) in s/refit; every trial has finished: run the same command again to continue the refit from its checkpoint and write s/best.json$" s.err'
check "no refit process is left" eval '! kill -0 "$REFIT_PID" 2>/dev/null'
expect_exit 0 "the same command continues the refit" "${SLOW[@]}" --out s --refit
check "it said it continues from the refit's checkpoint, and wrote best.json with the refit" \
    eval 'grep -q "^refit: .*(continuing from its checkpoint)$" "$WORK/stdout" &&
          [ "$(json s/best.json "j[\"refit\"][\"epochs\"]")" = 3 ]'
CMD=$(json s/best.json 'j["refit"]["command"]')
# shellcheck disable=SC2086
check "the continued refit's model is the uninterrupted refit's, bit for bit" \
    eval '"$NABLA" ${CMD#nabla } --out s_again --threads 1 --quiet >/dev/null 2>&1 &&
          cmp -s s_again/model.safetensors s/refit/model.safetensors'

# ---- refits that cannot run: exit 1, one line naming what, best.json untouched ---------------
# Another run's checkpoint in STUDY/refit (a copy of the best trial's, --dev-fraction 0.1).
rm -rf a/refit && cp -r "a/trials/$B" a/refit && rm -f a/refit/summary.json
cp a/best.json best_kept.json
expect_exit 1 "another run in a/refit" "${STUDY[@]}" --out a --refit --quiet
check "it is refused naming the difference, best.json untouched" \
    eval 'one_line_error "nabla: a/refit holds a run that is not the refit of trial $B (its checkpoint'"'"'s --dev-fraction is 0.1, not 0)" &&
          cmp -s best_kept.json a/best.json'
rm -rf a/refit
expect_exit 0 "moved away, the same command refits" "${STUDY[@]}" --out a --refit --quiet
check "the refit is the one before, bit for bit" cmp -s again/model.safetensors a/refit/model.safetensors
# A regular file at STUDY/refit.
rm -rf a/refit && echo x >a/refit && cp a/best.json best_kept.json
expect_exit 1 "a file at a/refit" "${STUDY[@]}" --out a --refit --quiet
check "a file at a/refit: one line naming it, best.json untouched" \
    eval 'one_line_error "nabla: " && grep -q "a/refit" "$WORK/stderr" && cmp -s best_kept.json a/best.json'
rm -f a/refit
# A full disk under STUDY/refit: the refit is interrupted, its log named; then continued.
if check "full disk: a small tmpfs at a/refit" eval 'mkdir -p a/refit &&
        mount -t tmpfs -o size=40k tmpfs a/refit && MOUNTS+=("$WORK/a/refit")'; then
    expect_exit 1 "a refit on a full disk" "${STUDY[@]}" --out a --refit --quiet
    check "the full disk: one line naming the refit's log and how to go on, best.json untouched" \
        eval 'one_line_error "nabla: the refit of trial $B was interrupted: " &&
              grep -q "(see a/refit/train.log); the same command continues it from its checkpoint$" "$WORK/stderr" &&
              cmp -s best_kept.json a/best.json'
    umount a/refit && MOUNTS=("${MOUNTS[@]/$WORK\/a\/refit/}")
    expect_exit 0 "the disk freed, the same command refits" "${STUDY[@]}" --out a --refit --quiet
    check "and writes best.json with the refit" \
        eval '[ "$(json a/best.json "j[\"refit\"][\"epochs\"]")" = 3 ]'
fi
check "no --refit among the study's settings" eval '! grep -q refit a/study.json'
expect_exit 2 "--refit takes no value" "${STUDY[@]}" --out a --refit=yes

finish

#!/bin/bash
# nabla tune under faults. An accident is not a conclusion: a trial killed (kill -9, as the OOM
# killer does), stopped from outside (SIGTERM, SIGINT), cut short by a full disk or a read-only
# file system, or left without its data is interrupted, not failed: the study stops with one
# line that says so, and the same command ends with exactly the uninterrupted study's trials. A
# trial fails only for what it is responsible for (its loss diverged, its configuration is bad),
# with its reason, and the study goes on. A file of the study's own that cannot be written stops
# the study at once, naming it. study.json deleted. Journals damaged with every kind of
# nonsense, read by the tuner and by `nabla report`. Needs root (tmpfs and bind mounts).
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

STARTED=$SECONDS
: >"$WORK/report.err"
MOUNTS=()
# The mounts go before the work directory does (lib.sh removes it on exit).
trap 'for m in "${MOUNTS[@]}"; do umount -l "$m" 2>/dev/null; done; rm -rf "$WORK"' EXIT

SPACE="lr=log(1e-3,1e-1); batch-size=choice(32,64)"
# 3 trials of about half a second, 2 at a time (trial 1 runs beside trial 0), to be caught
# running; and the same, lighter, for the rest.
STUDY=(tune --data moons --samples 40000 --epochs 12 --layers 32,32 --space "$SPACE" --trials 3
       --workers 2 --quiet)
LIGHT=(tune --data moons --samples 10000 --epochs 6 --layers 32,32 --space "$SPACE" --trials 3
       --workers 2 --quiet)

# wait_until COMMAND...: polls until the command succeeds (a safety net of 60 s, not a timing).
wait_until() {
    local i
    for ((i = 0; i < 1200; i++)); do
        "$@" && return 0
        sleep 0.05
    done
    return 1
}

# trial_pid DIR N: the process of trial N of study DIR (of this test: its working directory).
trial_pid() {
    local pid here
    here=$(cd "$WORK" && pwd -P)
    for pid in $(pgrep -f -- "$1/trials/$2 --threads"); do
        [ "$(readlink "/proc/$pid/cwd" 2>/dev/null)" = "$here" ] && echo "$pid" && return 0
    done
    return 1
}

# reported DIR N: trial N of study DIR has reported an epoch.
reported() { grep -q "\"trial\":$2,\"state\":\"running\",\"epoch\"" "$1/journal.jsonl" 2>/dev/null; }
# started DIR N: trial N of study DIR has started.
started() { grep -q "\"trial\":$2,\"state\":\"running\",\"round\"" "$1/journal.jsonl" 2>/dev/null; }

# journal_ok DIR: the study's journal makes sense (nabla report reads it) and holds no failed
# trial, no final event for an interrupted one before it resumed, and no trial started after
# the first interruption (the study stopped starting trials at once).
journal_ok() {
    "$NABLA" report "$1" --out "$WORK/journal_ok.html" >/dev/null 2>"$WORK/report.err" || return 1
    "$PY" - "$1/journal.jsonl" <<'EOF'
import json, sys
evs = [json.loads(l) for l in open(sys.argv[1])]
assert not [e for e in evs if e.get("state") == "failed"], "a failed trial"
first = next((k for k, e in enumerate(evs) if e.get("state") == "interrupted"), len(evs))
assert not [e for e in evs[first:] if "round" in e and "trial" in e], "started after an interruption"
EOF
}

# mount_tmpfs DIR SIZE: a small file system at DIR (created), unmounted on exit.
mount_tmpfs() {
    mkdir -p "$1" && mount -t tmpfs -o "size=$2" tmpfs "$1" && MOUNTS+=("$WORK/$1")
}

# mount_read_only PATH: PATH (a file or directory) bind-mounted read-only over itself.
mount_read_only() {
    mount --bind "$1" "$1" && MOUNTS+=("$WORK/$1") && mount -o remount,bind,ro "$1"
}

# resumes DIR REF [ARGS...]: the same command (LIGHT, or ARGS) finishes study DIR with exactly
# the trials of the uninterrupted study REF.
resumes() {
    local dir=$1 ref=$2
    shift 2
    [ $# -gt 0 ] || set -- "${LIGHT[@]}"
    expect_exit 0 "$dir: the same command finishes the study" "$@" --out "$dir"
    check "$dir: the uninterrupted study's trials" diff <(study_outcome "$ref") <(study_outcome "$dir")
    check "$dir: no trial process left" no_trials_left "$dir"
}

expect_exit 0 "the uninterrupted study" "${STUDY[@]}" --out ref
check "the uninterrupted study: 3 trials complete" \
    [ "$(study_outcome ref | grep -c complete)" -eq 3 ]
expect_exit 0 "the uninterrupted light study" "${LIGHT[@]}" --out light

# ---- a trial killed or stopped from outside: interrupted, and the study stops ------------------
# interrupt SIGNAL DIR: runs the study in DIR and, once trial 1 has reported an epoch (it has a
# checkpoint), freezes its process, sends it SIGNAL and lets it go on; RC is the study's exit
# status. Returns 1 when trial 1 had ended before it could be caught.
interrupt() {
    local sig=$1 dir=$2 pid tuner caught=1
    rm -rf "$dir"
    "$NABLA" "${STUDY[@]}" --out "$dir" >"$WORK/stdout" 2>"$WORK/stderr" &
    tuner=$!
    if wait_until reported "$dir" 1 && pid=$(trial_pid "$dir" 1) && kill -STOP "$pid"; then
        caught=0
        kill "-$sig" "$pid"
        kill -CONT "$pid"
    fi
    wait "$tuner"
    RC=$?
    return $caught
}

for case in "KILL:killed by SIGKILL: out of memory, or killed by someone)" \
            "TERM:stopped by SIGTERM after " "INT:stopped by SIGINT after "; do
    sig=${case%%:*} why=${case#*:} dir=sig${case%%:*}
    caught=no
    for attempt in 1 2 3; do
        interrupt "$sig" "$dir" && caught=yes && break
    done
    check "SIG$sig: trial 1 caught running (within 3 attempts)" [ $caught = yes ]
    check "SIG$sig: the study exits 1 (got $RC)" [ "$RC" -eq 1 ]
    check "SIG$sig: one line, trial 1 interrupted ($(head -c 300 "$WORK/stderr"))" \
        one_line_error "nabla: trial 1 was interrupted ($why"
    check "SIG$sig: says nothing is concluded and how to go on" \
        grep -q "); nothing is concluded from it; the same command resumes the study from its checkpoints$" "$WORK/stderr"
    check "SIG$sig: journaled as interrupted, not failed, with its reason" pytrue \
        "[e['reason'] for e in map(json.loads, open('$dir/journal.jsonl')) if e.get('state') == 'interrupted'] == [open('$WORK/stderr').read().split('(', 1)[1].split('); nothing')[0]]"
    check "SIG$sig: the journal makes sense; no trial failed or started after ($(cat "$WORK/report.err"))" journal_ok "$dir"
    check "SIG$sig: the report shows the interrupted trial" grep -q ">interrupted<" journal_ok.html
    check "SIG$sig: no trial process left" no_trials_left "$dir"
    check "SIG$sig: no best.json" absent "$dir/best.json"
    resumes "$dir" ref "${STUDY[@]}"
done

# ---- a full disk: the study stops at once, naming the file; more space, and it resumes ---------
# The whole study on a small file system (a trial's checkpoint does not fit beside the others').
if check "full disk: a 150 kB tmpfs" mount_tmpfs full 150k; then
    expect_exit 1 "full disk: the study stops" "${LIGHT[@]}" --out full/s
    check "full disk: one line naming a file of the study ($(head -c 300 "$WORK/stderr"))" \
        grep -Eq "^nabla: (trial [0-9] was interrupted \()?full/s/[^ ]*: .*No space left on device" "$WORK/stderr"
    check "full disk: one line" [ "$(lines "$WORK/stderr")" -eq 1 ]
    check "full disk: the journal makes sense; no trial failed or started after ($(cat "$WORK/report.err"))" journal_ok full/s
    check "full disk: no trial process left" no_trials_left full/s
    check "full disk: space returns" mount -o remount,size=20m full
    resumes full/s light
fi
# A small file system over one trial's directory only: that trial is interrupted.
mkdir -p fd1/trials/2
if check "full disk: a 32 kB tmpfs over trials/2" mount_tmpfs fd1/trials/2 32k; then
    expect_exit 1 "full trial directory: the study stops" "${LIGHT[@]}" --out fd1
    check "full trial directory: trial 2 interrupted, naming its file ($(head -c 300 "$WORK/stderr"))" \
        one_line_error "nabla: trial 2 was interrupted (fd1/trials/2/"
    check "full trial directory: says why" grep -q "No space left on device" "$WORK/stderr"
    check "full trial directory: the journal makes sense ($(cat "$WORK/report.err"))" journal_ok fd1
    check "full trial directory: space returns" mount -o remount,size=20m fd1/trials/2
    resumes fd1 light
fi

# ---- read-only: a trial's directory, the journal, the whole study ------------------------------
mkdir -p ro1/trials/1
if check "read-only: trials/1 bind-mounted read-only" mount_read_only ro1/trials/1; then
    expect_exit 1 "read-only trial directory: the study stops" "${LIGHT[@]}" --out ro1
    check "read-only trial directory: one line naming the file ($(head -c 300 "$WORK/stderr"))" \
        one_line_error "nabla: ro1/trials/1/train.log: cannot append: Read-only file system"
    check "read-only trial directory: no trial failed ($(cat "$WORK/report.err"))" journal_ok ro1
    check "read-only trial directory: no trial process left" no_trials_left ro1
    umount ro1/trials/1
    resumes ro1 light
fi

# partial DIR: the light study as if cut short (by kill -9 of the tuner): trials 0 and 1 started
# and reported epochs.
partial() {
    rm -rf "$1"
    cp -r light "$1"
    rm "$1/best.json"
    "$PY" - "$1/journal.jsonl" <<'EOF'
import json, sys
keep, epochs = [], {0: 0, 1: 0}
for line in open(sys.argv[1]):
    e = json.loads(line)
    t = e.get("trial")
    if t in (0, 1) and ("round" in e or "epoch" in e and epochs[t] < 3):
        epochs[t] += "epoch" in e
        keep.append(line)
open(sys.argv[1], "w").writelines(keep)
EOF
}

partial jro
cp jro/journal.jsonl journal.before
if check "read-only: journal.jsonl bind-mounted read-only" mount_read_only jro/journal.jsonl; then
    expect_exit 1 "read-only journal: the study stops" "${LIGHT[@]}" --out jro
    check "read-only journal: one line naming it ($(head -c 300 "$WORK/stderr"))" \
        one_line_error "nabla: jro/journal.jsonl: cannot append: Read-only file system"
    check "read-only journal: unchanged" cmp -s journal.before jro/journal.jsonl
    check "read-only journal: no trial process left" no_trials_left jro
    umount jro/journal.jsonl
    resumes jro light
fi

if check "read-only: a tmpfs for a whole study" mount_tmpfs rofs 20m; then
    partial rofs/s
    cp rofs/s/journal.jsonl journal.before
    mount -o remount,ro rofs
    expect_exit 1 "read-only study: refused" "${LIGHT[@]}" --out rofs/s
    check "read-only study: one line naming the file ($(head -c 300 "$WORK/stderr"))" \
        one_line_error "nabla: rofs/s/"
    check "read-only study: says why" grep -q "Read-only file system" "$WORK/stderr"
    check "read-only study: journal unchanged" cmp -s journal.before rofs/s/journal.jsonl
    mount -o remount,rw rofs
    resumes rofs/s light
fi

# ---- the data gone while the study runs -----------------------------------------------------
"$PY" -c '
import random
random.seed(1)
with open("d.csv", "w") as f:
    for i in range(3000):
        y = random.randrange(2)
        f.write("%.4f,%.4f,%d\n" % (random.gauss(y, 1), random.gauss(-y, 1), y))
'
CSV_STUDY=(tune --data d.csv --epochs 12 --layers 32,32 --space "$SPACE" --trials 3 --workers 1
           --quiet)
expect_exit 0 "CSV study" "${CSV_STUDY[@]}" --out csv_ref
"$NABLA" "${CSV_STUDY[@]}" --out gone >"$WORK/stdout" 2>"$WORK/stderr" &
tuner=$!
wait_until started gone 0
mv d.csv d.away
wait "$tuner"
RC=$?
mv d.away d.csv
check "data gone: the study exits 1 (got $RC)" [ "$RC" -eq 1 ]
check "data gone: one line, a trial interrupted, naming the data ($(head -c 300 "$WORK/stderr"))" \
    grep -Eq "^nabla: trial [01] was interrupted \(.*d\.csv.*No such file or directory" "$WORK/stderr"
check "data gone: one line" [ "$(lines "$WORK/stderr")" -eq 1 ]
check "data gone: the journal makes sense; no trial failed ($(cat "$WORK/report.err"))" journal_ok gone
resumes gone csv_ref "${CSV_STUDY[@]}"

# ---- failures a trial is responsible for: failed, with the reason, and the study goes on -------
for opt in sgd momentum; do
    expect_exit 0 "diverging trial ($opt): the study goes on" tune --data moons --epochs 2 \
        --optimizer "$opt" --space "lr=choice(1e30,0.1)" --sampler grid --trials 2 --quiet \
        --out "dv_$opt"
    check "diverging trial ($opt): failed, the loss diverged, at its epoch and step" pytrue \
        "[(e['trial'], e['reason'].split(' at ')[0]) for e in map(json.loads, open('dv_$opt/journal.jsonl')) if e.get('state') == 'failed'] == [(0, 'the loss diverged (NaN/inf)')]"
    check "diverging trial ($opt): the other one complete" pytrue \
        "[e['trial'] for e in map(json.loads, open('dv_$opt/journal.jsonl')) if e.get('state') == 'complete'] == [1]"
done
# failed_with DIR TRIAL TEXT: the study's only failed trial is TRIAL, its reason holding TEXT.
failed_with() {
    pytrue "[(e['trial'], '''$3''' in e['reason']) for e in map(json.loads, open('$1/journal.jsonl')) if e.get('state') == 'failed'] == [($2, True)]"
}
expect_exit 0 "a usage error in a trial (trace-layer beyond depth): the study goes on" \
    tune --data moons --epochs 2 --trace-activations --sampler grid --trials 2 \
    --space "depth=choice(1,2); trace-layer=choice(2)" --quiet --out bad_usage
check "usage error: failed with train's message" \
    failed_with bad_usage 0 "--trace-layer 2: the model has hidden layers 1 to 1"
expect_exit 0 "a model too large for the memory: the study goes on" \
    tune --data moons --epochs 2 --sampler grid --trials 2 \
    --space "layers=choice(8,1000000|1000000)" --quiet --out bad_memory
check "too large: failed, out of memory" failed_with bad_memory 1 "out of memory: "
expect_exit 0 "--init-weights that do not fit a trial's layers: the study goes on" \
    tune --data moons --samples 40000 --epochs 2 --sampler grid --trials 2 \
    --init-weights ref/trials/0/model.safetensors --space "layers=choice(32|32,8)" --quiet \
    --out bad_init
check "--init-weights not fitting: failed with the shapes" \
    failed_with bad_init 1 "has shape [32, 2], the model needs [8, 2]"
expect_exit 2 "a value train refuses: refused up front" tune --data moons \
    --space "batch-size=choice(32,0)" --out bad_up_front
check "refused up front: nothing written" absent bad_up_front

# ---- study.json deleted: the journal's trials cannot be checked against new settings -----------
partial nosettings
rm nosettings/study.json
cp nosettings/journal.jsonl journal.before
expect_exit 1 "study.json deleted: refused" "${LIGHT[@]}" --out nosettings
check "study.json deleted: one line, says why and what to do ($(head -c 300 "$WORK/stderr"))" \
    one_line_error "nabla: nosettings/study.json, the study's settings, is missing, but nosettings/journal.jsonl has trials"
check "study.json deleted: says what to do" grep -q "Put study.json back, or use another --out" "$WORK/stderr"
expect_exit 1 "study.json deleted, other settings: refused" "${LIGHT[@]}" --trials 5 --out nosettings
check "study.json deleted: nothing written" absent nosettings/study.json
check "study.json deleted: journal unchanged" cmp -s journal.before nosettings/journal.jsonl
cp light/study.json nosettings/
resumes nosettings light
# Without a single whole event, the directory holds no study yet: it starts.
mkdir torn_only
printf '{"trial":0,"sta' >torn_only/journal.jsonl
expect_exit 0 "study.json missing, journal without a whole line: a new study" \
    tune --data moons --epochs 1 --trials 2 --space "lr=log(1e-3,1e-1)" --quiet --out torn_only

# ---- damaged journals: the tuner and nabla report both refuse them, naming file and line -------
# A finished study of two rounds to damage.
R2=(tune --data moons --epochs 3 --trials 4 --rounds 2 --prune median --space "$SPACE" --quiet)
expect_exit 0 "a study of two rounds" "${R2[@]}" --out r2
# damaged NAME WHAT PYTHON: a copy of r2 whose journal's events (ev, a list of dicts; lines, its
# text) PYTHON edits; then the same command and nabla report must both refuse it, exit 1, with
# "NAME/journal.jsonl:LINE: WHAT", LINE being the line PYTHON leaves in `bad`, and touch nothing.
damaged() {
    local name=$1 what=$2
    rm -rf "$name"
    cp -r r2 "$name"
    "$PY" - "$name/journal.jsonl" "$3" <<'EOF' >"$name.line"
import json, sys
path, edit = sys.argv[1], sys.argv[2]
lines = open(path).read().splitlines()
ev = [json.loads(l) for l in lines]
def at(trial, kind):
    """The index of the first event of `trial` of a kind: start, epoch, end."""
    for k, e in enumerate(ev):
        if e.get("trial") != trial:
            continue
        if kind == "start" and "round" in e or kind == "epoch" and "epoch" in e or \
           kind == "end" and e["state"] in ("complete", "pruned", "failed"):
            return k
bad = None
exec(edit)
lines = [l if isinstance(l, str) else json.dumps(l) for l in lines]
open(path, "w").write("\n".join(lines) + "\n")
print(bad + 1)
EOF
    local line
    line=$(cat "$name.line")
    cp "$name/journal.jsonl" journal.before
    expect_exit 1 "$name: the tuner refuses" "${R2[@]}" --out "$name"
    check "$name: the tuner names $name/journal.jsonl:$line: $what ($(head -c 300 "$WORK/stderr"))" \
        one_line_error "nabla: $name/journal.jsonl:$line: $what"
    check "$name: the tuner left the journal alone" cmp -s journal.before "$name/journal.jsonl"
    expect_exit 1 "$name: nabla report refuses" report "$name"
    check "$name: report names $name/journal.jsonl:$line: $what ($(head -c 300 "$WORK/stderr"))" \
        one_line_error "nabla: $name/journal.jsonl:$line: $what"
    check "$name: no report written" absent "$name/report.html"
}
damaged j_trial_high '"trial" must be a whole number from 0 to 3' \
    'k = at(1, "start"); e = dict(ev[k], trial=4); lines.insert(k + 1, e); bad = k + 1'
damaged j_trial_negative '"trial" must be a whole number from 0 to 3' \
    'k = at(1, "epoch"); lines[k] = dict(ev[k], trial=-1); bad = k'
damaged j_trial_fraction '"trial" must be a whole number from 0 to 3' \
    'k = at(1, "epoch"); lines[k] = dict(ev[k], trial=1.5); bad = k'
damaged j_state_unknown 'unknown state "exploded"' \
    'k = at(2, "epoch"); lines[k] = dict(ev[k], state="exploded"); bad = k'
damaged j_state_pending 'unknown state "pending"' \
    'k = at(2, "epoch"); lines[k] = dict(ev[k], state="pending"); bad = k'
damaged j_state_missing '"state" must be a trial'"'"'s state (a string)' \
    'k = at(2, "epoch"); e = dict(ev[k]); del e["state"]; lines[k] = e; bad = k'
damaged j_epoch_repeats 'epoch 1 of trial 0 comes after its epoch 1: epochs go backwards or repeat' \
    'k = at(0, "epoch"); lines.insert(k + 1, lines[k]); bad = k + 1'
damaged j_epoch_backwards 'epoch 1 of trial 0 comes after its epoch 2: epochs go backwards or repeat' \
    'k = at(0, "epoch"); lines[k + 1:k + 1] = [dict(ev[k], epoch=2), lines[k]]; bad = k + 2'
damaged j_epoch_before_start "an epoch's report of trial 3 before its start" \
    'k = at(3, "epoch"); s = at(3, "start"); lines.insert(s, lines.pop(k)); bad = s'
damaged j_end_before_start 'an event of trial 3 before its start' \
    'k = at(3, "end"); s = at(3, "start"); lines.insert(s, lines.pop(k)); bad = s'
damaged j_two_ends 'an event of trial 1 after its end' \
    'k = at(1, "end"); lines.insert(k + 1, lines[k]); bad = k + 1'
damaged j_epoch_after_end 'an event of trial 0 after its end' \
    'k = at(0, "end"); lines.insert(k + 1, dict(ev[at(0, "epoch")], epoch=3)); bad = k + 1'
damaged j_second_start 'trial 2 starts a second time' \
    'k = at(2, "start"); lines.insert(k + 1, lines[k]); bad = k + 1'
damaged j_accuracy_high '"dev_accuracy" is 1.5, outside [0, 1]' \
    'k = at(1, "epoch"); lines[k] = dict(ev[k], dev_accuracy=1.5); bad = k'
damaged j_accuracy_negative '"dev_accuracy" is -0.1, outside [0, 1]' \
    'k = at(1, "end"); lines[k] = dict(ev[k], dev_accuracy=-0.1); bad = k'
damaged j_accuracy_text '"dev_accuracy" must be a number' \
    'k = at(1, "epoch"); lines[k] = dict(ev[k], dev_accuracy="high"); bad = k'
damaged j_seconds_negative '"seconds" is -3: it cannot be negative' \
    'k = at(0, "epoch"); lines[k] = dict(ev[k], seconds=-3); bad = k'
damaged j_seconds_backwards '"seconds" is 0.0001, but trial 0 had run' \
    'k = at(0, "end"); lines[k] = dict(ev[k], seconds=0.0001); bad = k'
damaged j_loss_negative '"dev_loss" is -1: it cannot be negative' \
    'k = at(0, "end"); lines[k] = dict(ev[k], dev_loss=-1); bad = k'
damaged j_epoch_beyond 'epoch 4 of a trial of 3 epochs' \
    'k = at(0, "epoch"); lines.insert(k + 1, dict(ev[k], epoch=4)); bad = k + 1'
damaged j_planned_changes 'trial 0 was to run 3 epochs, now 5' \
    'k = at(0, "epoch"); lines.insert(k + 1, dict(ev[k], epoch=2, epochs_planned=5)); bad = k + 1'
damaged j_epochs_of_end 'trial 2 ends after 7 epochs of the 3 it was to run' \
    'k = at(2, "end"); lines[k] = dict(ev[k], epochs=7); bad = k'
damaged j_failed_no_reason '"reason" must say why (a string)' \
    'k = at(1, "end"); lines[k] = dict(ev[k], state="failed"); bad = k'
damaged j_round_high '"round" must be a whole number from 1 to 1' \
    'k = next(k for k, e in enumerate(ev) if "space" in e); lines[k] = dict(ev[k], round=2); bad = k'
damaged j_round_of_trial 'trial 3 is in round 1 of this study, not 0' \
    'k = at(3, "start"); lines[k] = dict(ev[k], round=0); bad = k'
damaged j_round_space '"space": ' \
    'k = next(k for k, e in enumerate(ev) if "space" in e); lines[k] = dict(ev[k], space="lr=lg(1,2)"); bad = k'
damaged j_params_outside 'params: "lr" is not a value of the study'"'"'s space' \
    'k = at(1, "start"); e = dict(ev[k]); e["params"] = dict(e["params"], lr=5); lines[k] = e; bad = k'
damaged j_params_choice 'params: "batch-size" is not a value of the study'"'"'s space' \
    'k = at(1, "start"); e = dict(ev[k]); e["params"] = dict(e["params"], **{"batch-size": "48"}); lines[k] = e; bad = k'
damaged j_params_extra 'params: "units" is not a parameter of the study'"'"'s space' \
    'k = at(1, "start"); e = dict(ev[k]); e["params"] = dict(e["params"], units=8); lines[k] = e; bad = k'
damaged j_params_differ 'params differ from those trial 1 started with' \
    'k = at(1, "end"); e = dict(ev[k]); e["params"] = dict(ev[at(1, "start")]["params"], lr=0.05); lines[k] = e; bad = k'
damaged j_not_json 'not valid JSON' 'k = at(2, "epoch"); lines[k] = "not json"; bad = k'
damaged j_no_kind 'neither a trial'"'"'s event (no "trial") nor a round'"'"'s (no "round")' \
    'k = at(2, "epoch"); lines.insert(k, {"state": "running"}); bad = k'

# A last line cut short by a crash is no damage: both leave it out.
rm -rf torn
cp -r r2 torn
printf '{"trial":3,"state":"comp' >>torn/journal.jsonl
expect_exit 0 "a torn last line: nabla report reads the rest" report torn
expect_exit 0 "a torn last line: the tuner cuts it off" "${R2[@]}" --out torn
check "a torn last line: cut off" cmp -s r2/journal.jsonl torn/journal.jsonl

echo "test_study_faults: $((SECONDS - STARTED)) s"
finish

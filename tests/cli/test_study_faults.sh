#!/bin/bash
# nabla tune under faults. An accident is not a conclusion: a trial killed (kill -9, as the OOM
# killer does), stopped from outside (SIGTERM, SIGINT), cut short by a full disk or a read-only
# file system, or left without its data is interrupted, not failed: the study stops with one
# line that says so, and the same command ends with exactly the uninterrupted study's trials. A
# trial fails only for what it is responsible for (its loss diverged, its configuration is bad),
# with its reason, and the study goes on. A file of the study's own that cannot be written stops
# the study at once, naming it. study.json deleted. Journals damaged with every kind of
# nonsense, and study.json, best.json and trials/ that make no sense or disagree with the
# journal, read by the tuner and by `nabla report` as one reader. Needs root (tmpfs and bind
# mounts).
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

# own_pid PATTERN: the process whose command line matches PATTERN (pgrep -f) and that runs in
# this test's working directory (another test running at once has its own).
own_pid() {
    local pid here
    here=$(cd "$WORK" && pwd -P)
    for pid in $(pgrep -f -- "$1"); do
        [ "$(readlink "/proc/$pid/cwd" 2>/dev/null)" = "$here" ] && echo "$pid" && return 0
    done
    return 1
}
# trial_pid DIR N: the process of trial N of study DIR.
trial_pid() { own_pid "$1/trials/$2 --threads"; }

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
# status. Returns 1 when trial 1 had ended before it could be caught, or when the study ended
# anyway: on a slow or loaded machine the signal may land after the trial's last step, when
# the run is complete and writes its results (as it should) rather than a checkpoint.
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
    [ "$RC" -ne 0 ] || caught=1
    return $caught
}

for case in "KILL:killed by SIGKILL: out of memory, or killed by someone)" \
            "TERM:stopped by SIGTERM after " "INT:stopped by SIGINT after " \
            "HUP:stopped by SIGHUP after "; do
    sig=${case%%:*} why=${case#*:} dir=sig${case%%:*}
    caught=no
    for attempt in 1 2 3 4 5; do
        interrupt "$sig" "$dir" && caught=yes && break
    done
    check "SIG$sig: trial 1 caught running (within 5 attempts)" [ $caught = yes ]
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

# ---- the tuner itself stopped: SIGHUP, and SIGTERM while a trial is frozen ---------------------
# watchdog PID: kills PID after 120 s, a safety net that turns a hang into a failed check
# (exit 137), never a pass; the caller kills the watchdog (by its pid) once PID has ended.
watchdog() { (sleep 120 && kill -KILL "$1") >/dev/null 2>&1 & WATCHDOG=$!; }
# stop_tuner SIGNAL DIR FREEZE: runs the study in DIR and, once trial 1 has reported an epoch,
# freezes trial 1 (SIGSTOP) if FREEZE is 1, then sends the tuner SIGNAL; RC is its exit status.
stop_tuner() {
    local sig=$1 dir=$2 freeze=$3 tuner pid
    rm -rf "$dir"
    "$NABLA" "${STUDY[@]}" --out "$dir" >"$WORK/stdout" 2>"$WORK/stderr" &
    tuner=$!
    watchdog "$tuner"
    wait_until reported "$dir" 1 && pid=$(trial_pid "$dir" 1) &&
        { [ "$freeze" -eq 0 ] || kill -STOP "$pid"; } && kill "-$sig" "$tuner"
    wait "$tuner"
    RC=$?
    kill "$WATCHDOG" 2>/dev/null
}
for case in "HUP:129:0" "TERM:143:1" "HUP:129:1" "INT:130:1"; do
    IFS=: read -r sig code freeze <<<"$case"
    dir=tuner-$sig-$freeze
    what="the tuner gets SIG$sig$([ "$freeze" -eq 1 ] && echo ", trial 1 frozen (SIGSTOP)")"
    stop_tuner "$sig" "$dir" "$freeze"
    check "$what: exit $code (got $RC; $(head -c 300 "$WORK/stderr"))" [ "$RC" -eq "$code" ]
    check "$what: says the study stopped and how to continue" \
        grep -q "^nabla: study stopped; the running trials kept their checkpoints" "$WORK/stderr"
    check "$what: no trial process left (a frozen one was woken to stop)" no_trials_left "$dir"
    check "$what: nothing failed or ended ($(cat "$WORK/report.err"))" journal_ok "$dir"
    check "$what: no best.json" absent "$dir/best.json"
    resumes "$dir" ref "${STUDY[@]}"
done

# ---- the study's own files removed or replaced while it runs ------------------------------------
# The tuner checks at each journal line (and before best.json) that journal.jsonl and
# study.json are the files it left: otherwise it stops at once (exit 1), naming the file, and
# never finishes (exit 0, best.json) a study nothing could read back.
for change in "rm-journal:rm DIR/journal.jsonl:journal.jsonl" \
              "swap-journal:cp DIR/journal.jsonl DIR/j.new && mv DIR/j.new DIR/journal.jsonl:journal.jsonl" \
              "append-journal:echo >>DIR/journal.jsonl:journal.jsonl" \
              "rm-settings:rm DIR/study.json:study.json" \
              "swap-settings:cp DIR/study.json DIR/s.new && mv DIR/s.new DIR/study.json:study.json"; do
    IFS=: read -r name how file <<<"$change"
    dir=files-$name
    rm -rf "$dir"
    "$NABLA" "${STUDY[@]}" --out "$dir" >"$WORK/stdout" 2>"$WORK/stderr" &
    tuner=$!
    watchdog "$tuner"
    changed=no
    wait_until reported "$dir" 1 && bash -c "${how//DIR/$dir}" && changed=yes
    wait "$tuner"
    RC=$?
    kill "$WATCHDOG" 2>/dev/null
    check "$name: changed while trial 1 ran" [ $changed = yes ]
    check "$name: the study stops, exit 1 (got $RC)" [ "$RC" -eq 1 ]
    check "$name: one line naming $file ($(head -c 300 "$WORK/stderr"))" \
        one_line_error "nabla: $dir/$file was removed, replaced or changed by another process"
    check "$name: no best.json, no leaderboard" \
        eval 'absent "$dir/best.json" && ! grep -q "^best:" "$WORK/stdout"'
    check "$name: no trial process left" no_trials_left "$dir"
done

# ---- a full disk under the journal: the reason is the disk's --------------------------------
# The study directory on a disk of 300 kB, nearly full, its trials on a disk of their own: the
# journal's append is cut short, and the rest of it is tried again, which says why (ENOSPC).
if check "journal full disk: the tmpfs mounts" eval 'mount_tmpfs jfull 300k &&
        mkdir -p jfull/s/trials && mount_tmpfs jfull/s/trials 20m'; then
    head -c $((288 * 1024)) /dev/zero >jfull/filler 2>/dev/null
    expect_exit 1 "journal full disk: the study stops" tune --data moons --samples 2000 \
        --epochs 3 --layers 64,64 --space "lr=log(1e-3,1e-1)" --trials 6 --workers 2 --quiet \
        --out jfull/s
    check "journal full disk: the reason is the full disk ($(head -c 300 "$WORK/stderr"))" \
        grep -q "^nabla: jfull/s/journal.jsonl: cannot append: No space left on device" "$WORK/stderr"
    check "journal full disk: every journal line is whole" \
        pytrue "open('jfull/s/journal.jsonl', 'rb').read()[-1:] in (b'', b'\\n')"
    check "journal full disk: no trial process left" no_trials_left jfull/s
fi

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
    failed_with bad_usage 0 "--trace-layer 2: the model has activation layers 1 to 1"
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
# A complete trial that ran its epochs: not one fewer (its last report taken out, its end
# made the epoch before's), with no --max-steps to stop it early.
damaged j_complete_short 'trial 1 complete after 2 epochs, but it was to run 3 and has no --max-steps' \
    'k2, k3 = (next(k for k, e in enumerate(ev) if e.get("trial") == 1 and e.get("epoch") == n) for n in (2, 3))
end = at(1, "end")
lines[end] = dict(ev[end], epochs=2, dev_accuracy=ev[k2]["dev_accuracy"], dev_loss=ev[k2]["dev_loss"])
del lines[k3]; bad = end - 1'
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

# Names twice in one object: cJSON would take the first; both readers refuse the line.
damaged j_dup_trial '"trial" appears twice' \
    'k = at(1, "epoch"); lines[k] = json.dumps(ev[k]).replace("{\"trial\": 1,", "{\"trial\": 0, \"trial\": 1,", 1); bad = k'
damaged j_dup_accuracy '"dev_accuracy" appears twice' \
    'k = at(0, "epoch"); lines[k] = json.dumps(ev[k])[:-1] + ", \"dev_accuracy\": 0.99}"; bad = k'
damaged j_dup_state '"state" appears twice' \
    'k = at(2, "end"); lines[k] = json.dumps(ev[k])[:-1] + ", \"state\": \"failed\"}"; bad = k'
damaged j_dup_params '"lr" appears twice in "params"' \
    'k = at(1, "start"); lines[k] = json.dumps(ev[k]).replace("\"params\": {", "\"params\": {\"lr\": 0.5, ", 1); bad = k'
# An end says what the trial reported: the dev accuracy (and loss) of its last epoch.
damaged j_complete_accuracy '"dev_accuracy" is 0.123456, but the trial reported' \
    'k = at(1, "end"); lines[k] = dict(ev[k], dev_accuracy=0.123456); bad = k'
damaged j_complete_loss '"dev_loss" is 5, but the trial reported' \
    'k = at(0, "end"); lines[k] = dict(ev[k], dev_loss=5); bad = k'
damaged j_complete_early 'trial 3 complete after 2 epochs, but it reported epoch 3' \
    'k = at(3, "end"); lines[k] = dict(ev[k], epochs=2); bad = k'
# epochs_planned is the trial's --epochs (3 here), from its params and the study's settings.
damaged j_planned_all 'trial 0 was to run 3 epochs, now 50' \
    'ks = [k for k, e in enumerate(ev) if e.get("trial") == 0 and "epoch" in e]
for k in ks: lines[k] = dict(ev[k], epochs_planned=50)
bad = ks[0]'
damaged j_planned_fewer 'trial 2 was to run 3 epochs, now 2' \
    'k = at(2, "epoch"); lines[k] = dict(ev[k], epochs_planned=2); bad = k'
# args are what its params and the settings give.
damaged j_args_lr '"args" are not those its params and the study'"'"'s settings give: argument' \
    'k = at(0, "start"); e = dict(ev[k]); a = list(e["args"]); i = a.index("--lr"); a[i + 1] = "0.5"; e["args"] = a; lines[k] = e; bad = k'
damaged j_args_params '"args" are not those its params and the study'"'"'s settings give: argument' \
    'k = at(2, "start"); e = dict(ev[k]); e["params"] = dict(e["params"], **{"batch-size": "64" if e["params"]["batch-size"] == "32" else "32"}); lines[k] = e
for j, f in enumerate(ev):
    if f.get("trial") == 2 and "params" in f and j != k: lines[j] = dict(f, params=e["params"])
bad = k'
damaged j_args_epochs '"args" are not those its params and the study'"'"'s settings give: argument' \
    'k = at(1, "start"); e = dict(ev[k]); a = list(e["args"]); i = a.index("--epochs"); a[i + 1] = "50"; e["args"] = a; lines[k] = e; bad = k'

# A last line without its newline is left out only when it begins an event.
tail_refused() {   # NAME BYTES WHAT
    rm -rf "$1"
    cp -r r2 "$1"
    printf "$2" >>"$1/journal.jsonl"
    local line=$(($(wc -l <r2/journal.jsonl) + 1))
    cp "$1/journal.jsonl" journal.before
    expect_exit 1 "$1: the tuner refuses" "${R2[@]}" --out "$1"
    check "$1: the tuner names $1/journal.jsonl:$line ($(head -c 300 "$WORK/stderr"))" \
        one_line_error "nabla: $1/journal.jsonl:$line: $3"
    check "$1: the tuner left the journal alone" cmp -s journal.before "$1/journal.jsonl"
    expect_exit 1 "$1: nabla report refuses" report "$1"
    check "$1: report names $1/journal.jsonl:$line ($(head -c 300 "$WORK/stderr"))" \
        one_line_error "nabla: $1/journal.jsonl:$line: $3"
}
NOT_BEGUN="the last line has no newline and is not the beginning of a line of this file"
tail_refused j_junk 'GARBAGE{{{' "$NOT_BEGUN"
tail_refused j_binary '\001\377\376{"trial":' "$NOT_BEGUN"
tail_refused j_other_file '{"epoch":3,"lr":0.1' "$NOT_BEGUN"
tail_refused j_broken_json '{"trial":3,"state":"complete",,' "$NOT_BEGUN"
tail_refused j_blank '   ' "$NOT_BEGUN"
rm -rf torn_round
cp -r r2 torn_round
printf '{"round":1,"space":"lr=log(0.0' >>torn_round/journal.jsonl
expect_exit 0 "a torn round event: nabla report reads the rest" report torn_round

# ---- the study's other files, read by both as one: study.json, best.json, trials/ -----------------
# study_refused NAME MESSAGE SHELL [best]: a copy of r2 that SHELL damages (in NAME); the tuner
# and nabla report both exit 1 with one line "nabla: NAME/MESSAGE..." and write nothing. With
# "best", the damage is best.json's, the tuner's output: report refuses it, and the tuner writes
# it again from the journal (as r2's); with "report", report alone is tried.
# same_best A B: two best.json alike but for their commands (each names its own directory).
same_best() {
    "$PY" -c 'import json, sys
a, b = (json.load(open(f)) for f in sys.argv[1:3])
a.pop("command"); b.pop("command")
for k in sorted(set(a) | set(b)):
    if a.get(k) != b.get(k):
        print("%s: %r, not %r" % (k, b.get(k), a.get(k)))
sys.exit(a != b)' "$1" "$2"
}
study_refused() {
    local name=$1 message=$2 who=${4:-both}
    rm -rf "$name"
    cp -r r2 "$name"
    (cd "$name" && eval "$3")
    local before
    before=$(cd "$name" && find . -type f ! -name .lock -exec md5sum {} + | sort | md5sum)
    expect_exit 1 "$name: nabla report refuses" report "$name"
    check "$name: report says '$name/$message' ($(head -c 300 "$WORK/stderr"))" \
        one_line_error "nabla: $name/$message"
    check "$name: no report written" absent "$name/report.html"
    if [ "$who" = best ]; then
        expect_exit 0 "$name: the tuner writes best.json again" "${R2[@]}" --out "$name"
        check "$name: best.json as the study's" same_best r2/best.json "$name/best.json"
    elif [ "$who" = both ]; then
        expect_exit 1 "$name: the tuner refuses" "${R2[@]}" --out "$name"
        check "$name: the tuner says '$name/$message' ($(head -c 300 "$WORK/stderr"))" \
            one_line_error "nabla: $name/$message"
        check "$name: the tuner wrote nothing" \
            [ "$(cd "$name" && find . -type f ! -name .lock -exec md5sum {} + | sort | md5sum)" = "$before" ]
    fi
}
# set_json FILE KEY JSON: member KEY of a JSON file set (as nabla writes JSON: a member a line).
set_json() {
    "$PY" -c 'import json, sys
obj = json.load(open(sys.argv[1])); obj[sys.argv[2]] = json.loads(sys.argv[3])
open(sys.argv[1], "w").write(json.dumps(obj, indent="\t") + "\n")' "$@"
}
line_of() { grep -n "\"$2\"" "$1" | head -1 | cut -d: -f1; }
BEST=$("$PY" -c 'import json; print(json.load(open("r2/best.json"))["trial"])')
SECOND=$("$PY" -c '
import json
ends = [e for e in map(json.loads, open("r2/journal.jsonl")) if e.get("state") == "complete"]
ends.sort(key=lambda e: (-e["dev_accuracy"], e["dev_loss"], e["trial"]))
print(ends[1]["trial"])')
LB=$(line_of r2/best.json trial)
study_refused b_trial_99 "best.json:$LB: \"trial\" is 99, but the best complete trial of journal.jsonl is $BEST" \
    'set_json best.json trial 99' best
study_refused b_trial_other "best.json:$LB: \"trial\" is $SECOND, but the best complete trial of journal.jsonl is $BEST" \
    "set_json best.json trial $SECOND" best
study_refused b_trial_null "best.json:$LB: \"trial\" is null, but the best complete trial" \
    'set_json best.json trial null' best
study_refused b_accuracy_2 "best.json:$(line_of r2/best.json dev_accuracy): \"dev_accuracy\" is 2, expected a number in [0, 1]" \
    'set_json best.json dev_accuracy 2' best
study_refused b_accuracy_other "best.json:$(line_of r2/best.json dev_accuracy): \"dev_accuracy\" is 0.5, but trial $BEST ended with" \
    'set_json best.json dev_accuracy 0.5' best
study_refused b_epochs "best.json:$(line_of r2/best.json epochs): \"epochs\" is 2, but trial $BEST ended with 3" \
    'set_json best.json epochs 2' best
study_refused b_empty 'best.json: "trials" is missing' 'echo "{}" >best.json' best
study_refused b_array 'best.json:1: expected a JSON object' 'echo "[]" >best.json' best
# A trial's own run against the journal: the dev figures of its metrics.jsonl's epochs and of
# its summary.json are the ones the journal has for it.
TL=$(line_of r2/trials/2/summary.json dev_accuracy)
study_refused t_metrics_dev "trials/2/metrics.jsonl:3: \"dev_accuracy\" is 0.12, but journal.jsonl has" \
    "$PY"' -c "import json; p = \"trials/2/metrics.jsonl\"; l = open(p).read().splitlines()
e = json.loads(l[2]); e[\"dev_accuracy\"] = 0.12; l[2] = json.dumps(e)
open(p, \"w\").write(\"\n\".join(l) + \"\n\")"'
study_refused t_metrics_loss "trials/1/metrics.jsonl:1: \"dev_loss\" is 9, but journal.jsonl has" \
    "$PY"' -c "import json; p = \"trials/1/metrics.jsonl\"; l = open(p).read().splitlines()
e = json.loads(l[0]); e[\"dev_loss\"] = 9; l[0] = json.dumps(e)
open(p, \"w\").write(\"\n\".join(l) + \"\n\")"'
study_refused t_summary_dev "trials/2/summary.json:$TL: \"dev_accuracy\" is 0.12, but journal.jsonl has" \
    'set_json trials/2/summary.json dev_accuracy 0.12'
# Legitimate studies: pruned by asha, and trials that --max-steps completes before --epochs.
for legit in "--prune asha --rounds 2" "--max-steps 3 --samples 300"; do
    rm -rf legit_study
    # shellcheck disable=SC2086  # the options are words
    expect_exit 0 "a study with $legit" tune --data moons --epochs 3 --trials 4 --space "$SPACE" \
        --quiet $legit --out legit_study
    expect_exit 0 "report of a study with $legit (stderr: $(head -c 300 "$WORK/stderr"))" \
        report legit_study
    # shellcheck disable=SC2086
    expect_exit 0 "the study with $legit, run again" tune --data moons --epochs 3 --trials 4 \
        --space "$SPACE" --quiet $legit --out legit_study
done
study_refused b_complete "best.json:$(line_of r2/best.json complete): \"complete\" is 9, but journal.jsonl has 4 complete trials" \
    'set_json best.json complete 9' best
study_refused b_trials "best.json:$(line_of r2/best.json trials): \"trials\" is 5, but the study has 4 (study.json)" \
    'set_json best.json trials 5' best
study_refused b_params "best.json:$(line_of r2/best.json params): \"params\" are not those trial $BEST started with" \
    'set_json best.json params "{\"lr\": 0.01, \"batch-size\": \"32\"}"' best
study_refused b_model "best.json:$(line_of r2/best.json model): \"model\" is \"/etc/passwd\", but the best trial's is trials/$BEST/model.safetensors" \
    'set_json best.json model "\"/etc/passwd\""' best
study_refused b_importance "best.json:$(line_of r2/best.json importance): \"importance\" has \"units\", which is not a parameter of the study's space" \
    'set_json best.json importance "{\"lr\": 0.5, \"batch-size\": 0.1, \"units\": 0.2}"' best
study_refused b_importance_range "best.json:$(line_of r2/best.json importance): \"importance\": \"lr\" must be a share in [0, 1] or null" \
    'set_json best.json importance "{\"lr\": 7, \"batch-size\": 0.1}"' best
study_refused b_dup "best.json:$((LB + 1)): \"trial\" appears twice" \
    "sed -i '${LB}s/\$/\\n\t\"trial\":\t0,/' best.json" best
study_refused b_seconds "best.json:$(line_of r2/best.json trial_seconds): \"trial_seconds\" is 99999, but the trials of journal.jsonl ran" \
    'set_json best.json trial_seconds 99999' best
# The journal emptied or gone while the trials' runs and best.json are there: best.json is the
# study's last word, written when every trial had finished.
for how in "emptied:: >journal.jsonl" "gone:rm journal.jsonl" "alone:: >journal.jsonl && rm -r trials"; do
    study_refused "b_journal_${how%%:*}" \
        "best.json: the study's last word, but trial 0 has not finished in journal.jsonl (it never started)" \
        "${how#*:}" report
done
study_refused b_unfinished "best.json: the study's last word, but trial 3 has not finished in journal.jsonl (running)" \
    "sed -i '/\"trial\":3,\"state\":\"complete\"/d' journal.jsonl" report
# trials/ is the trials' run directories.
study_refused t_file "trials: is a regular file, but a study keeps its trials' run directories there" \
    'rm -r trials && echo x >trials'
study_refused t_beyond "trials/7: trial 7, but the study has 4 trials (study.json)" \
    'cp -r trials/0 trials/7'
# study.json as tune reads its own options: what tune would refuse on its command line.
study_refused s_seed "study.json:$(line_of r2/study.json seed): \"seed\": --seed expects a non-negative integer, got 'banana'" \
    'set_json study.json seed "\"banana\""'
study_refused s_seed_number "study.json:$(line_of r2/study.json seed): \"seed\" must be a string" \
    'set_json study.json seed 7'
study_refused s_dev_fraction "study.json:$(line_of r2/study.json dev_fraction): \"dev_fraction\": --dev-fraction must be in (0, 1)" \
    'set_json study.json dev_fraction "\"7\""'
study_refused s_prune "study.json:$(line_of r2/study.json prune): \"prune\": --prune expects none, median or asha, got 'bogus'" \
    'set_json study.json prune "\"bogus\""'
study_refused s_sampler "study.json:$(line_of r2/study.json sampler): \"sampler\": --sampler expects random, grid or tpe, got 'bogus'" \
    'set_json study.json sampler "\"bogus\""'
study_refused s_fixed_numbers "study.json:$(line_of r2/study.json fixed): \"fixed\" must be an array of strings" \
    'set_json study.json fixed "[7, \"--data\", \"moons\"]"'
study_refused s_fixed_train "study.json:$(line_of r2/study.json fixed): \"fixed\": --epochs must be >= 0, got -1" \
    'set_json study.json fixed "[\"--data\", \"moons\", \"--epochs\", \"-1\"]"'
study_refused s_fixed_own "study.json:$(line_of r2/study.json fixed): \"fixed\": '--trials' is not a train option held fixed" \
    'set_json study.json fixed "[\"--trials\", \"5\"]"'
study_refused s_rounds "study.json:$(line_of r2/study.json rounds): \"rounds\": --rounds 3 needs at least 2 trials a round" \
    'set_json study.json rounds 3'
study_refused s_space "study.json:$(line_of r2/study.json space): \"space\": --space: " \
    'set_json study.json space "\"lr=lg(1,2)\""'
study_refused s_dup_trials "study.json:$(($(line_of r2/study.json trials) + 1)): \"trials\" appears twice" \
    "sed -i '$(line_of r2/study.json trials)s/\$/\\n\t\"trials\":\t4,/' study.json"
drop_json() {   # FILE KEY: member KEY of a JSON file taken out
    "$PY" -c 'import json, sys
obj = json.load(open(sys.argv[1])); del obj[sys.argv[2]]
open(sys.argv[1], "w").write(json.dumps(obj, indent="\t") + "\n")' "$@"
}
study_refused s_missing 'study.json: "prune" is missing' 'drop_json study.json prune'
study_refused b_missing 'best.json: "importance" is missing' 'drop_json best.json importance' best
study_refused b_missing_best "best.json: \"params\" is missing (\"trial\" is $BEST)" 'drop_json best.json params' best

# A last line cut short by a crash is no damage: both leave it out.
rm -rf torn
cp -r r2 torn
printf '{"trial":3,"state":"comp' >>torn/journal.jsonl
expect_exit 0 "a torn last line: nabla report reads the rest" report torn
expect_exit 0 "a torn last line: the tuner cuts it off" "${R2[@]}" --out torn
check "a torn last line: cut off" cmp -s r2/journal.jsonl torn/journal.jsonl

# A stop during the test evaluation of the best model, at the study's very end: an interruption
# like any other (exit 130, the evaluation stopped too, best.json not written), and the same
# command evaluates the best model and writes best.json. The evaluation is held with SIGSTOP
# while the tuner alone gets the signal, as from kill or a scheduler.
EVALED=(tune --data moons --samples 4000000 --layers 16 --max-steps 1 --epochs 1
        --space "lr=log(1e-3,1e-1)" --trials 2 --workers 2 --quiet --out evaled)
"$NABLA" "${EVALED[@]}" >evaled.out 2>evaled.err &
TUNER=$!
# eval_pid: the tuner's test evaluation.
eval_pid() { own_pid "eval --model evaled/trials/"; }
if wait_until eval_pid >/dev/null; then
    EVAL=$(eval_pid)
    kill -STOP "$EVAL"
    kill -INT "$TUNER"
    sleep 0.3
    kill -CONT "$EVAL"
    wait "$TUNER"
    rc=$?
    check "Ctrl-C during the test evaluation: exit 130 (got $rc: $(head -c 300 evaled.err))" [ "$rc" -eq 130 ]
    check "... one line saying what was stopped and how to finish (got: $(cat evaled.err))" \
        bash -c "[ \$(wc -l <evaled.err) -eq 1 ] && grep -q '^nabla: stopped by SIGINT during the test evaluation of the best model; every trial has finished: run the same command again to evaluate it and write evaled/best.json\$' evaled.err"
    check "... the evaluation stopped too" wait_until bash -c "! kill -0 $EVAL 2>/dev/null"
    check "... no best.json" absent evaled/best.json
    run "${EVALED[@]}"
    check "the same command again: exit 0 (got $RC: $(head -c 300 "$WORK/stderr"))" [ "$RC" -eq 0 ]
    check "... best.json with the test accuracy" \
        pytrue "isinstance(json.load(open('evaled/best.json'))['test_accuracy'], float)"
else
    fail "the tuner's test evaluation was never seen running"
    kill -9 "$TUNER"
fi

# ---- the tuner's own: trials/, a trial holding another run, the data cache, a log it cannot write -
TINY=(tune --data moons --samples 200 --epochs 2 --layers 8 --trials 2 --workers 1
      --space "lr=log(1e-3,1e-1)" --quiet)
run "${TINY[@]}" --out own
check "a tiny study (exit $RC)" [ "$RC" -eq 0 ]
cp own/journal.jsonl own.journal
# STUDY/trials/ and anything under it is the tuner's: no other command writes or continues there.
trials_refused() {   # trials_refused DESCRIPTION EXPECTED ARGS...
    local desc=$1 said=$2
    shift 2
    run "$@"
    check "$desc: exit 1 (got $RC)" [ "$RC" -eq 1 ]
    check "$desc: refused (got: $(head -c 300 "$WORK/stderr"))" one_line_error "$said"
}
OWN=$PWD/own
trials_refused "train --out STUDY/trials/N (new)" "nabla: --out own/trials/7: is a trial's directory of the study $OWN, which nabla tune runs; give another directory" \
    train --data moons --epochs 1 --layers 8 --out own/trials/7
trials_refused "train --out STUDY/trials/N (a trial's)" "nabla: --out own/trials/1: is a trial's directory of the study $OWN" \
    train --data moons --epochs 1 --layers 8 --out own/trials/1
trials_refused "train --out STUDY/trials" "nabla: --out own/trials: is the study $OWN's trials/, which nabla tune runs" \
    train --data moons --epochs 1 --layers 8 --out own/trials
trials_refused "train --out inside a trial" "nabla: --out own/trials/0/sub: is inside the study $OWN's trials/" \
    train --data moons --epochs 1 --layers 8 --out own/trials/0/sub
trials_refused "train --resume STUDY/trials/N" "nabla: --resume own/trials/1: is a trial's directory of the study $OWN, which nabla tune runs; nabla train does not continue it" \
    train --resume own/trials/1 --epochs 5
trials_refused "tune --out STUDY/trials/N" "nabla: --out own/trials/5: is a trial's directory in the study $OWN's trials/" \
    "${TINY[@]}" --out own/trials/5
trials_refused "--save-weights STUDY/trials/N" "nabla: --save-weights own/trials/3: is a file of the study $OWN's trials/ (nabla tune's)" \
    train --data moons --epochs 1 --layers 8 --out own-w --save-weights own/trials/3
trials_refused "--save-weights in a trial's directory" "nabla: --save-weights own/trials/0/w.safetensors: is a file of the study $OWN's trials/" \
    train --data moons --epochs 1 --layers 8 --out own-w --save-weights own/trials/0/w.safetensors
trials_refused "report --out STUDY/trials/N" "nabla: --out own/trials/7: is a file of the study $OWN's trials/" \
    report own/trials/0 --out own/trials/7
trials_refused "report --out STUDY/trials/report.html" "nabla: --out own/trials/report.html: is a file of the study $OWN's trials/" \
    report own/trials/0 --out own/trials/report.html
ln -s own/trials/4 trial-link
trials_refused "--save-weights through a link into trials/" "nabla: --save-weights trial-link: leads to $OWN/trials/4, a file of the study $OWN's trials/" \
    train --data moons --epochs 1 --layers 8 --out own-w --save-weights trial-link
check "the study's trials/ is untouched" [ "$(ls own/trials | tr '\n' ' ')" = "0 1 " ]
check "... its journal too" cmp -s own/journal.jsonl own.journal
expect_exit 0 "report STUDY after them" report own --out own.html
expect_exit 0 "the same tune command after them" "${TINY[@]}" --out own
# A trial's directory holding another run's checkpoint is not continued as the trial.
run train --data moons --samples 200 --epochs 2 --layers 4 --quiet --out foreign-run
mkdir -p foreign/trials/0
cp foreign-run/checkpoint*.safetensors foreign-run/config.json foreign-run/metrics.jsonl foreign/trials/0/
run "${TINY[@]}" --out foreign
check "a trial's directory holding another run: exit 1 (got $RC)" [ "$RC" -eq 1 ]
check "... says so (got: $(head -c 400 "$WORK/stderr"))" \
    one_line_error "nabla: foreign/trials/0 holds a run that is not trial 0's (its checkpoint's "
check "... and what to do" grep -q "which the tuner does not continue: move foreign/trials/0 away (or remove it), and the same command runs trial 0 from its start$" "$WORK/stderr"
check "... the other run's checkpoint untouched" cmp -s foreign/trials/0/checkpoint.safetensors foreign-run/checkpoint.safetensors
mv foreign/trials/0 foreign-moved
expect_exit 0 "... moved away, the same command runs the study" "${TINY[@]}" --out foreign
# The decompressed data/ of gzip'd IDX data, damaged: said, and decompressed again.
"$PY" - <<'EOF'
import gzip, os, struct
os.makedirs("gz")
for split, n in (("train", 60), ("t10k", 20)):
    img = struct.pack(">IIII", 0x803, n, 2, 2) + bytes((i * 37) % 256 for i in range(n * 4))
    lab = struct.pack(">II", 0x801, n) + bytes(i % 3 for i in range(n))
    with gzip.open(f"gz/{split}-images-idx3-ubyte.gz", "wb") as f:
        f.write(img)
    with gzip.open(f"gz/{split}-labels-idx1-ubyte.gz", "wb") as f:
        f.write(lab)
EOF
GZ=(tune --data gz --epochs 1 --layers 4 --trials 2 --workers 1 --space "lr=log(1e-3,1e-1)" --quiet --out gzst)
expect_exit 0 "a study of gzip'd IDX data" "${GZ[@]}"
gunzip -c gz/train-labels-idx1-ubyte.gz >labels.ref
gunzip -c gz/train-images-idx3-ubyte.gz >images.ref
check "its data/ holds the data decompressed" cmp -s gzst/data/train-labels-idx1-ubyte labels.ref
truncate -s 20 gzst/data/train-labels-idx1-ubyte
printf 'XXXX' | dd of=gzst/data/train-images-idx3-ubyte conv=notrunc status=none
run "${GZ[@]}"
check "data/ damaged, the same command: exit 0 (got $RC; stderr: $(head -c 300 "$WORK/stderr"))" [ "$RC" -eq 0 ]
check "... says the cut copy does not match (got: $(head -c 400 "$WORK/stderr"))" \
    grep -qx "nabla: gzst/data/train-labels-idx1-ubyte does not match gz/train-labels-idx1-ubyte.gz (it has 20 bytes, the data 68): decompressing it again" "$WORK/stderr"
check "... and the copy with a bad header" grep -q "^nabla: gzst/data/train-images-idx3-ubyte does not match gz/train-images-idx3-ubyte.gz (.*): decompressing it again$" "$WORK/stderr"
check "... both decompressed again" bash -c "cmp -s gzst/data/train-labels-idx1-ubyte labels.ref && cmp -s gzst/data/train-images-idx3-ubyte images.ref"
# A trial that trained to its end but could not write its log (train.log on /dev/full): an
# interruption with its real reason, journaled; the same command finishes once it can.
mkdir -p fulllog/trials/0
ln -s /dev/full fulllog/trials/0/train.log
run "${TINY[@]}" --out fulllog
check "a trial whose train.log is /dev/full: exit 1 (got $RC)" [ "$RC" -eq 1 ]
check "... interrupted, with its exit status (got: $(head -c 400 "$WORK/stderr"))" \
    grep -q "^nabla: trial 0 was interrupted (it trained to its end, but exited with status 1 (see fulllog/trials/0/train.log))" "$WORK/stderr"
check "... the journal says the same" grep -q '"state":"interrupted","reason":"it trained to its end, but exited with status 1' fulllog/journal.jsonl
rm fulllog/trials/0/train.log
expect_exit 0 "... its log writable again, the same command finishes the study" "${TINY[@]}" --out fulllog

echo "test_study_faults: $((SECONDS - STARTED)) s"
finish

#!/bin/bash
# Crash-safe checkpoints and --resume, end to end. The yardstick everywhere is an uninterrupted
# run: whatever happens to a run (kill -9 at a random moment, SIGINT/SIGTERM, a damaged newest
# checkpoint, a full disk, more epochs asked for later), once resumed it must end with a
# model.safetensors byte-identical to the uninterrupted run's, and a metrics.jsonl with every
# epoch once, in order, holding the uninterrupted run's numbers.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

STARTED=$SECONDS
# A run of about half a second (a second under AddressSanitizer), most of it spent writing
# checkpoints when they come every 7 steps: 50 steps an epoch, 4 epochs.
EPOCHS=4
# shellcheck disable=SC2054  # the commas are in --layers 128,128
BASE=(train --data spirals --samples 6400 --layers 128,128 --batch-size 128 --seed 1
      --threads 1 --quiet)
TRAIN=("${BASE[@]}" --epochs "$EPOCHS")
# The test set of a synthetic set, for eval: the same data options as training.
EVAL_DATA=(--data spirals --samples 6400 --seed 1)
RESUME_OPTS=(--threads 1 --quiet)

# Milliseconds since the epoch.
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# epochs_once DIR [E]: metrics.jsonl has one JSON line per epoch 1..E, in order.
epochs_once() {
    "$PY" - "$1/metrics.jsonl" "${2:-$EPOCHS}" <<'EOF'
import json, sys
epochs = [json.loads(line)["epoch"] for line in open(sys.argv[1])]
assert epochs == list(range(1, int(sys.argv[2]) + 1)), epochs
EOF
}

# same_metrics DIR REF: every line of DIR/metrics.jsonl holds REF's numbers (all but the time).
same_metrics() {
    "$PY" - "$1/metrics.jsonl" "$2/metrics.jsonl" <<'EOF'
import json, math, sys
got, want = ([json.loads(line) for line in open(f)] for f in sys.argv[1:3])
assert len(got) == len(want), (len(got), len(want))
for g, w in zip(got, want):
    assert g.keys() == w.keys(), (g.keys(), w.keys())
    for k in w:
        if k == "seconds":
            continue
        if isinstance(w[k], float) and isinstance(g[k], (int, float)):
            assert math.isclose(g[k], w[k], rel_tol=1e-6), (w["epoch"], k, g[k], w[k])
        else:
            assert g[k] == w[k], (w["epoch"], k, g[k], w[k])
EOF
}

# same_summary DIR REF: summary.json describes the whole run as REF's does: epochs, steps,
# samples and the final test metrics.
same_summary() {
    "$PY" - "$1/summary.json" "$2/summary.json" <<'EOF'
import json, sys
got, want = (json.load(open(f)) for f in sys.argv[1:3])
for k in ("epochs", "steps", "samples", "test_accuracy", "test_loss", "train_loss", "diverged"):
    assert got.get(k) == want.get(k), (k, got.get(k), want.get(k))
EOF
}

# finished_like_ref DESCRIPTION DIR: the end state of a run that must equal the reference.
finished_like_ref() {
    local desc=$1 dir=$2
    check "$desc: model.safetensors is byte-identical to the uninterrupted run's" \
        cmp -s "$dir/model.safetensors" ref/model.safetensors
    check "$desc: metrics.jsonl has epochs 1..$EPOCHS once each, in order" epochs_once "$dir"
    check "$desc: metrics.jsonl holds the uninterrupted run's numbers" same_metrics "$dir" ref
    check "$desc: summary.json describes the whole run" same_summary "$dir" ref
}

# same_tensors A B: two safetensors files hold the same tensors, bit for bit (their metadata,
# which records times and the run directory, may differ).
same_tensors() {
    "$PY" - "$1" "$2" "$(cd "$HERE/.." && pwd)" <<'EOF'
import sys
sys.path.insert(0, sys.argv[3])
import safetensors_py
(a, _), (b, _) = (safetensors_py.read(f) for f in sys.argv[1:3])
assert a.keys() == b.keys(), (a.keys(), b.keys())
for name in a:
    assert a[name].dtype == b[name].dtype and a[name].tobytes() == b[name].tobytes(), name
EOF
}

# flip_byte FILE: inverts one byte in the middle of a safetensors file's tensor data.
flip_byte() {
    "$PY" - "$1" <<'EOF'
import struct, sys
raw = bytearray(open(sys.argv[1], "rb").read())
start = 8 + struct.unpack("<Q", raw[:8])[0]
assert start < len(raw), "no tensor data"
at = (start + len(raw)) // 2
raw[at] ^= 0xFF
open(sys.argv[1], "wb").write(raw)
EOF
}

# flip_header_byte FILE: flips the lowest bit of a digit in the header (the metadata): the first
# digit of epoch 1's train_loss in the stored metrics. A digit stays a digit, so the header is
# still valid JSON that says something else.
flip_header_byte() {
    "$PY" - "$1" <<'EOF'
import struct, sys
raw = bytearray(open(sys.argv[1], "rb").read())
header = raw[8:8 + struct.unpack("<Q", raw[:8])[0]].decode()
at = header.index("train_loss")
while not header[at].isdigit():
    at += 1
raw[8 + at] ^= 1
open(sys.argv[1], "wb").write(raw)
EOF
}

# truncate_half FILE: cuts a file to half its size.
truncate_half() { truncate -s $(($(stat -c %s "$1") / 2)) "$1"; }

# digest DIR: a fingerprint of every file in DIR (names and contents).
digest() { (cd "$1" && find . -type f | sort | xargs md5sum) | md5sum; }

# no_checkpoint_file DIR: DIR holds neither checkpoint (nor is there any DIR).
no_checkpoint_file() { [ ! -e "$1/checkpoint.safetensors" ] && [ ! -e "$1/checkpoint.prev.safetensors" ]; }

# wait_until PID COMMAND...: polls until COMMAND succeeds; fails if the process ends first.
wait_until() {
    local pid=$1 i
    shift
    for ((i = 0; i < 6000; i++)); do
        "$@" && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.01
    done
    return 1
}

# ---- 1. the uninterrupted reference, twice, and once with frequent checkpoints (timed) ----
run "${TRAIN[@]}" --out ref
check "reference run exits 0 (stderr: $(head -c 300 "$WORK/stderr"))" [ "$RC" -eq 0 ]
check "reference: metrics.jsonl has epochs 1..$EPOCHS" epochs_once ref
check "reference: a checkpoint is kept" [ -s ref/checkpoint.safetensors ]
check "reference: the checkpoint before it is kept" [ -s ref/checkpoint.prev.safetensors ]
check "reference: no temporary file is left (got: $(ls -A ref | tr '\n' ' '))" \
    [ "$(ls -A ref | tr '\n' ' ')" = ".lock checkpoint.prev.safetensors checkpoint.safetensors config.json metrics.jsonl model.safetensors summary.json " ]
run "${TRAIN[@]}" --out ref2
check "second reference run exits 0" [ "$RC" -eq 0 ]
check "the same run twice: byte-identical model.safetensors" \
    cmp -s ref/model.safetensors ref2/model.safetensors
check "the same run twice: final checkpoints with the same tensors" \
    same_tensors ref/checkpoint.safetensors ref2/checkpoint.safetensors
t0=$(now_ms)
run "${TRAIN[@]}" --out every7 --checkpoint-every 7
RUN_MS=$(($(now_ms) - t0))
check "--checkpoint-every 7 exits 0 (stderr: $(head -c 300 "$WORK/stderr"))" [ "$RC" -eq 0 ]
check "--checkpoint-every 7 does not change the result" \
    cmp -s every7/model.safetensors ref/model.safetensors
check "--checkpoint-every 7: metrics.jsonl has epochs 1..$EPOCHS" epochs_once every7
check "--checkpoint-every 7: no temporary file is left (got: $(ls -A every7 | tr '\n' ' '))" \
    [ "$(ls -A every7 | tr '\n' ' ')" = ".lock checkpoint.prev.safetensors checkpoint.safetensors config.json metrics.jsonl model.safetensors summary.json " ]
echo "a run with --checkpoint-every 7 takes $RUN_MS ms"
# One epoch, one checkpoint: nothing older to keep.
run "${BASE[@]}" --epochs 1 --out one-epoch
check "a 1-epoch run exits 0" [ "$RC" -eq 0 ]
check "a 1-epoch run keeps one checkpoint and no older one (got: $(ls -A one-epoch | tr '\n' ' '))" \
    [ "$(ls -A one-epoch | tr '\n' ' ')" = ".lock checkpoint.safetensors config.json metrics.jsonl model.safetensors summary.json " ]

# ---- 8. a checkpoint is a model file ----
run eval --model ref/model.safetensors "${EVAL_DATA[@]}" --json
model_eval=$(cat "$WORK/stdout")
run eval --model ref/checkpoint.safetensors "${EVAL_DATA[@]}" --json
check "eval on the final checkpoint exits 0 (stderr: $(head -c 300 "$WORK/stderr"))" [ "$RC" -eq 0 ]
check "the final checkpoint evaluates like model.safetensors ($(cat "$WORK/stdout") vs $model_eval)" \
    [ "$(cat "$WORK/stdout")" = "$model_eval" ]
# Without --checkpoint-every the one before the last is from the end of an earlier epoch
# (epoch EPOCHS-1 unless that epoch ended sooner after a checkpoint than ten times what the
# checkpoint took to write): it evaluates to that epoch's test metrics.
run eval --model ref/checkpoint.prev.safetensors "${EVAL_DATA[@]}" --json
check "eval on checkpoint.prev exits 0 (stderr: $(head -c 300 "$WORK/stderr"))" [ "$RC" -eq 0 ]
check "checkpoint.prev evaluates to the test metrics of an earlier epoch (got: $(cat "$WORK/stdout"))" \
    "$PY" - "$(cat "$WORK/stdout")" ref/metrics.jsonl $((EPOCHS - 1)) <<'EOF'
import json, sys
e = json.loads(sys.argv[1])
lines = [json.loads(line) for line in open(sys.argv[2])][:int(sys.argv[3])]
assert any(e["accuracy"] == m["test_accuracy"] and abs(e["loss"] - m["test_loss"]) < 1e-5
           for m in lines), (e, lines)
EOF

# ---- 3. a damaged newest checkpoint: the one before it is used, and said so ----
# Damage: a byte flipped in the tensor data, one flipped in the header's metadata (which holds
# the training state: counters, random generator, metrics), the file cut in half.
# ref's newest checkpoint is from the end of the last epoch, the one before from the epoch
# before: resuming from that one trains the last epoch again.
for damage in flip_byte flip_header_byte truncate_half; do
    rm -rf "dmg-$damage" && cp -r ref "dmg-$damage" && rm "dmg-$damage"/{model,summary}.*
    "$damage" "dmg-$damage/checkpoint.safetensors"
    run train --resume "dmg-$damage" "${RESUME_OPTS[@]}"
    check "$damage on checkpoint.safetensors: --resume exits 0 (stderr: $(head -c 300 "$WORK/stderr"))" \
        [ "$RC" -eq 0 ]
    check "$damage: stderr names checkpoint.prev.safetensors (got: $(head -c 300 "$WORK/stderr"))" \
        grep -q "checkpoint\.prev\.safetensors" "$WORK/stderr"
    check "$damage: stderr says what is wrong with the newest checkpoint (got: $(head -c 300 "$WORK/stderr"))" \
        grep -Eqi "damaged|corrupt|checksum|crc|hash|mismatch|truncat|short|invalid|bad|unexpected end" \
        "$WORK/stderr"
    finished_like_ref "$damage, resumed from checkpoint.prev" "dmg-$damage"
done
rm -rf dmg-both && cp -r ref dmg-both && rm dmg-both/{model,summary}.*
flip_byte dmg-both/checkpoint.safetensors
truncate_half dmg-both/checkpoint.prev.safetensors
expect_exit 1 "both checkpoints damaged: --resume" train --resume dmg-both "${RESUME_OPTS[@]}"
check "both damaged: 'no usable checkpoint' (got: $(head -c 300 "$WORK/stderr"))" \
    grep -q "no usable checkpoint" "$WORK/stderr"
check "both damaged: no model is written" absent dmg-both/model.safetensors

# ---- 6 (first half), 5. a finished 2-epoch run: eval its checkpoint, refused options ----
run "${BASE[@]}" --epochs 2 --out ext
check "a 2-epoch run exits 0 (stderr: $(head -c 300 "$WORK/stderr"))" [ "$RC" -eq 0 ]
check "the 2-epoch run has 2 metrics lines" epochs_once ext 2
run eval --model ext/checkpoint.safetensors "${EVAL_DATA[@]}" --json
check "the 2-epoch checkpoint evaluates to the run's summary (got: $(cat "$WORK/stdout"))" \
    "$PY" - "$(cat "$WORK/stdout")" ext/summary.json <<'EOF'
import json, sys
e, s = json.loads(sys.argv[1]), json.load(open(sys.argv[2]))
assert e["accuracy"] == s["test_accuracy"] and abs(e["loss"] - s["test_loss"]) < 1e-5, (e, s)
EOF

before=$(digest ext)
# refused OPTION... : --resume with other options is a usage error naming the option.
refused() {
    local name=$1
    shift
    expect_exit 2 "train $*" train "$@"
    check "train $*: one line 'nabla train: ...' (got: $(head -c 300 "$WORK/stderr"))" one_line_error "nabla train: "
    check "train $*: names $name (got: $(head -c 300 "$WORK/stderr"))" grep -qF -- "$name" "$WORK/stderr"
    local allowed
    for allowed in --epochs --threads --quiet --checkpoint-every; do
        check "train $*: says $allowed may be given (got: $(head -c 300 "$WORK/stderr"))" \
            grep -qF -- "$allowed" "$WORK/stderr"
    done
}
refused --lr --resume ext --lr 0.1
refused --layers --resume ext --layers 8
refused --seed --resume ext --epochs 4 --seed 2
refused --data --data moons --resume ext
refused --out --resume ext --out elsewhere
check "refused options create nothing" absent elsewhere
expect_exit 2 "--resume with fewer epochs than the run's" train --resume ext --epochs 1
check "fewer epochs: one line 'nabla train: ...' (got: $(head -c 300 "$WORK/stderr"))" \
    one_line_error "nabla train: "
check "the refused commands leave the run directory as it was" [ "$(digest ext)" = "$before" ]

# ---- missing checkpoints ----
mkdir empty-run
expect_exit 1 "--resume on an empty directory" train --resume empty-run
check "empty directory: 'no checkpoint' (got: $(head -c 300 "$WORK/stderr"))" \
    grep -q "no checkpoint" "$WORK/stderr"
mkdir no-ckpt && cp ref/config.json ref/metrics.jsonl no-ckpt/
expect_exit 1 "--resume on a run directory without checkpoint" train --resume no-ckpt
check "no checkpoint file: 'no checkpoint' (got: $(head -c 300 "$WORK/stderr"))" \
    grep -q "no checkpoint" "$WORK/stderr"
check "no checkpoint file: one line 'nabla: ...'" one_line_error "nabla: "
expect_exit 1 "--resume on a missing directory" train --resume no-such-run
check "a missing directory is not created" absent no-such-run

# ---- another run's checkpoint in a run directory ----
# A run has a name of its own (config.json's "run", in each checkpoint): a checkpoint of
# another run copied in is not continued, even when that run had the same arguments. The older
# checkpoint of the directory's run is used instead (said), or the resume is refused.
run "${BASE[@]}" --epochs 2 --lr 0.01 --out other-args
run "${BASE[@]}" --epochs 2 --out same-args
for other in other-args same-args; do
    rm -rf "swap-$other" && cp -r ext "swap-$other"
    cp "$other/checkpoint.safetensors" "swap-$other/"
    run train --resume "swap-$other" --epochs 3 "${RESUME_OPTS[@]}"
    check "$other's newest checkpoint copied in: resumes from the run's older one (exit $RC)" \
        [ "$RC" -eq 0 ]
    grep -q "^nabla: .*swap-$other/checkpoint.safetensors is another run's checkpoint (run [0-9a-f]*: nabla train .*), not the run of .*swap-$other/config.json" \
        "$WORK/stderr" && pass || fail "$other copied in: the note says why: $(head -c 400 "$WORK/stderr")"
    check "$other copied in: and which checkpoint it uses" \
        grep -q "^nabla: resuming from the older checkpoint .*swap-$other/checkpoint.prev.safetensors instead$" "$WORK/stderr"
    check "$other copied in: the run keeps its name" \
        [ "$(json "swap-$other/config.json" 'j["run"]')" = "$(json ext/config.json 'j["run"]')" ]
    # Both checkpoints of the other run: nothing of the directory's run is left to continue.
    rm -rf "swap-$other" && cp -r ext "swap-$other"
    cp "$other"/checkpoint*.safetensors "swap-$other/"
    before_swap=$(digest "swap-$other")
    expect_exit 1 "both of $other's checkpoints copied in: refused" \
        train --resume "swap-$other" --epochs 3 "${RESUME_OPTS[@]}"
    check "both of $other's copied in: one line naming the disagreement ($(head -c 400 "$WORK/stderr"))" \
        one_line_error "nabla: cannot resume: $(pwd -P)/swap-$other/checkpoint.safetensors is another run's checkpoint"
    check "both of $other's copied in: the directory is left as it was" \
        [ "$(digest "swap-$other")" = "$before_swap" ]
done
# Without config.json, checkpoints of two runs cannot be told apart: refused.
rm -rf swap-noconfig && cp -r ext swap-noconfig && rm swap-noconfig/config.json
cp other-args/checkpoint.safetensors swap-noconfig/
expect_exit 1 "checkpoints of two runs, no config.json: refused" \
    train --resume swap-noconfig --epochs 3 "${RESUME_OPTS[@]}"
check "two runs, no config.json: one line ($(head -c 400 "$WORK/stderr"))" \
    one_line_error "nabla: cannot resume: "
check "two runs, no config.json: says so" grep -q "are checkpoints of two runs" "$WORK/stderr"
# The run's own checkpoints carry config.json's name.
check "a run's checkpoints carry config.json's name" \
    "$PY" -c 'import json,struct,sys
f = open(sys.argv[1], "rb"); n = struct.unpack("<Q", f.read(8))[0]
meta = json.loads(f.read(n))["__metadata__"]
assert meta["run"] == json.load(open(sys.argv[2]))["run"], meta.get("run")' \
    ext/checkpoint.safetensors ext/config.json

# ---- 6. more epochs for a finished run ----
# With the default constant learning rate, 2 epochs then 2 more are the 4-epoch run.
run train --resume ext --epochs $EPOCHS "${RESUME_OPTS[@]}"
check "--resume --epochs $EPOCHS after 2 epochs exits 0 (stderr: $(head -c 300 "$WORK/stderr"))" \
    [ "$RC" -eq 0 ]
finished_like_ref "2 epochs, then --resume --epochs $EPOCHS" ext

# ---- 4. SIGINT and SIGTERM: stop at a step boundary, checkpoint, exit 128+signal ----
# Background jobs of a script start with SIGINT ignored; env puts the default back so that
# nabla sees the signal as it would from a terminal.
# interrupt SIGNAL STATUS DIR TEST FILE EXTRA_OPTIONS...: signals a run once `test TEST
# DIR/FILE` holds, then checks the exit status, the message and the checkpoint. A machine
# busy enough to let the run finish before the signal reaches it gets two more tries.
interrupt() {
    local sig=$1 status=$2 dir=$3 test_op=$4 file=$5 pid try
    shift 5
    for try in 1 2 3; do
        rm -rf "$dir"
        env --default-signal=INT,TERM,HUP "$NABLA" "${TRAIN[@]}" --out "$dir" "$@" \
            >"$WORK/stdout" 2>"$WORK/stderr" &
        pid=$!
        if ! wait_until "$pid" test "$test_op" "$dir/$file"; then
            wait "$pid"
            RC=$?
            echo "SIG$sig try $try: the run ended (exit $RC) before it could be signalled"
            continue
        fi
        if ! kill -"$sig" "$pid" 2>/dev/null; then
            wait "$pid"
            RC=$?
            echo "SIG$sig try $try: the run ended (exit $RC) before it could be signalled"
            continue
        fi
        wait "$pid"
        RC=$?
        # A signal that came after training (while the final files were written) is too late
        # to stop anything.
        if [ "$RC" -eq 0 ] && [ -s "$dir/summary.json" ]; then
            echo "SIG$sig try $try: the signal came after training ended"
            continue
        fi
        break
    done
    check "SIG$sig: exit $status (got $RC; stderr: $(head -c 300 "$WORK/stderr"))" [ "$RC" -eq "$status" ]
    check "SIG$sig: stderr says how to continue with --resume $dir (got: $(head -c 300 "$WORK/stderr"))" \
        grep -Eq -- "--resume [\"']?([^ ]*/)?${dir}[\"']?([^A-Za-z0-9_/-]|$)" "$WORK/stderr"
    check "SIG$sig: a checkpoint is written" [ -s "$dir/checkpoint.safetensors" ]
}
# SIGINT a few steps into the first epoch (the first checkpoint comes after step 7).
interrupt INT 130 sigint -s checkpoint.safetensors --checkpoint-every 7
rm -rf full-base && cp -r sigint full-base   # for the full-disk test below
# The resumed run is interrupted too, once it has written a checkpoint of its own.
env --default-signal=INT "$NABLA" train --resume sigint "${RESUME_OPTS[@]}" \
    >"$WORK/stdout" 2>"$WORK/stderr" &
pid=$!
if wait_until "$pid" bash -c '! cmp -s sigint/checkpoint.safetensors full-base/checkpoint.safetensors' &&
    kill -INT "$pid" 2>/dev/null; then
    wait "$pid"
    RC=$?
    check "SIGINT during the resumed run: exit 130 (got $RC; stderr: $(head -c 300 "$WORK/stderr"))" \
        [ "$RC" -eq 130 ]
    check "SIGINT during the resumed run: stderr says how to continue (got: $(head -c 300 "$WORK/stderr"))" \
        grep -q -- "--resume .*sigint" "$WORK/stderr"
else
    wait "$pid"
    echo "the resumed run ended (exit $?) before it could be interrupted"
fi
run train --resume sigint "${RESUME_OPTS[@]}"
check "resume after SIGINT exits 0 (stderr: $(head -c 300 "$WORK/stderr"))" [ "$RC" -eq 0 ]
finished_like_ref "SIGINT twice, then --resume" sigint
# SIGTERM in the second epoch, between end-of-epoch checkpoints.
interrupt TERM 143 sigterm -s metrics.jsonl
# Resumed from another working directory, with checkpoints every 5 steps now (which changes
# when checkpoints are taken, not what is trained).
mkdir -p elsewhere-cwd && cd elsewhere-cwd || exit 1
run train --resume ../sigterm --checkpoint-every 5 "${RESUME_OPTS[@]}"
cd "$WORK" || exit 1
check "resume after SIGTERM (from another directory, --checkpoint-every 5) exits 0 (stderr: $(head -c 300 "$WORK/stderr"))" \
    [ "$RC" -eq 0 ]
check "resume from another directory creates nothing there" [ -z "$(ls -A elsewhere-cwd)" ]
finished_like_ref "SIGTERM, then --resume from elsewhere" sigterm

# SIGHUP (the terminal gone away) stops the run as SIGTERM does: a checkpoint, exit 129.
interrupt HUP 129 sighup -s metrics.jsonl
check "SIGHUP: stderr says it stopped by SIGHUP (got: $(head -c 300 "$WORK/stderr"))" \
    grep -q "^nabla: stopped by SIGHUP after [0-9]* steps; checkpoint written to" "$WORK/stderr"
run train --resume sighup "${RESUME_OPTS[@]}"
check "resume after SIGHUP exits 0 (stderr: $(head -c 300 "$WORK/stderr"))" [ "$RC" -eq 0 ]
finished_like_ref "SIGHUP, then --resume" sighup
# A real hangup: the run in a terminal of its own (a pty), whose other end closes. The kernel
# sends the session SIGHUP; the run's output to the gone terminal fails after it.
rm -rf pty-hup
"$PY" - "$NABLA" "$WORK/pty-hup" "${TRAIN[@]}" >"$WORK/stdout" 2>"$WORK/stderr" <<'EOF'
import os, pty, select, sys, time
nabla, out, args = sys.argv[1], sys.argv[2], sys.argv[3:]
pid, master = pty.fork()
if pid == 0:
    os.execv(nabla, [nabla] + args + ["--out", out])
# Reads the terminal until the run has a metrics line (a safety net of 60 s, not a timing).
for _ in range(1200):
    if os.path.exists(out + "/metrics.jsonl") and os.path.getsize(out + "/metrics.jsonl") > 0:
        break
    try:
        if select.select([master], [], [], 0.05)[0]:
            os.read(master, 65536)   # the terminal's output, read so that it never blocks
    except OSError:
        time.sleep(0.05)
os.close(master)
_, status = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(status))
EOF
pty_rc=$(cat "$WORK/stdout")
if [ "$pty_rc" = 0 ] && [ -s pty-hup/summary.json ]; then
    echo "pty hangup: the run ended before the hangup reached it"
else
    check "pty hangup: exit 129 (got '$pty_rc'; $(head -c 300 "$WORK/stderr"))" [ "$pty_rc" = 129 ]
    check "pty hangup: a checkpoint is written" [ -s pty-hup/checkpoint.safetensors ]
    check "pty hangup: no temporary file left ($(ls -A pty-hup | tr '\n' ' '))" \
        bash -c "! ls -A pty-hup | grep -q '\.tmp'"
    run train --resume pty-hup "${RESUME_OPTS[@]}"
    check "pty hangup, then --resume: exit $RC" [ "$RC" -eq 0 ]
    finished_like_ref "pty hangup, then --resume" pty-hup
fi

# ---- 7. a full disk: the checkpoint cannot be written ----
# ulimit -f below the checkpoint's size makes its write fail with EFBIG (SIGXFSZ ignored, as
# a full disk gives ENOSPC without a signal). Resuming the SIGINT run writes a checkpoint
# within 7 steps.
if [ -s full-base/checkpoint.safetensors ]; then
    rm -rf full && cp -r full-base full
    limit_kb=$(($(stat -c %s full/checkpoint.safetensors) / 1024 / 2))
    (ulimit -f "$limit_kb"; exec "$NABLA" train --resume full "${RESUME_OPTS[@]}") \
        >"$WORK/stdout" 2>"$WORK/stderr"
    RC=$?
    check "checkpoint write fails (ulimit -f $limit_kb): exit 1, no crash (got $RC; stderr: $(head -c 300 "$WORK/stderr"))" \
        [ "$RC" -eq 1 ]
    check "full disk: a message 'nabla: ...' naming the checkpoint (got: $(head -c 300 "$WORK/stderr"))" \
        bash -c "grep -q '^nabla: .*checkpoint' '$WORK/stderr'"
    check "full disk: the message gives the reason (got: $(head -c 300 "$WORK/stderr"))" \
        grep -qi "file too large" "$WORK/stderr"
    check "full disk: checkpoint.safetensors is the one before the failed write" \
        cmp -s full/checkpoint.safetensors full-base/checkpoint.safetensors
    check "full disk: no temporary file is left (got: $(ls -A full | tr '\n' ' '))" \
        bash -c "! ls -A full | grep -Evq '^(\.lock|checkpoint(\.prev)?\.safetensors|config\.json|metrics\.jsonl)$'"
    run train --resume full "${RESUME_OPTS[@]}"
    check "full disk, then --resume without the limit exits 0 (stderr: $(head -c 300 "$WORK/stderr"))" \
        [ "$RC" -eq 0 ]
    finished_like_ref "full disk, then --resume" full
else
    fail "full disk: not tested, the SIGINT run left no checkpoint to start from"
fi

# ---- 2. kill -9 at random moments ----
# Each trial kills the run at a random moment (trial i in the i-th quarter of the run time),
# then kills the first resume at a random moment too, then resumes to the end. A kill before
# the first checkpoint leaves nothing to resume: then --resume must say "no checkpoint", and
# the run starts over. The run time measured above may have been slowed by a busy moment: a
# run that ends before its first kill shortens it, and the trial is tried again (twice at most).
TRIALS=${CKPT_TRIALS:-4}   # more for a stress run: CKPT_TRIALS=50 bash test_checkpoint.sh ...
echo "kill -9 trials with RANDOM seeded by $$"
RANDOM=$$
# start_bg DIR FRESH: starts the run (FRESH=1) or its resume in the background; sets PID.
start_bg() {
    if [ "$2" = 1 ]; then
        "$NABLA" "${TRAIN[@]}" --checkpoint-every 7 --out "$1" >"$WORK/bg.out" 2>"$WORK/bg.err" &
    else
        "$NABLA" train --resume "$1" "${RESUME_OPTS[@]}" >"$WORK/bg.out" 2>"$WORK/bg.err" &
    fi
    PID=$!
}
# kill_delay TRIAL KILL R: seconds to wait before the kill: the first kill of trial i falls in
# the i-th part of TRIALS of the run time, the second one in the first half of the remaining
# run; R is a random number 0..32767.
kill_delay() {
    awk -v t="$RUN_MS" -v i="$1" -v k="$2" -v n="$TRIALS" -v r="$3" 'BEGIN {
        printf "%.3f", k == 1 ? t / 1000 * (i - 1 + r / 32768) / n : t / 1000 * r / 32768 / 2 }'
}
retries=0
for ((trial = 1; trial <= TRIALS; trial++)); do
    dir=kill$trial
    rm -rf "$dir"
    fresh=1 kills=0 attempts=0 st=-1 log=""
    # At most 2 kills, then runs to the end; a resume without checkpoint restarts the run.
    while [ "$attempts" -lt 6 ]; do
        attempts=$((attempts + 1))
        what=$([ "$fresh" = 1 ] && echo run || echo resume)
        start_bg "$dir" "$fresh"
        if [ "$kills" -lt 2 ]; then
            kills=$((kills + 1))
            r=$RANDOM   # drawn here: a subshell's $RANDOM has its own seed
            delay=$(kill_delay "$trial" "$kills" "$r")
            sleep "$delay"
            kill -9 "$PID" 2>/dev/null
            what="$what killed after ${delay}s"
        fi
        { wait "$PID"; } 2>/dev/null
        st=$?
        log="$log [$what: exit $st]"
        if [ "$st" -eq 0 ]; then
            break
        elif [ "$st" -eq 137 ]; then
            fresh=0
        elif [ "$st" -eq 1 ] && [ "$fresh" = 0 ] && grep -q "no checkpoint" "$WORK/bg.err" &&
            no_checkpoint_file "$dir"; then
            fresh=1   # killed before the first checkpoint: start over
        elif [ "$st" -eq 1 ] && [ "$fresh" = 0 ] && [ ! -e "$dir" ]; then
            fresh=1   # killed before even the run directory was made
        else
            break
        fi
    done
    echo "kill -9 trial $trial:$log"
    if [ "$st" -eq 0 ] && [ "$attempts" = 1 ] && [ "$retries" -lt 2 ]; then
        retries=$((retries + 1))
        RUN_MS=$(awk -v d="$delay" 'BEGIN { printf "%d", (d * 800 > 100 ? d * 800 : 100) }')
        echo "the run ended before the kill: taking it as $RUN_MS ms, trial $trial again"
        trial=$((trial - 1))
        continue
    fi
    check "kill -9 trial $trial ends with exit 0:$log (stderr: $(head -c 300 "$WORK/bg.err"))" \
        [ "$st" -eq 0 ]
    [ "$st" -eq 0 ] && finished_like_ref "kill -9 trial $trial:$log" "$dir"
    # A kill during a write leaves a temporary file; the next start in the directory removes it.
    check "kill -9 trial $trial leaves no temporary files ($(ls "$dir" | tr '\n' ' '))" \
        bash -c "! ls '$dir' | grep -q '\.tmp\.'"
done

echo "test_checkpoint.sh took $((SECONDS - STARTED)) s"
finish

#!/bin/bash
# Extending a run with `--resume DIR --epochs N`, for every kind of learning-rate schedule: the
# extended run must equal a run a user could have started, bit for bit (model.safetensors) and
# in every number of metrics.jsonl (its lr column above all). A cosine schedule keeps the
# horizon it started with (--decay-epochs, by default --epochs), holds its last epoch's rate
# past it, and says so in one line naming that run; the other kinds never depend on the run's
# length, so their extension is simply the longer run. Also: the logged rates against PyTorch's
# schedulers, config.json, and bad uses of --decay-epochs (exit 2, one line, nothing written).
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# A tiny run: 4 steps an epoch.
BASE=(train --data moons --samples 200 --layers 8 --batch-size 50 --lr 0.05 --seed 3
      --threads 1 --quiet)

# same_run DIR REF: the model is REF's byte for byte, and metrics.jsonl holds REF's numbers
# (all but the time; the lr column exactly).
same_run() {
    cmp -s "$1/model.safetensors" "$2/model.safetensors" || { echo "models differ"; return 1; }
    "$PY" - "$1/metrics.jsonl" "$2/metrics.jsonl" <<'EOF'
import json, sys
got, want = ([json.loads(line) for line in open(f)] for f in sys.argv[1:3])
assert len(got) == len(want), (len(got), len(want))
for g, w in zip(got, want):
    assert g.keys() == w.keys(), (g.keys(), w.keys())
    for k in w:
        if k != "seconds":
            assert g[k] == w[k], (w["epoch"], k, g[k], w[k])
EOF
}

# lrs DIR: the lr column of DIR/metrics.jsonl, as a Python list.
lrs() { "$PY" -c 'import json,sys; print([json.loads(l)["lr"] for l in open(sys.argv[1])])' "$1/metrics.jsonl"; }

# holds_after DIR H: from epoch H+1 on the rate is epoch H's (lr column), and it never rises
# after the warm-up's last epoch W (3rd argument, 0 without one).
holds_after() {
    "$PY" - "$1/metrics.jsonl" "$2" "${3:-0}" <<'EOF'
import json, sys
lr = [json.loads(line)["lr"] for line in open(sys.argv[1])]
h, w = int(sys.argv[2]), int(sys.argv[3])
assert len(lr) > h and all(x == lr[h - 1] for x in lr[h:]), (h, lr)
assert all(x > 0 for x in lr), lr
assert all(b <= a for a, b in zip(lr[max(w, 1) - 1:], lr[max(w, 1):])), lr
EOF
}

N_CASE=0
# extended SCHEDULE E E2 EQUAL: a run of E epochs with the schedule options SCHEDULE (one
# string, split on blanks), resumed with --epochs E2, must equal the fresh run with the
# schedule options and EQUAL (one string). Leaves the runs in ext-N, fresh-N, with the resume's
# stderr in note-N.
extended() {
    local schedule=$1 e=$2 e2=$3 equal=$4
    N_CASE=$((N_CASE + 1))
    local ext=ext-$N_CASE fresh=fresh-$N_CASE desc="$1, $2 epochs extended to $3"
    # shellcheck disable=SC2086  # the schedule options are split on purpose
    run "${BASE[@]}" $schedule --epochs "$e" --out "$ext"
    check "$desc: the first run exits 0 (stderr: $(head -c 300 "$WORK/stderr"))" [ "$RC" -eq 0 ]
    run train --resume "$ext" --epochs "$e2" --quiet
    check "$desc: --resume exits 0 (stderr: $(head -c 300 "$WORK/stderr"))" [ "$RC" -eq 0 ]
    cp "$WORK/stderr" "note-$N_CASE"
    # shellcheck disable=SC2086
    run "${BASE[@]}" $schedule $equal --out "$fresh"
    check "$desc: the fresh run $equal exits 0 (stderr: $(head -c 300 "$WORK/stderr"))" \
        [ "$RC" -eq 0 ]
    check "$desc: equals the fresh run with $equal (lr $(lrs "$ext") vs $(lrs "$fresh"))" \
        same_run "$ext" "$fresh"
}

# no_note N: the resume of case N printed nothing on stderr.
no_note() { [ ! -s "note-$1" ]; }

# note_says N HORIZON E2: the resume of case N printed one line: the horizon kept, and a command
# that ends with the new --epochs and the horizon, each given once, and the directory resumed.
note_says() {
    local f=note-$1
    [ "$(lines "$f")" -eq 1 ] &&
        grep -q "^nabla: the cosine schedule keeps its $2-epoch horizon" "$f" &&
        grep -q -- " --epochs $3 --decay-epochs $2 --out [^ ]*ext-$1\$" "$f" &&
        [ "$(grep -o -- "--epochs" "$f" | wc -l)" -eq 1 ] &&
        [ "$(grep -o -- "--decay-epochs" "$f" | wc -l)" -eq 1 ]
}

# note_command_equals N: the command the note of case N names, run into its own directory,
# trains the extended run's model and metrics.
note_command_equals() {
    local cmd
    cmd=$(sed -n 's/^.*; this run equals nabla \(.*\) --out [^ ]*$/\1/p' "note-$1")
    [ -n "$cmd" ] || return 1
    eval "\"\$NABLA\" $cmd --out noted-$1" >/dev/null 2>&1 || return 1
    same_run "noted-$1" "ext-$1"
}

# ---- cosine: the horizon stays, the rate holds past it ----
# The issue's case: 4 epochs, then 8 (0.05, 0.043, 0.025, 0.0073, then 0.0073 four times).
extended "--lr-decay cosine" 4 8 "--epochs 8 --decay-epochs 4"
check "cosine 4 -> 8: one line naming the horizon and the run (got: $(cat note-$N_CASE))" \
    note_says $N_CASE 4 8
check "cosine 4 -> 8: the note says the rate epochs 5 to 8 keep (got: $(cat note-$N_CASE))" \
    grep -q "epochs 5 to 8 keep epoch 4's rate, 0.0073223" "note-$N_CASE"
check "cosine 4 -> 8: the rate holds epoch 4's from epoch 5 on ($(lrs ext-$N_CASE))" \
    holds_after ext-$N_CASE 4
check "cosine 4 -> 8: the command in the note trains the same run" note_command_equals $N_CASE
check "cosine 4 -> 8: config.json keeps decay_epochs 4" \
    pytrue "json.load(open('ext-$N_CASE/config.json'))['decay_epochs'] == 4"
check "cosine 4 -> 8: config.json has the new epochs" \
    pytrue "json.load(open('ext-$N_CASE/config.json'))['epochs'] == 8"
COSINE=$N_CASE

# With a warm-up of 1 epoch: ramp, cosine over the 2 epochs left, then held.
extended "--lr-decay cosine --warmup-epochs 1" 3 6 "--epochs 6 --decay-epochs 3"
check "cosine, warm-up 1, 3 -> 6: the note (got: $(cat note-$N_CASE))" note_says $N_CASE 3 6
check "cosine, warm-up 1, 3 -> 6: held from epoch 4 on ($(lrs ext-$N_CASE))" \
    holds_after ext-$N_CASE 3 1
check "cosine, warm-up 1: the command in the note trains the same run" \
    note_command_equals $N_CASE

# A warm-up longer than the horizon: the ramp stops at the horizon, its last rate is held.
extended "--lr-decay cosine --warmup-epochs 4" 2 4 "--epochs 4 --decay-epochs 2"
check "cosine, warm-up 4, 2 -> 4: the note (got: $(cat note-$N_CASE))" note_says $N_CASE 2 4
check "cosine, warm-up 4, 2 -> 4: epoch 2's rate held ($(lrs ext-$N_CASE))" \
    pytrue "[json.loads(l)['lr'] for l in open('ext-$N_CASE/metrics.jsonl')] == [0.0125, 0.025, 0.025, 0.025]"
check "cosine, warm-up 4: the command in the note trains the same run" \
    note_command_equals $N_CASE

# A horizon given longer than the run: the extension runs on along the same curve, and the
# note has nothing held to tell.
extended "--lr-decay cosine --decay-epochs 5" 2 4 "--epochs 4"
check "cosine, horizon 5, 2 -> 4: the note (got: $(cat note-$N_CASE))" note_says $N_CASE 5 4
check "cosine, horizon 5, 2 -> 4: no rate held yet (got: $(cat note-$N_CASE))" \
    bash -c "! grep -q keep\ epoch note-$N_CASE"
check "cosine, horizon 5: the command in the note trains the same run" \
    note_command_equals $N_CASE

# Extended twice, the options written as --opt=value and as an abbreviation: the horizon is
# still the first run's, and the note's command gives each option once.
N_CASE=$((N_CASE + 1))
run "${BASE[@]}" --lr-decay=cosine --epo=2 --out "ext-$N_CASE"
check "cosine --epo=2: exits 0 (stderr: $(head -c 300 "$WORK/stderr"))" [ "$RC" -eq 0 ]
run train --resume "ext-$N_CASE" --epochs 3 --quiet
check "cosine 2 -> 3: exits 0 (stderr: $(head -c 300 "$WORK/stderr"))" [ "$RC" -eq 0 ]
run train --resume "ext-$N_CASE" --epochs 5 --quiet
check "cosine 2 -> 3 -> 5: exits 0 (stderr: $(head -c 300 "$WORK/stderr"))" [ "$RC" -eq 0 ]
cp "$WORK/stderr" "note-$N_CASE"
check "cosine 2 -> 3 -> 5: the note keeps the 2-epoch horizon (got: $(cat note-$N_CASE))" \
    note_says $N_CASE 2 5
run "${BASE[@]}" --lr-decay cosine --epochs 5 --decay-epochs 2 --out "fresh-$N_CASE"
check "cosine 2 -> 3 -> 5: equals --epochs 5 --decay-epochs 2" same_run "ext-$N_CASE" "fresh-$N_CASE"
check "cosine 2 -> 3 -> 5: the command in the note trains the same run" \
    note_command_equals $N_CASE

# A run started with its horizon inside it, extended further: still that horizon.
extended "--lr-decay cosine --decay-epochs 2" 3 5 "--epochs 5"
check "cosine --epochs 3 --decay-epochs 2, then 5: the note (got: $(cat note-$N_CASE))" \
    note_says $N_CASE 2 5
check "cosine --epochs 3 --decay-epochs 2, then 5: the command in the note trains the same run" \
    note_command_equals $N_CASE
check "cosine --epochs 3 --decay-epochs 2, then 5: config.json keeps decay_epochs 2" \
    pytrue "json.load(open('ext-$N_CASE/config.json'))['decay_epochs'] == 2"

# Resumed without more epochs (here: a finished run resumed as it is): nothing to say.
run train --resume "ext-$COSINE" --quiet
check "cosine resumed without --epochs: exit 0, nothing on stderr (got: $(cat "$WORK/stderr"))" \
    bash -c "[ $RC -eq 0 ] && [ ! -s '$WORK/stderr' ]"
check "cosine resumed without --epochs: still the same run" same_run "ext-$COSINE" "fresh-$COSINE"

# ---- kinds without a horizon: the extension is the longer run, and nothing is said ----
for schedule in "--lr-decay exp --decay-rate 0.7" \
                "--lr-decay exp --decay-rate 0.7 --warmup-epochs 1" \
                "--lr-decay step --decay-rate 0.5 --decay-interval 2 --warmup-epochs 2" \
                "--lr-decay step --decay-rate 0.5 --decay-interval 2" \
                "--lr-decay inverse --decay-rate 1" \
                "--lr-decay interval --decay-rate 1 --decay-interval 2 --warmup-epochs 1" \
                "--lr-decay inverse-sqrt" \
                "--warmup-epochs 2"; do
    extended "$schedule" 2 5 "--epochs 5"
    check "$schedule: extending says nothing (got: $(cat note-$N_CASE))" no_note $N_CASE
    check "$schedule: config.json has decay_epochs null" \
        pytrue "json.load(open('ext-$N_CASE/config.json'))['decay_epochs'] is None"
    case $schedule in
    "--lr-decay exp --decay-rate 0.7") EXP=$N_CASE ;;
    "--lr-decay step --decay-rate 0.5 --decay-interval 2") STEP=$N_CASE ;;
    esac
done

# ---- the logged rates against PyTorch's schedulers ----
# Within the horizon, cosine is CosineAnnealingLR(T_max=4); past it nabla holds where torch's
# rises again. exp is ExponentialLR, step StepLR, over the whole extended run.
check "the lr columns match PyTorch's schedulers (cosine within its horizon)" \
    "$PY" - "fresh-$COSINE" "fresh-$EXP" "fresh-$STEP" <<'EOF'
import json, math, sys
import torch

def logged(d):
    return [json.loads(line)["lr"] for line in open(d + "/metrics.jsonl")]

def torch_rates(make, epochs):
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.05)
    sched, out = make(opt), []
    for _ in range(epochs):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out

def close(a, b):
    return len(a) == len(b) and all(math.isclose(x, y, rel_tol=1e-6) for x, y in zip(a, b))

cos, exp, step = (logged(d) for d in sys.argv[1:4])
want = torch_rates(lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=4), 8)
assert close(cos[:4], want[:4]), (cos, want)
assert all(x == cos[3] for x in cos[4:]) and want[5] > want[4], (cos, want)
want = torch_rates(lambda o: torch.optim.lr_scheduler.ExponentialLR(o, gamma=0.7), 5)
assert close(exp, want), (exp, want)
want = torch_rates(lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=2, gamma=0.5), 5)
assert close(step, want), (step, want)
EOF

# ---- config.json of a fresh cosine run ----
check "a cosine run records its horizon, --epochs by default" \
    pytrue "json.load(open('fresh-$COSINE/config.json'))['decay_epochs'] == 4 and json.load(open('ext-$COSINE/config.json'))['lr_decay'] == 'cosine'"

# ---- the help ----
run train --help
check "train --help lists --decay-epochs with its default" \
    grep -q -- "--decay-epochs N .*horizon" "$WORK/stdout"
check "train --help says an extended cosine run keeps its horizon" \
    grep -q "cosine schedule keeps its horizon" "$WORK/stdout"

# ---- bad uses: exit 2, one line naming the problem, nothing written ----
# bad DESCRIPTION PREFIX ARGS...
bad() {
    local desc=$1 prefix=$2
    shift 2
    rm -rf bad && mkdir bad
    local before
    before=$(cd "ext-$COSINE" && find . -type f | sort | xargs md5sum)
    expect_exit 2 "$desc" "$@"
    check "$desc: one line '$prefix' (got: $(head -c 300 "$WORK/stderr"))" one_line_error "$prefix"
    check "$desc: nothing written" bash -c "[ -z \"\$(ls -A bad)\" ] && [ ! -e bad-out ]"
    check "$desc: the run directory is as it was" \
        [ "$(cd "ext-$COSINE" && find . -type f | sort | xargs md5sum)" = "$before" ]
}
bad "--decay-epochs 0" "nabla train: --decay-epochs must be > 0, got 0" \
    "${BASE[@]}" --lr-decay cosine --decay-epochs 0 --out bad-out
bad "--decay-epochs -3" "nabla train: --decay-epochs must be > 0, got -3" \
    "${BASE[@]}" --lr-decay cosine --decay-epochs -3 --out bad-out
bad "--decay-epochs 2.5" "nabla train: --decay-epochs expects an integer, got '2.5'" \
    "${BASE[@]}" --lr-decay cosine --decay-epochs 2.5 --out bad-out
bad "--decay-epochs ''" "nabla train: --decay-epochs expects an integer" \
    "${BASE[@]}" --lr-decay cosine --decay-epochs "" --out bad-out
bad "--decay-epochs 99999999999" "nabla train: --decay-epochs" \
    "${BASE[@]}" --lr-decay cosine --decay-epochs 99999999999 --out bad-out
bad "--decay-epochs without a value" "nabla train: " "${BASE[@]}" --lr-decay cosine --decay-epochs
for kind in none exp step inverse interval inverse-sqrt; do
    bad "--decay-epochs with --lr-decay $kind" \
        "nabla train: --decay-epochs is the horizon of --lr-decay cosine, but --lr-decay is $kind" \
        "${BASE[@]}" --lr-decay "$kind" --decay-rate 0.5 --decay-epochs 3 --out bad-out
done
bad "--decay-epochs without --lr-decay" \
    "nabla train: --decay-epochs is the horizon of --lr-decay cosine, but --lr-decay is none" \
    "${BASE[@]}" --decay-epochs 3 --out bad-out
bad "--resume with --decay-epochs" "nabla train: --decay-epochs cannot be given with --resume" \
    train --resume "ext-$COSINE" --epochs 9 --decay-epochs 9
bad "--resume with --decay-epochs=9" "nabla train: --decay-epochs=9 cannot be given with --resume" \
    train --resume "ext-$COSINE" --decay-epochs=9
bad "tune: --decay-epochs held fixed with exp" "nabla train: --decay-epochs is the horizon" \
    tune --data moons --epochs 2 --lr-decay exp --decay-rate 0.5 --decay-epochs 2 \
    --space "lr=log(1e-3,1e-1)" --trials 2 --out bad/study
bad "tune: --decay-epochs 0 held fixed" "nabla train: --decay-epochs must be > 0" \
    tune --data moons --epochs 2 --lr-decay cosine --decay-epochs 0 --space "lr=log(1e-3,1e-1)" \
    --trials 2 --out bad/study

# ---- a run that --max-steps ends keeps it when extended ----
# BASE trains on 180 samples in batches of 50: 4 steps an epoch. Reached already: the
# extension would train nothing and is refused (exit 2), without any note (a cosine run's
# horizon note too comes only for a resume that runs); not reached before epoch N: a note.
for schedule in "" "--lr-decay cosine --warmup-epochs 1"; do
    label=${schedule:-constant}
    # shellcheck disable=SC2086
    run "${BASE[@]}" $schedule --epochs 3 --max-steps 10 --out steps-reached
    check "$label, --max-steps 10: the run exits 0 (stderr: $(head -c 300 "$WORK/stderr"))" [ "$RC" -eq 0 ]
    cp steps-reached/checkpoint.safetensors steps-before.safetensors
    run train --resume steps-reached --epochs 6 --quiet
    check "$label, --max-steps reached: --epochs 6 refused, exit 2 (got $RC)" [ "$RC" -eq 2 ]
    check "$label, --max-steps reached: one line, no note ($(cat "$WORK/stderr"))" \
        one_line_error "nabla train: --epochs 6 cannot extend "
    grep -q "the run ends at --max-steps 10, which it has reached, and a resumed run keeps its --max-steps (to train on, start a run from its weights: --init-weights .*steps-reached/model.safetensors)$" \
        "$WORK/stderr" && pass || fail "$label: the refusal says why and what to do: $(cat "$WORK/stderr")"
    check "$label, --max-steps reached: the checkpoint is untouched" \
        cmp -s steps-before.safetensors steps-reached/checkpoint.safetensors
    rm -rf steps-reached steps-before.safetensors
    # 2 epochs end it (8 steps) before --max-steps 10; extended to 6 epochs (24 steps), it
    # ends at step 10, and says so.
    # shellcheck disable=SC2086
    run "${BASE[@]}" $schedule --epochs 2 --max-steps 10 --out steps-left
    run train --resume steps-left --epochs 6 --quiet
    check "$label, --max-steps not reached: the extension runs (exit $RC)" [ "$RC" -eq 0 ]
    grep -q "^nabla train: note: --max-steps 10 still ends this run, at step 10 of the 24 that --epochs 6 would take (a resumed run keeps its --max-steps)$" \
        "$WORK/stderr" && pass || fail "$label: the --max-steps note: $(cat "$WORK/stderr")"
    check "$label, --max-steps not reached: the run ends at step 10" \
        pytrue "json.load(open('steps-left/summary.json'))['steps'] == 10"
    rm -rf steps-left
done

# ---- nabla tune can hold or search the horizon ----
run tune --data moons --epochs 3 --lr-decay cosine --space "decay-epochs=int(1,6)" --trials 3 \
    --dry-run
check "tune searches decay-epochs (stderr: $(head -c 300 "$WORK/stderr"))" \
    bash -c "[ $RC -eq 0 ] && grep -q 'decay-epochs=' '$WORK/stdout'"
run tune --data moons --epochs 3 --space "decay-epochs=int(1,6)" --trials 3 --dry-run
check "tune refuses to search decay-epochs without cosine (exit $RC)" [ "$RC" -eq 2 ]
check "tune refuses to search decay-epochs without cosine: says why (got: $(head -c 300 "$WORK/stderr"))" \
    grep -q "decay-epochs is the horizon of --lr-decay cosine" "$WORK/stderr"

finish

#!/bin/bash
# Limits that are the process's own: an address-space limit (ulimit -v), a data limit
# (ulimit -d), a cgroup's memory limit. Under each, a run that cannot fit ends within seconds
# with one line naming the limit (exit 1) instead of spinning in OpenBLAS's allocator, and a
# run that fits works, its checkpoints written without a second copy of the model. A run whose
# final checkpoint cannot be written keeps its model and summary. --threads is capped at the
# cores the process may use. nabla runs under valgrind, strace, the dynamic loader, a symbolic
# link and a relative path, and so do tune's trials.
#
# Every nabla below runs under `timeout`: a spin becomes exit 124, a failure, never a hang of
# the test. No check depends on how long anything takes.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# AddressSanitizer reserves terabytes of address space, so ulimit -v and -d cannot work under
# it: those checks are skipped for an ASan build, and say so.
ASAN=0
grep -q __asan_init "$NABLA" && ASAN=1

CGROUP=""
SMALL_FS=""
cleanup() {
    [ -n "$SMALL_FS" ] && umount "$SMALL_FS" 2>/dev/null
    [ -n "$CGROUP" ] && rmdir "$CGROUP" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

# limited OPTION KB ARGS...: nabla ARGS under `ulimit OPTION KB` (-v or -d), like run.
limited() {
    local option=$1 kb=$2
    shift 2
    (ulimit "$option" "$kb" && exec timeout 120 "$NABLA" "$@") >"$WORK/stdout" 2>"$WORK/stderr"
    RC=$?
}

# need_above_room: the last run's "needs N MB ... may use M MB more" has N > M (the need is
# rounded up, the room down: a need that did not fit never reads as fitting).
need_above_room() {
    local need room
    need=$(sed -n 's/.* needs \([0-9]*\) MB.*/\1/p' "$WORK/stderr")
    room=$(sed -n 's/.* may use \([0-9]*\) MB more.*/\1/p' "$WORK/stderr")
    [ -z "$need" ] || [ -z "$room" ] || [ "$need" -gt "$room" ]
}

# refused LIMIT DESC: the last run ended with exit 1 and one line "nabla: [FILE: ]out of
# memory: ... (LIMIT)".
refused() {
    local limit=$1 desc=$2
    if [ "$RC" -eq 1 ] && one_line_error "nabla: " && grep -q "out of memory: " "$WORK/stderr" &&
        grep -qF "($limit" "$WORK/stderr" && need_above_room; then
        pass
    else
        fail "$desc: exit $RC, expected 1 and 'out of memory ... ($limit'; stderr: $(head -c 400 "$WORK/stderr")"
    fi
}

MOONS=(--data moons --epochs 1 --quiet)
BIG=(--layers 8000,8000)   # 64 million weights: 1.3 GB to train, 0.5 GB to evaluate

# A model of 36 MB (3000x3000), more than the margin the checks keep (32 MB), for eval under a
# limit and for the checkpoint that must not copy it.
run train "${MOONS[@]}" --layers 3000,3000 --max-steps 1 --out mid
check "a 3000x3000 model trains without limits (exit $RC)" [ "$RC" -eq 0 ]
run train "${MOONS[@]}" --layers 16 --out small
check "a small model trains without limits (exit $RC)" [ "$RC" -eq 0 ]

if [ "$ASAN" -eq 1 ]; then
    echo "skipped under AddressSanitizer: the ulimit -v and ulimit -d checks (ASan reserves" \
         "terabytes of address space)"
else
    # ---- ulimit -v ----
    # So low that not even the program's libraries can be loaded: the dynamic loader says so.
    limited -v 30000 --version
    check "ulimit -v 30000: startup fails with a message (exit $RC)" \
        test "$RC" -ne 0 -a "$RC" -ne 124 -a -s "$WORK/stderr"
    # Libraries loaded, but not OpenBLAS's buffer and the model: nabla's message, before any
    # product, whatever the command and the size.
    for kb in 60000 150000 400000 1200000; do
        limited -v $kb train "${MOONS[@]}" "${BIG[@]}" --out v$kb
        refused "ulimit -v" "ulimit -v $kb, train 8000x8000"
        check "ulimit -v $kb: nothing written" absent v$kb
    done
    limited -v 1600000 train "${MOONS[@]}" --layers 3000,3000 --samples 256 --out v-3k
    check "ulimit -v 1600000: 3000x3000 trains (exit $RC)" [ "$RC" -eq 0 ]
    for threads in 1 2; do
        limited -v 250000 train "${MOONS[@]}" --layers 2000 --threads $threads --out v-t$threads
        if [ "$threads" -eq 1 ]; then
            check "ulimit -v 250000, 1 thread: a small model trains (exit $RC)" [ "$RC" -eq 0 ]
        else
            # A second thread needs a second OpenBLAS buffer, its stack and its malloc arena:
            # the run takes one thread, saying why (its results do not depend on the count).
            check "ulimit -v 250000, 2 threads: trains on 1 thread (exit $RC)" [ "$RC" -eq 0 ]
            check "... saying so in one note (got: $(head -c 400 "$WORK/stderr"))" \
                grep -q "^nabla train: note: using 1 thread, not 2: training needs [0-9]* MB with 2 threads, but the process may use [0-9]* MB more (ulimit -v" "$WORK/stderr"
            check "... and gives the results of 1 thread" cmp -s v-t1/model.safetensors v-t2/model.safetensors
        fi
    done
    limited -v 150000 eval --model mid/model.safetensors --data moons
    refused "ulimit -v" "ulimit -v 150000, eval of a 36 MB model"
    limited -v 600000 eval --model mid/model.safetensors --data moons --threads 1
    check "ulimit -v 600000: eval of a 36 MB model works (exit $RC)" [ "$RC" -eq 0 ]
    limited -v 150000 report small --out small.html
    refused "ulimit -v" "ulimit -v 150000, report drawing a model's decision regions"
    # Every trial of a study ends on the message, recorded as its reason; the study ends.
    limited -v 1200000 tune "${MOONS[@]}" "${BIG[@]}" --trials 2 --space "lr=log(1e-3,1e-2)" \
        --out study-v
    check "ulimit -v 1200000: tune ends (exit $RC, not 124)" [ "$RC" -ne 124 ]
    check "ulimit -v 1200000: each trial failed on the memory check" \
        [ "$(grep -c '"reason":"out of memory: ' study-v/journal.jsonl)" -eq 2 ]
    check "... journaled failed: a configuration that could never fit" \
        [ "$(grep -c '"state":"failed"' study-v/journal.jsonl)" -eq 2 ]
    # A limit under which no run fits, whatever its configuration (OpenBLAS's buffers and one
    # thread's stack alone do not): not the trials' doing. The first trial is interrupted, the
    # study stops, and the same command without the limit runs every trial.
    NO_RUN=(tune --data moons --epochs 2 --layers 32 --trials 3 --space "lr=log(1e-3,1e-1)"
            --workers 1 --quiet --out study-no-run)
    for kb in 200000 120000; do
        rm -rf study-no-run
        limited -v $kb "${NO_RUN[@]}"
        check "ulimit -v $kb, tune: exit 1 (got $RC)" [ "$RC" -eq 1 ]
        check "ulimit -v $kb, tune: one line, trial 0 interrupted as no run fits ($(head -c 400 "$WORK/stderr"))" \
            eval 'one_line_error "nabla: trial 0 was interrupted (out of memory: " &&
                  grep -q "no run fits under this limit, whatever its configuration: raise it)" "$WORK/stderr"'
        check "ulimit -v $kb, tune: no trial failed, none started after" \
            eval '! grep -q "\"state\":\"failed\"" study-no-run/journal.jsonl &&
                  ! grep -q "\"trial\":1" study-no-run/journal.jsonl'
    done
    run "${NO_RUN[@]}"
    check "... the same command without the limit: exit $RC, 3 trials complete" \
        eval '[ "$RC" -eq 0 ] && [ "$(grep -c "\"state\":\"complete\"" study-no-run/journal.jsonl)" -eq 3 ]'
    limited -v 200000 train "${MOONS[@]}" --layers 8 --out no-run-train
    refused "ulimit -v" "ulimit -v 200000, a tiny train"
    check "... says no run fits" grep -q "; no run fits under this limit, whatever its configuration: raise it$" "$WORK/stderr"

    # Training fits, but a second copy of the model would not: the least limit that passes
    # nabla's checks (found from their own messages: each says how much is missing) leaves the
    # checks' 32 MB margin, less than the 36 MB model, and far less than the 108 MB a copy of
    # the weights and Adam's two moments took before checkpoints were streamed.
    FIT=(--layers 3000,3000 --samples 256 --batch-size 128)
    kb=300000
    for _ in 1 2 3 4 5 6; do
        limited -v $kb train "${MOONS[@]}" "${FIT[@]}" --epochs 2 --out fit
        short=$(sed -n 's/.*out of memory: .* needs \([0-9]*\) MB.* may use \([0-9]*\) MB more (ulimit -v.*/\1 \2/p' \
                "$WORK/stderr")
        [ -z "$short" ] && break
        read -r need may <<<"$short"
        kb=$((kb + (need - may + 1) * 1024))
    done
    check "the least ulimit -v for 3000x3000 ($kb KB): the run works (exit $RC)" [ "$RC" -eq 0 ]
    check "... and writes both checkpoints" \
        eval '[ -s fit/checkpoint.safetensors ] && [ -s fit/checkpoint.prev.safetensors ]'
    run eval --model fit/checkpoint.safetensors --data moons
    check "... which read back (eval exit $RC)" [ "$RC" -eq 0 ]
    # Resumed, the run needs no more than it did: the checkpoint is verified and restored a
    # piece at a time, straight into the model and the training state.
    limited -v $kb train --resume fit --epochs 3 --quiet
    check "resumed under the same limit: works (exit $RC: $(head -c 300 "$WORK/stderr"))" [ "$RC" -eq 0 ]
    limited -v $((kb - 40 * 1024)) train "${MOONS[@]}" "${FIT[@]}" --out fit-less
    refused "ulimit -v" "40 MB below that limit"

    # ---- ulimit -d ----
    limited -d 300000 train "${MOONS[@]}" "${BIG[@]}" --out d-big
    refused "ulimit -d" "ulimit -d 300000, train 8000x8000"
    limited -d 100000 eval --model mid/model.safetensors --data moons
    refused "ulimit -d" "ulimit -d 100000, eval of a 36 MB model"
    limited -d 400000 train "${MOONS[@]}" --layers 64 --out d-small
    check "ulimit -d 400000: a small model trains (exit $RC)" [ "$RC" -eq 0 ]
fi

# ---- a cgroup's memory limit ----
# The test makes a child of its own memory cgroup (v1 or v2, found as nabla finds it) with a
# limit of 300 MB, and runs nabla in it. This needs root, which the tests have: a failure here
# is a failure, not a skip.
memory_cgroup() {
    "$PY" - <<'EOF'
v1 = v2 = None
for line in open("/proc/self/cgroup"):
    hid, ctrls, path = line.rstrip("\n").split(":", 2)
    if "memory" in ctrls.split(","):
        v1 = path
    elif hid == "0" and ctrls == "":
        v2 = path
for line in open("/proc/self/mountinfo"):
    fields, rest = line.split(" - ", 1)
    root, point = fields.split()[3:5]
    kind, _, options = rest.split()[:3]
    for version, path in (("1", v1), ("2", v2)):
        ok = kind == "cgroup" and "memory" in options.split(",") if version == "1" \
            else kind == "cgroup2"
        if ok and path is not None and (root == "/" or path.startswith(root)):
            below = path if root == "/" else path[len(root):]
            print(version, point + below.rstrip("/"))
            raise SystemExit
EOF
}
read -r cg_version cg_parent <<<"$(memory_cgroup)"
if [ "$cg_version" = 2 ]; then
    grep -qw memory "$cg_parent/cgroup.subtree_control" ||
        echo +memory >"$cg_parent/cgroup.subtree_control"
fi
CGROUP=$cg_parent/nabla-test-limits-$$
if mkdir "$CGROUP" 2>/dev/null; then
    if [ "$cg_version" = 1 ]; then
        echo $((300 << 20)) >"$CGROUP/memory.limit_in_bytes"
    else
        echo $((300 << 20)) >"$CGROUP/memory.max"
    fi
    # in_cgroup ARGS...: nabla ARGS inside the cgroup, like run.
    in_cgroup() {
        sh -c 'echo $$ >"$0/cgroup.procs" && exec timeout 120 "$@"' "$CGROUP" "$NABLA" "$@" \
            >"$WORK/stdout" 2>"$WORK/stderr"
        RC=$?
    }
    in_cgroup train "${MOONS[@]}" "${BIG[@]}" --out cg-big
    refused "the memory limit of cgroup $CGROUP" "cgroup of 300 MB, train 8000x8000"
    in_cgroup eval --model mid/model.safetensors --data moons --batch-size 1000000
    check "cgroup of 300 MB: eval of a 36 MB model works (exit $RC)" [ "$RC" -eq 0 ]
    in_cgroup train "${MOONS[@]}" --layers 6000,6000 --out cg-6k
    refused "the memory limit of cgroup $CGROUP" "cgroup of 300 MB, train 6000x6000"
    in_cgroup train "${MOONS[@]}" --layers 64 --out cg-small
    check "cgroup of 300 MB: a small model trains (exit $RC)" [ "$RC" -eq 0 ]
else
    fail "cannot create a memory cgroup under $cg_parent (version ${cg_version:-none})"
    CGROUP=""
fi

# ---- the final checkpoint cannot be written ----
# 512x512 with Adam: a 1 MB model, a 3 MB checkpoint. With files limited to 2 MB (ulimit -f),
# the run's only checkpoint fails; the run still writes its model and summary, and says so.
SMALLRUN=(train --data moons --layers 512,512 --quiet)
(ulimit -f 2048 && exec timeout 120 "$NABLA" "${SMALLRUN[@]}" --epochs 1 --out fsize) \
    >"$WORK/stdout" 2>"$WORK/stderr"
RC=$?
check "ulimit -f: the final checkpoint fails, the run does not (exit $RC)" [ "$RC" -eq 0 ]
check "... its model and summary are written" \
    eval '[ -s fsize/model.safetensors ] && valid_json fsize/summary.json'
check "... no checkpoint file is left" \
    eval 'absent fsize/checkpoint.safetensors && absent fsize/checkpoint.next.safetensors'
check "... nor any temporary file ($(ls -A fsize | tr '\n' ' '))" \
    bash -c "! ls -A fsize | grep -q 'tmp'"
check "... the write failed with File too large (SIGXFSZ ignored by nabla, not by the shell)" \
    grep -q "File too large" "$WORK/stderr"
check "... and it says so in one line" one_line_error "nabla: warning: the run is complete"
grep -q "there is no checkpoint to continue from" "$WORK/stderr" && pass ||
    fail "the warning says no checkpoint is left: $(cat "$WORK/stderr")"
run eval --model fsize/model.safetensors --data moons
check "... the model reads back (eval exit $RC)" [ "$RC" -eq 0 ]
# The same at --max-steps, the run's end in the middle of an epoch.
(ulimit -f 2048 && exec timeout 120 "$NABLA" "${SMALLRUN[@]}" --epochs 3 \
    --max-steps 5 --out fsize-steps) >"$WORK/stdout" 2>"$WORK/stderr"
RC=$?
check "ulimit -f, --max-steps 5: exit $RC, the model written" \
    eval '[ "$RC" -eq 0 ] && [ -s fsize-steps/model.safetensors ]'
# A checkpoint in the middle of the run that cannot be written still stops it (exit 1).
(ulimit -f 2048 && exec timeout 120 "$NABLA" "${SMALLRUN[@]}" --epochs 3 \
    --out fsize-mid) >"$WORK/stdout" 2>"$WORK/stderr"
RC=$?
check "ulimit -f, a checkpoint before the end: the run stops (exit $RC)" [ "$RC" -eq 1 ]

# A disk with room for the first checkpoint but not the second (the new one is written beside
# the old): the run of 2 epochs ends complete, its checkpoint from epoch 1; resumed from it, it
# trains epoch 2 again to the same model, byte for byte.
SMALL_FS=$WORK/small-fs
mkdir "$SMALL_FS"
# Adam's checkpoint is 3 times the model (M = 1.06 MB): the disk must hold C + 2M (a
# checkpoint, the model and its replacement) but not 2C: 5.3 MB < 5.8 MB < 6.4 MB.
if mount -t tmpfs -o size=5800k tmpfs "$SMALL_FS"; then
    run "${SMALLRUN[@]}" --epochs 2 --batch-size 500 --out "$SMALL_FS/run"
    check "a full disk at the final checkpoint: the run ends (exit $RC)" [ "$RC" -eq 0 ]
    check "... with its model and summary" \
        eval '[ -s "$SMALL_FS/run/model.safetensors" ] && valid_json "$SMALL_FS/run/summary.json"'
    grep -q "final checkpoint was not written: .*No space left on device; --resume would continue from step 2" \
        "$WORK/stderr" && pass || fail "the warning names the checkpoint left: $(cat "$WORK/stderr")"
    check "... and the checkpoint of epoch 1" [ -s "$SMALL_FS/run/checkpoint.safetensors" ]
    cp "$SMALL_FS/run/model.safetensors" full-disk-model.safetensors
    run train --resume "$SMALL_FS/run" --quiet
    check "resumed from it: exit $RC" [ "$RC" -eq 0 ]
    check "... the same model, byte for byte" \
        cmp -s full-disk-model.safetensors "$SMALL_FS/run/model.safetensors"
    umount "$SMALL_FS" && SMALL_FS=""
else
    fail "cannot mount a small tmpfs"
fi

# ---- --threads ----
CORES=$(nproc)
threads_of() { json "$1/config.json" 'j["threads"]'; }
run train "${MOONS[@]}" --layers 8 --threads 10000 --out t-many
check "train --threads 10000: runs on the $CORES cores (exit $RC)" \
    eval '[ "$RC" -eq 0 ] && [ "$(threads_of t-many)" -eq "$CORES" ]'
check "... and says why in one line" one_line_error "nabla train: note: --threads 10000"
grep -qF "results do not depend on the thread count" "$WORK/stderr" && pass ||
    fail "the note says results do not depend on it: $(cat "$WORK/stderr")"
run train "${MOONS[@]}" --layers 8 --threads "$CORES" --out t-cores
check "--threads $CORES: no note" eval '[ "$RC" -eq 0 ] && [ ! -s "$WORK/stderr" ]'
check "... the same model as with 10000 asked" \
    cmp -s t-many/model.safetensors t-cores/model.safetensors
taskset -c 0 "$NABLA" train "${MOONS[@]}" --layers 8 --threads 2 --out t-taskset \
    >"$WORK/stdout" 2>"$WORK/stderr"
check "under taskset -c 0, --threads 2 runs 1 thread, with the note" \
    eval '[ "$(threads_of t-taskset)" -eq 1 ] &&
          grep -q "may run on 1 core: using 1 thread" "$WORK/stderr"'
taskset -c 0 "$NABLA" train "${MOONS[@]}" --layers 8 --out t-taskset-default \
    >"$WORK/stdout" 2>"$WORK/stderr"
check "under taskset -c 0, the default is 1 thread, without a note" \
    eval '[ "$(threads_of t-taskset-default)" -eq 1 ] && [ ! -s "$WORK/stderr" ]'
run eval --model small/model.safetensors --data moons --threads 999
check "eval --threads 999: works (exit $RC) with the note" \
    eval '[ "$RC" -eq 0 ] && one_line_error "nabla eval: note: --threads 999"'
run tune "${MOONS[@]}" --layers 8 --trials 1 --threads 500 --space "lr=log(1e-3,1e-2)" \
    --out study-threads
check "tune --threads 500: works (exit $RC) with the note" \
    eval '[ "$RC" -eq 0 ] &&
          grep -q "^nabla tune: note: --threads 500, but a trial may run on" "$WORK/stderr"'
check "... its trial ran on the cores" [ "$(threads_of study-threads/trials/0)" -le "$CORES" ]
expect_exit 2 "train --threads 0" train "${MOONS[@]}" --threads 0 --out t0
expect_exit 2 "train --threads -3" train "${MOONS[@]}" --threads -3 --out t0
expect_exit 2 "eval --threads 0" eval --model small/model.safetensors --data moons --threads 0
expect_exit 2 "tune --threads 0" tune "${MOONS[@]}" --threads 0 --out t0
check "... none of them wrote anything" absent t0

# ---- wrappers ----
# The restart that sets OpenBLAS's kernel must not restart the wrapper, and tune's trials must
# start nabla. Runs stay tiny under valgrind.
TINY=(train --data moons --samples 200 --layers 4 --epochs 1 --quiet)
if [ "$ASAN" -eq 1 ]; then
    echo "skipped under AddressSanitizer: valgrind (it cannot run an ASan build)"
elif ! command -v valgrind >/dev/null; then
    fail "valgrind is not installed"
else
    timeout 300 valgrind -q --error-exitcode=99 "$NABLA" --version >"$WORK/stdout" 2>"$WORK/stderr"
    check "valgrind nabla --version (exit $?)" grep -q '^nabla ' "$WORK/stdout"
    timeout 300 valgrind -q --error-exitcode=99 "$NABLA" "${TINY[@]}" --out vg \
        >"$WORK/stdout" 2>"$WORK/stderr"
    RC=$?
    check "valgrind nabla train: exit $RC, no error; $(head -c 300 "$WORK/stderr")" \
        eval '[ "$RC" -eq 0 ] && [ -s vg/model.safetensors ]'
    timeout 300 valgrind -q --error-exitcode=99 --trace-children=no "$NABLA" tune \
        --data moons --samples 200 --epochs 1 --trials 2 --space "lr=log(1e-3,1e-2)" \
        --layers 4 --quiet --out vg-study >"$WORK/stdout" 2>"$WORK/stderr"
    RC=$?
    check "valgrind nabla tune: exit $RC; $(head -c 300 "$WORK/stderr")" [ "$RC" -eq 0 ]
    check "... both trials complete" \
        [ "$(grep -c '"state":"complete"' vg-study/journal.jsonl)" -eq 2 ]
fi
kernel_of() { json "$1/config.json" 'j["blas_kernel"]'; }
run "${TINY[@]}" --out direct
check "a direct run (exit $RC)" [ "$RC" -eq 0 ]
ASAN_OPTIONS=$TRACED_ASAN strace -f -o /dev/null "$NABLA" "${TINY[@]}" --out strace >/dev/null 2>"$WORK/stderr"
check "under strace -f: exit $?, the same kernel as a direct run" \
    [ "$(kernel_of strace)" = "$(kernel_of direct)" ]
ln -s "$NABLA" nabla-link
./nabla-link "${TINY[@]}" --out link >/dev/null 2>&1
check "through a symbolic link: the same kernel" [ "$(kernel_of link)" = "$(kernel_of direct)" ]
mkdir sub
(cd sub && ../nabla-link "${TINY[@]}" --out ../relative >/dev/null 2>&1)
check "through a relative path: the same kernel" [ "$(kernel_of relative)" = "$(kernel_of direct)" ]
(PATH=$WORK:$PATH && ln -s "$NABLA" "$WORK/nabla" && nabla "${TINY[@]}" --out path >/dev/null 2>&1)
check "found through PATH: the same kernel" [ "$(kernel_of path)" = "$(kernel_of direct)" ]
LOADER=$(ldd "$NABLA" | awk '/ld-linux/ {print $1}')
"$LOADER" "$NABLA" "${TINY[@]}" --out loader >/dev/null 2>"$WORK/stderr"
check "through the dynamic loader by hand: exit $?, a model" [ -s loader/model.safetensors ]
(cd sub && ../nabla-link tune --data moons --samples 200 --epochs 1 --trials 1 \
    --space "lr=log(1e-3,1e-2)" --layers 4 --quiet --out ../link-study >/dev/null 2>&1)
check "tune through a relative symbolic link: its trial completes" \
    grep -q '"state":"complete"' link-study/journal.jsonl

finish

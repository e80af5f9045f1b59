#!/bin/bash
# One rule for every file nabla writes, by what its path leads to:
# - nothing or a regular file: replaced atomically (an existing file keeps its permissions);
# - a symbolic link or a chain of them: followed, the final target replaced (a dangling link
#   gets its target); the links stay links;
# - a character device or a FIFO: written through, and left what it is (a FIFO without a
#   reader is an error, not a hang);
# - a directory, a socket, a block device: refused with one line naming the path and the kind.
# Tried on every kind of writer: --save-weights, report --out, the files of a run directory
# (model.safetensors, metrics.jsonl, config.json, summary.json, trace.jsonl, steps.jsonl), the
# checkpoints (regular files only: nabla renames and removes them), and a study's files
# (best.json, journal.jsonl, a trial's train.log). Then the --out rule: train writes into a new
# or empty directory or a run's, tune into a new or empty directory or a study's; anything else
# is refused before anything is written, naming what is there.
# mknod needs root (as here and in CI); the test fails if it cannot make the devices.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

STARTED=$SECONDS
TRAIN=(train --data moons --samples 200 --layers 4 --epochs 2 --test none --quiet)
READERS=()
trap 'for p in "${READERS[@]}"; do kill -9 "$p" 2>/dev/null; done; rm -rf "$WORK"' EXIT
# A FIFO nobody reads must not hang a writer: every nabla runs under a time limit (exit 124).
printf '#!/bin/sh\nexec timeout 120 "%s" "$@"\n' "$NABLA" >nabla-timeout
chmod +x nabla-timeout
REAL_NABLA=$NABLA   # for runs in the background, stopped and signalled themselves
NABLA=$WORK/nabla-timeout

KINDS=(chardev fifo-reader fifo-noreader link-file chain dangling link-dir dir socket blockdev)

# aside PATH SUFFIX: where plant puts what goes with PATH (a link's target, a FIFO's copy): next
# to it for a name in the working directory, else in aside/, out of the run or study directory
# (which must hold nothing foreign).
mkdir aside
aside() {
    case $1 in
    */*) echo "$WORK/aside/${1//\//_}.$2" ;;
    *) echo "$1.$2" ;;
    esac
}

# link_to PATH SUFFIX: what a link at PATH says to reach aside PATH SUFFIX: relative next to
# it, else absolute.
link_to() {
    case $1 in
    */*) aside "$1" "$2" ;;
    *) echo "$1.$2" ;;
    esac
}

# plant KIND PATH: puts a KIND at PATH. A link reaches its target, aside PATH target (a chain
# goes through aside PATH link), a link to a directory aside PATH d. A FIFO's reader copies
# what it reads to aside PATH got; its pid is READER.
plant() {
    local kind=$1 path=$2
    case $kind in
    chardev) check "mknod c 1 3 at $path" mknod "$path" c 1 3 ;;
    blockdev) check "mknod b 7 200 at $path" mknod "$path" b 7 200 ;;
    fifo-reader)
        mkfifo "$path"
        timeout 120 cat "$path" >"$(aside "$path" got)" &
        READER=$!
        READERS+=("$READER")
        ;;
    fifo-noreader) mkfifo "$path" ;;
    link-file)
        echo old >"$(aside "$path" target)"
        chmod 640 "$(aside "$path" target)"
        ln -s "$(link_to "$path" target)" "$path"
        ;;
    chain)
        echo old >"$(aside "$path" target)"
        chmod 640 "$(aside "$path" target)"
        ln -s "$(link_to "$path" target)" "$(aside "$path" link)"
        ln -s "$(aside "$path" link)" "$path"
        ;;
    dangling) ln -s "$(link_to "$path" target)" "$path" ;;
    link-dir)
        mkdir "$(aside "$path" d)"
        ln -s "$(link_to "$path" d)" "$path"
        ;;
    dir) mkdir "$path" ;;
    socket) "$PY" -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$path" ;;
    esac
}

# Comparisons of what was written (the file with the bytes) with what should have been: the
# same bytes; the same metrics lines but for the seconds; any valid JSON; any JSON lines.
same_bytes() { cmp -s "$1" "$2"; }
same_metrics() {
    pytrue "[dict(json.loads(l), seconds=0) for l in open('$1')] == [dict(json.loads(l), seconds=0) for l in open('$2')]"
}
any_json() { valid_json "$1"; }
json_lines() { pytrue "len([json.loads(l) for l in open('$1')]) > 0"; }

# verify WHAT KIND PATH COMPARE REF: after a write to PATH, planted as KIND (RC and stderr from
# `run`), checks how it ended: written (COMPARE FILE REF on what got the bytes), or refused with
# one line naming PATH and what it is. PATH is as the message names it.
verify() {
    local what=$1 kind=$2 path=$3 compare=$4 ref=$5 msg
    msg=$(head -c 400 "$WORK/stderr")
    case $kind in
    chardev)
        check "$what, a character device: exit 0 (got $RC: $msg)" [ "$RC" -eq 0 ]
        check "$what, a character device: still one" [ -c "$path" ]
        ;;
    fifo-reader)
        check "$what, a FIFO with a reader: exit 0 (got $RC: $msg)" [ "$RC" -eq 0 ]
        [ "$RC" -eq 0 ] || kill "$READER"
        wait "$READER"
        check "$what, a FIFO with a reader: still a FIFO" [ -p "$path" ]
        check "$what, a FIFO with a reader: it read what was written" \
            "$compare" "$(aside "$path" got)" "$ref"
        ;;
    fifo-noreader)
        check "$what, a FIFO without a reader: exit 1, no hang (got $RC: $msg)" [ "$RC" -eq 1 ]
        check "$what, a FIFO without a reader: one line naming it" one_line_error "nabla: "
        check "$what, a FIFO without a reader: says so (got: $msg)" \
            grep -qF "$path: a FIFO with no reader" "$WORK/stderr"
        check "$what, a FIFO without a reader: still a FIFO" [ -p "$path" ]
        ;;
    link-file | chain)
        check "$what, a $kind: exit 0 (got $RC: $msg)" [ "$RC" -eq 0 ]
        check "$what, a $kind: the link stays a link" [ -L "$path" ]
        [ "$kind" = chain ] && check "$what, a chain: the link in the middle stays" \
            [ "$(readlink "$(aside "$path" link)")" = "$(link_to "$path" target)" ]
        local target
        target=$(aside "$path" target)
        check "$what, a $kind: the target is written" "$compare" "$target" "$ref"
        check "$what, a $kind: the target keeps its permissions (got $(stat -c %a "$target"))" \
            [ "$(stat -c %a "$target")" = 640 ]
        check "$what, a $kind: no temporary file left" \
            [ -z "$(find "$(dirname "$path")" "$(dirname "$target")" -name '*.tmp.*')" ]
        ;;
    dangling)
        check "$what, a dangling link: exit 0 (got $RC: $msg)" [ "$RC" -eq 0 ]
        check "$what, a dangling link: still a link" [ -L "$path" ]
        check "$what, a dangling link: its target is created" \
            "$compare" "$(aside "$path" target)" "$ref"
        ;;
    link-dir | dir | socket | blockdev)
        local says
        case $kind in
        link-dir) says="is a symbolic link to a directory" ;;
        dir) says="is a directory" ;;
        socket) says="is a socket" ;;
        blockdev) says="is a block device" ;;
        esac
        check "$what, a $kind: exit 1 (got $RC)" [ "$RC" -eq 1 ]
        check "$what, a $kind: one line (got: $msg)" one_line_error "nabla: "
        check "$what, a $kind: names it and what it is (got: $msg)" \
            grep -qF "$path: $says" "$WORK/stderr"
        case $kind in
        link-dir) check "$what: the link and its empty directory stay" \
            bash -c "[ -L '$path' ] && [ -z \"\$(ls -A '$(aside "$path" d)')\" ]" ;;
        dir) check "$what: the directory stays, empty" bash -c "[ -d '$path' ] && [ -z \"\$(ls -A '$path')\" ]" ;;
        socket) check "$what: the socket stays" [ -S "$path" ] ;;
        blockdev) check "$what: the block device stays" [ -b "$path" ] ;;
        esac
        ;;
    esac
}

refused() { case $1 in link-dir | dir | socket | blockdev) return 0 ;; esac; return 1; }

# ---- references --------------------------------------------------------------------------------
run "${TRAIN[@]}" --out ref
check "the reference run exits 0 (stderr: $(head -c 300 "$WORK/stderr"))" [ "$RC" -eq 0 ]
run report ref --out ref.html
check "the reference report exits 0" [ "$RC" -eq 0 ]

# ---- --save-weights ----------------------------------------------------------------------------
for kind in "${KINDS[@]}"; do
    plant "$kind" "sw-$kind"
    run "${TRAIN[@]}" --out "swrun-$kind" --save-weights "sw-$kind"
    verify "--save-weights" "$kind" "sw-$kind" same_bytes "swrun-$kind/model.safetensors"
    refused "$kind" && check "--save-weights, a $kind: refused before anything is written" \
        absent "swrun-$kind"
done
expect_exit 0 "--save-weights /dev/null" "${TRAIN[@]}" --out devnull --save-weights /dev/null
check "--save-weights /dev/null: /dev/null is still a character device" [ -c /dev/null ]
expect_exit 0 "--save-weights to a regular file" "${TRAIN[@]}" --out regular --save-weights regular.safetensors
check "--save-weights to a regular file: the model's bytes" \
    cmp -s regular.safetensors regular/model.safetensors

# ---- report --out ------------------------------------------------------------------------------
for kind in "${KINDS[@]}"; do
    plant "$kind" "rep-$kind"
    run report ref --out "rep-$kind"
    verify "report --out" "$kind" "rep-$kind" same_bytes ref.html
done
"$NABLA" report ref --out /dev/stdout >stdout.html 2>"$WORK/stderr"
check "report --out /dev/stdout (a file): the report" cmp -s stdout.html ref.html
"$NABLA" report ref --out /dev/stdout 2>"$WORK/stderr" | cat >piped.html
check "report --out /dev/stdout (a pipe): the report, then the line that says so" \
    bash -c "cmp -s -n $(stat -c %s ref.html) piped.html ref.html && [ \"\$(tail -1 piped.html)\" = 'wrote /dev/stdout' ]"
# The default DIR/report.html is written by the same rule.
cp -r ref rdev
rm -f rdev/report.html rdev/.lock
plant chardev rdev/report.html
run report rdev
check "report DIR with DIR/report.html a device: exit 0 (got $RC)" [ "$RC" -eq 0 ]
check "report DIR: report.html is still a device" [ -c rdev/report.html ]

# ---- the files of a run directory, put there before the run ------------------------------------
# in_run NAME KIND COMPARE REF [TRAIN OPTIONS...]: a new run into a directory holding a KIND at
# NAME.
in_run() {
    local name=$1 kind=$2 compare=$3 ref=$4 dir
    shift 4
    dir=d-${name%%.*}-$kind
    mkdir "$dir"
    plant "$kind" "$dir/$name"
    run "${TRAIN[@]}" --out "$dir" "$@"
    verify "a run's $name" "$kind" "$dir/$name" "$compare" "$ref"
    refused "$kind" && check "a run's $name, a $kind: refused before anything is written" \
        [ "$(ls -A "$dir")" = "$name" ]
}
for kind in chardev fifo-reader fifo-noreader link-dir dir socket blockdev; do
    in_run model.safetensors "$kind" same_bytes ref/model.safetensors
done
for kind in chardev fifo-reader fifo-noreader link-file dangling dir socket; do
    in_run metrics.jsonl "$kind" same_metrics ref/metrics.jsonl
done
for kind in chain chardev dir; do
    in_run config.json "$kind" any_json ""
done
for kind in chardev dir; do
    in_run summary.json "$kind" any_json ""
done
# model.safetensors and summary.json are removed when a run starts (a run in progress has
# neither, and an interrupted one must not show an earlier run's): a link there is refused, not
# followed, as for any file a run removes; what it leads to is left alone.
for name in model.safetensors summary.json; do
    for kind in link-file chain dangling; do
        dir=lk-${name%%.*}-$kind
        mkdir "$dir"
        plant "$kind" "$dir/$name"
        run "${TRAIN[@]}" --out "$dir"
        check "a run's $name, a $kind: refused (got $RC)" [ "$RC" -eq 1 ]
        check "a run's $name, a $kind: one line, it would be removed (got: $(head -c 300 "$WORK/stderr"))" \
            one_line_error "nabla: $dir/$name: is a symbolic link, which a run removes when it starts"
        check "a run's $name, a $kind: nothing written" [ "$(ls -A "$dir")" = "$name" ]
        check "a run's $name, a $kind: the link and what it leads to are left alone" \
            bash -c "[ -L $dir/$name ] && { [ '$kind' = dangling ] || [ \"\$(cat '$(aside "$dir/$name" target)')\" = old ]; }"
    done
done
for kind in fifo-reader link-file chardev blockdev; do
    in_run trace.jsonl "$kind" json_lines "" --trace-activations --trace-every 1
done
for kind in dangling chardev socket; do
    in_run steps.jsonl "$kind" json_lines "" --eval-every 5 --dev-fraction 0.2
done
# A new run removes an earlier run's trace.jsonl when it does not trace: only a regular file.
for kind in fifo-noreader chardev link-file; do
    mkdir "rm-$kind"
    plant "$kind" "rm-$kind/trace.jsonl"
    run "${TRAIN[@]}" --out "rm-$kind"
    check "an earlier run's trace.jsonl, a $kind: refused (got $RC)" [ "$RC" -eq 1 ]
    check "an earlier run's trace.jsonl, a $kind: says it would be removed (got: $(head -c 300 "$WORK/stderr"))" \
        one_line_error "nabla: rm-$kind/trace.jsonl: is a"
    check "an earlier run's trace.jsonl, a $kind: left alone" \
        bash -c "[ -L rm-$kind/trace.jsonl ] || [ -p rm-$kind/trace.jsonl ] || [ -c rm-$kind/trace.jsonl ]"
    check "an earlier run's trace.jsonl, a $kind: nothing written" absent "rm-$kind/config.json"
done

# ---- checkpoints: regular files only (nabla renames and removes them) ---------------------------
ckpt_refused() {
    local name=$1 kind=$2 dir=c-${1%%.safetensors}-$2
    mkdir "$dir"
    plant "$kind" "$dir/$name"
    run "${TRAIN[@]}" --out "$dir"
    check "$name, a $kind: exit 1 (got $RC)" [ "$RC" -eq 1 ]
    check "$name, a $kind: one line naming it (got: $(head -c 300 "$WORK/stderr"))" \
        one_line_error "nabla: $dir/$name: is a"
    check "$name, a $kind: says checkpoints are regular files" \
        grep -q "keeps its checkpoints as regular files" "$WORK/stderr"
    check "$name, a $kind: nothing written" absent "$dir/config.json"
    check "$name, a $kind: left as it was" \
        bash -c "[ -L $dir/$name ] || [ -p $dir/$name ] || [ -c $dir/$name ] || [ -d $dir/$name ]"
}
for kind in link-file chardev fifo-noreader dir; do
    ckpt_refused checkpoint.safetensors "$kind"
done
ckpt_refused checkpoint.prev.safetensors chardev
ckpt_refused checkpoint.next.safetensors dangling
check "the link's target is untouched" \
    [ "$(cat "$(aside c-checkpoint-link-file/checkpoint.safetensors target)")" = old ]
# A resumed run whose older checkpoint was replaced by a link is refused the same way.
run "${TRAIN[@]}" --out resumed
mv resumed/checkpoint.prev.safetensors elsewhere.safetensors
ln -s ../elsewhere.safetensors resumed/checkpoint.prev.safetensors
run train --resume resumed --epochs 4
check "--resume with a linked checkpoint: refused (got $RC)" [ "$RC" -eq 1 ]
check "--resume with a linked checkpoint: names it" \
    grep -q "resumed/checkpoint.prev.safetensors: is a symbolic link" "$WORK/stderr"

# ---- a study's files ---------------------------------------------------------------------------
STUDY=(tune --data moons --samples 200 --epochs 1 --trials 2 --space "lr=log(1e-3,1e-1)" --quiet)
# in_study NAME KIND COMPARE: a new study into a directory holding trials/ and a KIND at NAME.
in_study() {
    local name=$1 kind=$2 compare=$3 dir=s-${1//\//-}-$2
    mkdir -p "$dir/trials"
    mkdir -p "$(dirname "$dir/$name")"
    plant "$kind" "$dir/$name"
    # a journal is read back: it starts empty
    [ "$name" = journal.jsonl ] && [ -f "$(aside "$dir/$name" target)" ] && : >"$(aside "$dir/$name" target)"
    run "${STUDY[@]}" --out "$dir"
    verify "a study's $name" "$kind" "$dir/$name" "$compare" ""
    refused "$kind" && check "a study's $name, a $kind: refused before anything is written" \
        absent "$dir/study.json"
}
for kind in chardev link-file dangling dir socket; do
    in_study best.json "$kind" any_json
done
for kind in link-file dangling; do
    in_study journal.jsonl "$kind" json_lines
done
# appended_to FILE: the trial's log went after what the file held.
appended_to() { [ "$(head -1 "$1")" = old ]; }
for kind in chardev link-file; do
    in_study trials/0/train.log "$kind" appended_to
done

# ---- nabla's own files: no output lands on one, no write reaches one through a link ------------
# A run's and a study's files (the lock, config.json, metrics.jsonl, a checkpoint, study.json,
# journal.jsonl, a trial's files, the decompressed data/, ...) are written by their run or
# study under their own names only. --save-weights and report --out naming one, directly, through
# a link or a linked directory, are refused with one line before anything is written; so is a
# file of a run or a study that is a link leading to one (another run's, or its own lock).
run "${TRAIN[@]}" --out own
check "a run to protect exits 0" [ "$RC" -eq 0 ]
run "${STUDY[@]}" --out ownst
check "a study to protect exits 0" [ "$RC" -eq 0 ]
mkdir ownst/data && echo data >ownst/data/train-images-idx3-ubyte
cp -a own own.orig
cp -a ownst ownst.orig
untouched() { diff -r own own.orig >/dev/null && diff -r ownst ownst.orig >/dev/null; }
ln -s own/metrics.jsonl lk-metrics
ln -s lk-metrics lk-chain
ln -s own lk-rundir
ln -s ../own/.lock aside/lk-lock
OWNED=(own/.lock own/config.json own/metrics.jsonl own/summary.json own/model.safetensors
       own/checkpoint.safetensors own/checkpoint.prev.safetensors own/train.log
       own/config.json.tmp.1.0 ownst/study.json ownst/journal.jsonl ownst/best.json ownst/.lock
       ownst/trials/0/metrics.jsonl ownst/trials/0/train.log ownst/trials/1/.lock
       ownst/data/train-images-idx3-ubyte lk-metrics lk-chain lk-rundir/summary.json
       aside/lk-lock)
n=0
for target in "${OWNED[@]}"; do
    n=$((n + 1))
    run "${TRAIN[@]}" --out "swo-$n" --save-weights "$target"
    check "--save-weights $target: refused (got $RC)" [ "$RC" -eq 1 ]
    check "--save-weights $target: one line saying it is nabla's own (got: $(head -c 300 "$WORK/stderr"))" \
        bash -c "one_line() { [ \$(wc -l <'$WORK/stderr') -eq 1 ]; }; one_line && grep -q '^nabla: --save-weights $target: \(is\|leads to\) .*which nabla writes itself: give another file name$' '$WORK/stderr'"
    check "--save-weights $target: nothing written" absent "swo-$n"
    run report own --out "$target"
    check "report --out $target: refused (got $RC)" [ "$RC" -eq 1 ]
    check "report --out $target: one line saying it is nabla's own (got: $(head -c 300 "$WORK/stderr"))" \
        bash -c "[ \$(wc -l <'$WORK/stderr') -eq 1 ] && grep -q '^nabla: --out $target: \(is\|leads to\) .*which nabla writes itself' '$WORK/stderr'"
done
check "the run and the study are untouched by all of it" untouched
# The run being written: its own names, and anything inside it (it holds its files only).
run "${TRAIN[@]}" --out swnew --save-weights swnew/model.safetensors
check "--save-weights into the new run's own model.safetensors: refused (got: $(head -c 300 "$WORK/stderr"))" \
    one_line_error "nabla: --save-weights swnew/model.safetensors: is this run's own model.safetensors (in swnew)"
check "... nothing written" absent swnew
run "${TRAIN[@]}" --out own --save-weights own/weights.safetensors
check "--save-weights inside the run's directory: refused (got: $(head -c 300 "$WORK/stderr"))" \
    one_line_error "nabla: --save-weights own/weights.safetensors: is inside this run's directory own"
for name in .lock metrics.jsonl; do
    run "${TRAIN[@]}" --out own --save-weights "own/$name"
    check "--save-weights own/$name into the run own: refused" \
        one_line_error "nabla: --save-weights own/$name: is this run's own $name (in own)"
done
check "the run is untouched" untouched
# A report goes where reports go: report.html, in a run or a study.
expect_exit 0 "report --out another run's report.html" report ref --out own/report.html
expect_exit 0 "report --out a study's report.html" report ref --out ownst/report.html
rm -f own/report.html ownst/report.html
# A run's own files, links to nabla's own files: refused before anything is written.
glink() {
    local name=$1 to=$2
    shift 2
    local dir=gl-$((n += 1))
    mkdir "$dir"
    ln -s "$to" "$dir/$name"
    run "${TRAIN[@]}" --out "$dir" "$@"
    check "a run's $name linked to $to: refused (got $RC)" [ "$RC" -eq 1 ]
    check "a run's $name linked to $to: one line naming it (got: $(head -c 300 "$WORK/stderr"))" \
        bash -c "[ \$(wc -l <'$WORK/stderr') -eq 1 ] && grep -q '^nabla: $dir/$name: is a symbolic link to .*, a file of the \(run directory\|study\|run or study directory\) .*never through a link' '$WORK/stderr'"
    check "a run's $name linked to $to: nothing written, no lock taken" [ "$(ls -A "$dir")" = "$name" ]
}
glink config.json ../own/metrics.jsonl
glink config.json .lock
glink metrics.jsonl .lock
glink metrics.jsonl "$WORK/own/.lock"
glink metrics.jsonl ../ownst/journal.jsonl
glink config.json ../lk-chain
glink metrics.jsonl ../own/checkpoint.safetensors
glink trace.jsonl ../ownst/trials/0/metrics.jsonl --trace-activations
glink steps.jsonl ../own/config.json --eval-every 5 --dev-fraction 0.2
glink config.json ../lk-rundir/summary.json
check "the run and the study are untouched by the links" untouched
# A study's files likewise.
slink() {
    local name=$1 to=$2 dir=sl-$((n += 1))
    mkdir -p "$dir/trials/0"
    ln -s "$to" "$dir/$name"
    run "${STUDY[@]}" --out "$dir"
    check "a study's $name linked to $to: refused (got $RC: $(head -c 300 "$WORK/stderr"))" \
        bash -c "[ $RC -eq 1 ] && grep -q '^nabla: $dir/$name: is a symbolic link to .*never through a link' '$WORK/stderr'"
}
slink best.json ../own/summary.json
slink journal.jsonl ../ownst/journal.jsonl
slink trials/0/train.log ../../../own/metrics.jsonl
check "the run and the study are untouched by the study's links" untouched
# What a run removes when it starts (an earlier run's summary.json and model.safetensors): a
# link there is refused, not followed, wherever it leads.
echo "my thesis" >thesis.txt
for pair in summary.json:../thesis.txt summary.json:../own/checkpoint.safetensors \
            model.safetensors:../own/model.safetensors summary.json:.lock; do
    name=${pair%%:*} to=${pair#*:} dir=rl-$((n += 1))
    mkdir "$dir"
    ln -s "$to" "$dir/$name"
    run "${TRAIN[@]}" --out "$dir"
    check "a run's $name linked to $to: refused, one line (got $RC: $(head -c 300 "$WORK/stderr"))" \
        bash -c "[ $RC -eq 1 ] && [ \$(wc -l <'$WORK/stderr') -eq 1 ] && grep -q '^nabla: $dir/$name: is a symbolic link' '$WORK/stderr'"
    check "a run's $name linked to $to: nothing written" [ "$(ls -A "$dir")" = "$name" ]
done
check "what the links led to is still there" bash -c "[ \"\$(cat thesis.txt)\" = 'my thesis' ]"
check "the run is untouched by the removals" untouched

# ---- a new run shows no earlier run's results -------------------------------------------------
# A run removes the model.safetensors and summary.json an earlier run (or the run it resumes)
# left, when it starts: interrupted, it leaves none beside its own curves.
# holds DIR PID: DIR/.lock names PID; started DIR: the run has written its first checkpoint.
holds() { grep -q "^pid $2 on host " "$1/.lock" 2>/dev/null; }
wait_for() {
    local i
    for ((i = 0; i < 3000; i++)); do "$@" && return 0; sleep 0.02; done
    return 1
}
for how in new resumed; do
    dir=older-$how
    run "${TRAIN[@]}" --out "$dir"
    earlier=$(stat -c %i "$dir/metrics.jsonl")
    if [ "$how" = new ]; then
        "$REAL_NABLA" train --data moons --samples 200 --layers 16,16 --epochs 100000 --test none \
            --quiet --out "$dir" >/dev/null 2>"$WORK/stderr" &
    else
        "$REAL_NABLA" train --resume "$dir" --epochs 100000 --quiet >/dev/null 2>"$WORK/stderr" &
    fi
    pid=$!
    READERS+=("$pid")
    # Started: its own metrics.jsonl (a new file, after the removals) has a line.
    check "a $how run into an earlier run's directory starts" \
        wait_for bash -c "grep -q '^pid $pid ' $dir/.lock && [ -s $dir/metrics.jsonl ] &&
                          [ \$(stat -c %i $dir/metrics.jsonl) != $earlier ]"
    kill -STOP "$pid"
    check "a $how run in progress: no model.safetensors, no summary.json (got: $(ls "$dir" | tr '\n' ' '))" \
        bash -c "[ ! -e $dir/model.safetensors ] && [ ! -e $dir/summary.json ]"
    kill -INT "$pid"
    kill -CONT "$pid"
    wait "$pid"
    RC=$?
    check "a $how run interrupted: exit 130 (got $RC: $(head -c 300 "$WORK/stderr"))" [ "$RC" -eq 130 ]
    check "a $how run interrupted: still no earlier model or summary" \
        bash -c "[ ! -e $dir/model.safetensors ] && [ ! -e $dir/summary.json ]"
    expect_exit 1 "a $how run interrupted: eval finds no model to take for it" \
        eval --model "$dir/model.safetensors" --data moons --samples 200
done

# ---- messages that say the real problem -----------------------------------------------------------
ln -s nowhere dangling-out
run "${TRAIN[@]}" --out dangling-out
check "train --out a dangling link: says so (got: $(head -c 300 "$WORK/stderr"))" \
    one_line_error "nabla: cannot create directory dangling-out: it is a symbolic link to nowhere, which does not exist"
run "${STUDY[@]}" --out dangling-out
check "tune --out a dangling link: says so (got: $(head -c 300 "$WORK/stderr"))" \
    one_line_error "nabla: cannot create directory dangling-out: it is a symbolic link to nowhere, which does not exist"
for out in nodir/x.html nodir/sub/x.html; do
    run report ref --out "$out"
    check "report --out $out: the directory is missing, as train says it (got: $(head -c 300 "$WORK/stderr"))" \
        one_line_error "nabla: $out: directory ${out%/*} does not exist"
done
mkdir slashed
for out in slashed/ slashed//; do
    run train --data moons --samples 200 --layers 4 --epochs 1 --test none --out "$out"
    check "train --out $out: the path printed once, without a doubled slash (got: $(tail -1 "$WORK/stdout"))" \
        grep -qx "wrote slashed/ (config.json, metrics.jsonl, model.safetensors, summary.json, checkpoint.safetensors)" "$WORK/stdout"
done
check "train --out slashed/: config.json's out is the directory" [ "$(json slashed/config.json 'j["out"]')" = slashed ]
# A --save-weights FIFO whose reader leaves early: the run is complete, and says so.
mkfifo early-fifo
head -c 1 early-fifo >/dev/null &
run train --data moons --samples 200 --layers 512,512 --epochs 1 --test none --quiet --out early \
    --save-weights early-fifo
check "--save-weights, a FIFO whose reader leaves early: exit 1 (got $RC)" [ "$RC" -eq 1 ]
check "... says the run is complete but for it (got: $(head -c 300 "$WORK/stderr"))" \
    one_line_error "nabla: early-fifo: write failed: Broken pipe; the run itself is complete (early/model.safetensors, summary.json)"
check "... the run's model and summary are written" \
    bash -c "[ -s early/model.safetensors ] && [ -s early/summary.json ]"
# Two runs whose files link to one shared file: the second is refused while the first writes it.
for name in metrics.jsonl steps.jsonl; do
    opts=()
    [ "$name" = steps.jsonl ] && opts=(--eval-every 1 --dev-fraction 0.2)
    mkdir "sh1-$name" "sh2-$name"
    ln -s "../shared-$name" "sh1-$name/$name"
    ln -s "../shared-$name" "sh2-$name/$name"
    "$REAL_NABLA" train --data moons --samples 200 --layers 16,16 --epochs 100000 --test none \
        --quiet "${opts[@]}" --out "sh1-$name" >/dev/null 2>&1 &
    pid=$!
    READERS+=("$pid")
    check "a run writing shared-$name through a link holds it" \
        wait_for bash -c "[ -e shared-$name ] && ! flock -n shared-$name true"
    kill -STOP "$pid"
    run "${TRAIN[@]}" "${opts[@]}" --out "sh2-$name"
    check "a second run whose $name links to the same file: refused (got $RC: $(head -c 300 "$WORK/stderr"))" \
        one_line_error "nabla: sh2-$name/$name: the file it leads to is being written by another nabla run now"
    check "... before anything is written" [ "$(ls -A "sh2-$name")" = "$name" ]
    kill -9 "$pid"
    wait "$pid" 2>/dev/null
    expect_exit 0 "once the first is gone, the second run goes on" "${TRAIN[@]}" "${opts[@]}" --out "sh2-$name"
done

# ---- --out: train into a new, empty or run directory; tune into a new, empty or study one -------
mkdir -p tree/src
touch tree/a.c tree/b.c tree/README
before=$(cd tree && ls -AR)
(cd tree && "$NABLA" "${TRAIN[@]}" --out . >"$WORK/stdout" 2>"$WORK/stderr")
RC=$?
check "train --out . in a source tree: exit 1 (got $RC)" [ "$RC" -eq 1 ]
check "train --out .: names what is there (got: $(head -c 300 "$WORK/stderr"))" \
    one_line_error "nabla: --out .: holds files that are not a nabla run's (README, a.c, b.c and 1 more)"
check "train --out .: nothing written" [ "$(cd tree && ls -AR)" = "$before" ]
(cd tree && "$NABLA" "${STUDY[@]}" --out . >"$WORK/stdout" 2>"$WORK/stderr")
RC=$?
check "tune --out . in a source tree: exit 1 (got $RC)" [ "$RC" -eq 1 ]
check "tune --out .: names what is there (got: $(head -c 300 "$WORK/stderr"))" \
    one_line_error "nabla: --out .: holds files that are not a nabla study's (README, a.c, b.c and 1 more)"
check "tune --out .: nothing written" [ "$(cd tree && ls -AR)" = "$before" ]
run "${TRAIN[@]}" --out /
check "train --out /: exit 1 (got $RC)" [ "$RC" -eq 1 ]
check "train --out /: names what is there" one_line_error "nabla: --out /: holds files that are not a nabla run's ("
check "train --out /: nothing written" absent /config.json
mkdir home && touch home/.bashrc home/.profile && mkdir home/Documents
run "${TRAIN[@]}" --out home
check "train --out a home directory: refused naming it (got: $(head -c 300 "$WORK/stderr"))" \
    one_line_error "nabla: --out home: holds files that are not a nabla run's (.bashrc, .profile and Documents/)"
mkdir datadir && mkdir datadir/data
run "${TRAIN[@]}" --out datadir
check "train --out a directory holding data/ only: refused" one_line_error "nabla: --out datadir: holds files that are not a nabla run's (data/)"
run "${STUDY[@]}" --out datadir
check "tune --out a directory holding data/ only: refused" one_line_error "nabla: --out datadir: holds files that are not a nabla study's (data/)"
: >plainfile
run "${TRAIN[@]}" --out plainfile
check "train --out a regular file: refused" one_line_error "nabla: --out plainfile: is a regular file, not a directory"

# A study is not a run directory, and a run directory not a study.
expect_exit 0 "a study" "${STUDY[@]}" --out study
expect_exit 1 "train --out STUDY" "${TRAIN[@]}" --out study
check "train --out STUDY: says it is a study (got: $(head -c 300 "$WORK/stderr"))" \
    one_line_error "nabla: --out study: is a study of nabla tune (it holds study.json)"
check "train --out STUDY: nothing written" absent study/config.json
expect_exit 1 "train --resume STUDY" train --resume study
check "train --resume STUDY: says it is a study" \
    one_line_error "nabla: --resume study: is a study of nabla tune (it holds study.json)"
expect_exit 1 "tune --out RUNDIR" "${STUDY[@]}" --out ref
check "tune --out RUNDIR: says it is a run directory (got: $(head -c 300 "$WORK/stderr"))" \
    one_line_error "nabla: --out ref: is a run directory of nabla train (it holds config.json)"
check "tune --out RUNDIR: nothing written" absent ref/study.json
expect_exit 1 "tune --out a trial's directory" "${STUDY[@]}" --out study/trials/0
check "tune --out a trial: says it is the study's" \
    one_line_error "nabla: --out study/trials/0: is a trial's directory in the study $PWD/study's trials/"

# Accepted: new, empty, a run directory (of today's nabla or an older one, without .lock), a
# study, and what a process killed early leaves.
expect_exit 0 "train --out a new nested directory" "${TRAIN[@]}" --out new/a/b
mkdir empty-run empty-study
expect_exit 0 "train --out an empty directory" "${TRAIN[@]}" --out empty-run
expect_exit 0 "tune --out an empty directory" "${STUDY[@]}" --out empty-study
expect_exit 0 "train --out an existing run directory" "${TRAIN[@]}" --out empty-run
check "the second run in it is the reference's" cmp -s empty-run/model.safetensors ref/model.safetensors
expect_exit 0 "tune --out an existing study (the same command)" "${STUDY[@]}" --out empty-study
cp -r ref old-run
rm -f old-run/.lock old-run/report.html
expect_exit 0 "report on a run of an older nabla (no .lock)" report old-run --out old.html
expect_exit 0 "eval on a run of an older nabla" eval --model old-run/model.safetensors --data moons --samples 200
expect_exit 0 "train --out a run of an older nabla" "${TRAIN[@]}" --out old-run
run "${TRAIN[@]}" --epochs 1 --out old-resume
rm -f old-resume/.lock
expect_exit 0 "train --resume a run of an older nabla" train --resume old-resume --epochs 2
check "the resumed older run ends as the reference" cmp -s old-resume/model.safetensors ref/model.safetensors
cp -r empty-study old-study
rm -f old-study/.lock
expect_exit 0 "tune on a study of an older nabla (no .lock)" "${STUDY[@]}" --out old-study
expect_exit 0 "report on a study of an older nabla" report old-study --out old-study.html
mkdir killed-run && : >killed-run/.lock && : >killed-run/config.json.tmp.123.0
expect_exit 0 "train --out a run killed early (only a lock and a temporary)" "${TRAIN[@]}" --out killed-run
check "the run killed early: its temporary is removed" absent killed-run/config.json.tmp.123.0
mkdir trial-dir && : >trial-dir/train.log
expect_exit 0 "train --out a trial's directory before the trial ran (only train.log)" "${TRAIN[@]}" --out trial-dir
mkdir -p killed-study/trials && : >killed-study/.lock
expect_exit 0 "tune --out a study killed early (a lock and an empty trials/)" "${STUDY[@]}" --out killed-study
expect_exit 1 "train --out a study killed early" "${TRAIN[@]}" --out killed-study
mkdir lock-only
: >lock-only/.lock
expect_exit 0 "tune --out a directory holding only a lock" "${STUDY[@]}" --out lock-only

# ---- one file, one name: two outputs of one command never lead to the same file ----------------
# run_files_linked DIR TARGET NAME...: DIR with each NAME a link to TARGET (relative to DIR).
run_files_linked() {
    local dir=$1 target=$2 name
    shift 2
    mkdir -p "$dir"
    for name in "$@"; do ln -s "$target" "$dir/$name"; done
}
same_file_refused() {   # same_file_refused DESCRIPTION SHARED EXPECTED
    check "$1: exit 1 (got $RC)" [ "$RC" -eq 1 ]
    check "$1: refused with one line (got: $(head -c 300 "$WORK/stderr"))" one_line_error "$3"
    check "$1: nothing written there" absent "$2"
}
run_files_linked two-a ../shared-a metrics.jsonl config.json
run "${TRAIN[@]}" --out two-a
same_file_refused "config.json and metrics.jsonl linked to one file" shared-a \
    "nabla: two-a/metrics.jsonl: leads to the same file as two-a/config.json ($PWD/shared-a), which this command writes too"
run_files_linked two-b ../shared-b metrics.jsonl
run "${TRAIN[@]}" --out two-b --save-weights shared-b
same_file_refused "metrics.jsonl linked to the --save-weights file" shared-b \
    "nabla: two-b/metrics.jsonl: leads to the same file as shared-b ($PWD/shared-b), which this command writes too"
run_files_linked two-c ../shared-c config.json
ln -s shared-c weights-link
run "${TRAIN[@]}" --save-weights weights-link --out two-c
same_file_refused "config.json and --save-weights through another link" shared-c \
    "nabla: two-c/config.json: leads to the same file as weights-link ($PWD/shared-c)"
run_files_linked two-d ../shared-d trace.jsonl steps.jsonl
run "${TRAIN[@]}" --trace-activations --eval-every 5 --out two-d
same_file_refused "trace.jsonl and steps.jsonl linked to one file" shared-d \
    "nabla: two-d/steps.jsonl: leads to the same file as two-d/trace.jsonl ($PWD/shared-d)"
mkdir two-e && ln -s ../chain-e two-e/metrics.jsonl && ln -s shared-e chain-e && ln -s ../shared-e two-e/config.json
run "${TRAIN[@]}" --out two-e
same_file_refused "a chain of links and a link to one file" shared-e \
    "nabla: two-e/metrics.jsonl: leads to the same file as two-e/config.json ($PWD/shared-e)"
run_files_linked two-st ../shared-st journal.jsonl best.json
run "${STUDY[@]}" --out two-st
check "a study's journal.jsonl and best.json linked to one file: exit 1 (got $RC)" [ "$RC" -eq 1 ]
check "... refused with one line (got: $(head -c 300 "$WORK/stderr"))" \
    one_line_error "nabla: two-st/best.json: leads to the same file as two-st/journal.jsonl ($PWD/shared-st)"
# Links to two files, and one name given twice (a device, written through in order): accepted.
run_files_linked two-ok ../own-a metrics.jsonl
ln -s ../own-b two-ok/config.json
expect_exit 0 "two links to two files" "${TRAIN[@]}" --out two-ok
check "... each its own" bash -c "grep -q '\"epoch\":2' own-a && grep -q '\"command\"' own-b"
run_files_linked two-null /dev/null metrics.jsonl config.json
expect_exit 0 "two run files linked to /dev/null (a device)" "${TRAIN[@]}" --out two-null --save-weights /dev/null
check "... /dev/null still a device" [ -c /dev/null ]

echo "test_output_files: $((SECONDS - STARTED)) s"
finish

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
        # summary.json is removed when a run starts (a run in progress has none), through the
        # link: the run's summary is a new file, with a new file's permissions.
        [ "${path##*/}" = summary.json ] ||
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
for kind in "${KINDS[@]}"; do
    in_run model.safetensors "$kind" same_bytes ref/model.safetensors
done
for kind in chardev fifo-reader fifo-noreader link-file dangling dir socket; do
    in_run metrics.jsonl "$kind" same_metrics ref/metrics.jsonl
done
for kind in chain chardev dir; do
    in_run config.json "$kind" any_json ""
    in_run summary.json "$kind" any_json ""
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
check "tune --out a trial: says it is a run directory" \
    one_line_error "nabla: --out study/trials/0: is a run directory of nabla train (it holds config.json)"

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

echo "test_output_files: $((SECONDS - STARTED)) s"
finish

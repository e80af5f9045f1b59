# Helpers for the CLI test scripts; sourced by each tests/cli/test_*.sh, which gets the path of
# the nabla binary as $1. Every check counts as passed or failed; `finish` prints the tally and
# sets the exit status.

NABLA=${1:?usage: bash test_script.sh /path/to/nabla}
case $NABLA in /*) ;; *) NABLA=$PWD/$NABLA ;; esac
[ -x "$NABLA" ] || { echo "not an executable: $NABLA"; exit 1; }
PY=/usr/bin/python3          # Debian's python3, the one with torch (not pyenv's)
# shellcheck disable=SC2034  # used by the scripts that source this file
HERE=$PWD                    # tests/cli
PASSED=0
FAILED=0
WORK=$(mktemp -d "${TMPDIR:-/tmp}/nabla-cli.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
cd "$WORK" || exit 1
# Keep the runs small and quiet on a shared machine.
export OPENBLAS_NUM_THREADS=1

# For nabla run under strace: ASAN_OPTIONS=$TRACED_ASAN strace ... LeakSanitizer cannot run under
# a tracer (it stops with "LeakSanitizer has encountered a fatal error"), and an ASan build of
# nabla would fail for that alone. (A prefix assignment, so strace keeps the pid a test sees.)
# shellcheck disable=SC2034  # used by the scripts that source this file
TRACED_ASAN="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"

pass() { PASSED=$((PASSED + 1)); }
fail() { FAILED=$((FAILED + 1)); echo "FAIL: $*"; }

# check DESCRIPTION COMMAND...: passes when the command succeeds.
check() {
    local desc=$1
    shift
    if "$@"; then pass; else fail "$desc"; fi
}

# run ARGS...: runs nabla, leaving stdout in $WORK/stdout, stderr in $WORK/stderr, status in RC.
run() {
    "$NABLA" "$@" >"$WORK/stdout" 2>"$WORK/stderr"
    RC=$?
}

# expect_exit CODE DESCRIPTION ARGS...: runs nabla with ARGS and checks the exit status.
expect_exit() {
    local want=$1 desc=$2
    shift 2
    run "$@"
    if [ "$RC" -eq "$want" ]; then
        pass
    else
        fail "$desc: exit $RC, expected $want; stderr: $(head -c 300 "$WORK/stderr")"
    fi
}

# The number of lines of a file (0 for a missing one).
lines() { [ -f "$1" ] && wc -l <"$1" | tr -d ' ' || echo 0; }

# kill_at_lines FILE N COMMAND...: runs COMMAND in the background and kills it (-9) as soon as
# FILE has N lines or more (a study's journal), so that the kill lands in the middle of the
# work whatever the machine's speed. True when the kill is what ended it; false when it ended
# by itself first.
kill_at_lines() {
    local file=$1 want=$2 pid
    shift 2
    "$@" >/dev/null 2>&1 &
    pid=$!
    for _ in $(seq 1 6000); do
        [ "$(lines "$file")" -ge "$want" ] && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.01
    done
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    [ $? -eq 137 ]
}

# stderr is exactly one line starting with PREFIX.
one_line_error() {
    local prefix=$1
    [ "$(lines "$WORK/stderr")" -eq 1 ] && [ "$(head -c ${#prefix} "$WORK/stderr")" = "$prefix" ]
}

# json FILE EXPRESSION: evaluates a Python expression on the parsed JSON file (bound to j) and
# prints the result; fails if the file is not valid JSON.
json() {
    "$PY" -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

valid_json() { "$PY" -c 'import json,sys; json.load(open(sys.argv[1]))' "$1"; }

# pytrue EXPRESSION: checks a Python boolean expression (json and math imported).
pytrue() {
    [ "$("$PY" -c 'import json,math,sys; print(bool(eval(sys.argv[1])))' "$1")" = True ]
}

# same_tensors A B TOL: the same tensor names and shapes, and for each tensor
# max|a - b| <= TOL * max|b| (TOL 0: bit for bit).
same_tensors() {
    "$PY" - "$1" "$2" "$3" "$(cd "$HERE/.." && pwd)" <<'EOF'
import sys
sys.path.insert(0, sys.argv[4])
import numpy as np
import safetensors_py
(a, _), (b, _) = (safetensors_py.read(f) for f in sys.argv[1:3])
tol = float(sys.argv[3])
assert a.keys() == b.keys(), (sorted(a.keys()), sorted(b.keys()))
for name in a:
    x, y = a[name].astype(np.float64), b[name].astype(np.float64)
    assert x.shape == y.shape, (name, x.shape, y.shape)
    if tol == 0:
        assert a[name].tobytes() == b[name].tobytes(), name
        continue
    scale = np.max(np.abs(y)) if y.size else 0.0
    diff = np.max(np.abs(x - y)) if y.size else 0.0
    assert diff <= tol * scale, (name, diff, scale)
EOF
}

# A directory (or file) that must not exist.
absent() { [ ! -e "$1" ]; }

# study_outcome DIR: one line per trial of nabla tune's study DIR from the journal's final events
# (trial, state, dev accuracy, epochs, params), after checking that every trial has exactly one
# final event.
study_outcome() {
    "$PY" - "$1/journal.jsonl" <<'EOF'
import json, sys
final = {}
for line in open(sys.argv[1]):
    ev = json.loads(line)
    if ev.get("state") in ("complete", "pruned", "failed"):
        assert ev["trial"] not in final, ("finished twice", ev["trial"])
        final[ev["trial"]] = ev
for t in sorted(final):
    ev = final[t]
    print(t, ev["state"], ev["dev_accuracy"], ev["epochs"], json.dumps(ev["params"], sort_keys=True))
EOF
}

# no_trials_left STUDY: no trial process of nabla tune's study STUDY (a path relative to $WORK)
# is running; processes of another test's study of the same name (another directory) do not
# count.
no_trials_left() {
    local pid here
    here=$(cd "$WORK" && pwd -P)
    for pid in $(pgrep -f -- "--out $1/trial[s]/"); do
        [ "$(readlink "/proc/$pid/cwd" 2>/dev/null)" = "$here" ] && return 1
    done
    return 0
}

finish() {
    echo "$PASSED passed, $FAILED failed"
    [ "$FAILED" -eq 0 ]
}

# What the experiments' run.sh share (sourced, not run): their command line
# [NABLA [OUT]] [--quick] [-h | --help], and running several trainings at once.
#
# example_start NAME ARGS...: sets ROOT (the repository), QUICK (1 with --quick), NABLA (the
# program, by default build/nabla; made absolute), OUT (by default runs/NAME), PY and STARTED;
# -h or --help prints the calling script's header comment and exits 0; anything else exits 2.
# A script with options of its own takes them out of its arguments before.
example_start() {
    local name=$1 script=${BASH_SOURCE[1]} arg
    shift
    ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    QUICK=0
    local positional=()
    for arg in "$@"; do
        case $arg in
            --quick) QUICK=1 ;;
            -h | --help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$script"; exit 0 ;;
            -*) echo "run.sh: unknown option $arg" >&2; exit 2 ;;
            *) positional+=("$arg") ;;
        esac
    done
    [ ${#positional[@]} -le 2 ] || { echo "run.sh: at most two arguments: NABLA OUT" >&2; exit 2; }
    NABLA=${positional[0]:-$ROOT/build/nabla}
    OUT=${positional[1]:-$ROOT/runs/$name}
    [ -x "$NABLA" ] || { echo "run.sh: no nabla program at $NABLA (build it with make)" >&2; exit 1; }
    case $NABLA in /*) ;; *) NABLA=$PWD/$NABLA ;; esac
    PY=python3
    STARTED=$SECONDS
}

# start_jobs: prepares OUT/logs for start_job and wait_jobs (and forgets earlier failures).
# start_job NAME COMMAND...: runs the command in the background, JOBS (default 2) at a time,
# its output in OUT/logs/NAME.log. wait_jobs: waits for them all; if any failed, prints its
# log and exits 1.
start_jobs() {
    JOBS=${JOBS:-2}
    mkdir -p "$OUT/logs"
    rm -f "$OUT"/logs/*.failed
}
start_job() {
    local name=$1
    shift
    while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n || true; done
    ( "$@" >"$OUT/logs/$name.log" 2>&1 || touch "$OUT/logs/$name.failed" ) &
}
wait_jobs() {
    wait
    local f status=0
    for f in "$OUT"/logs/*.failed; do
        [ -e "$f" ] || continue
        echo "run.sh: $(basename "${f%.failed}") failed:" >&2
        cat "${f%.failed}.log" >&2
        status=1
    done
    [ $status -eq 0 ] || exit 1
}

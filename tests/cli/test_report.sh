#!/bin/bash
# nabla report: a run, two runs overlaid, a study and a run with odd data, each checked
# statically (report_check.py: valid HTML, nothing outside the file, the charts and series
# expected) and in headless Chromium (no console message; the screenshot shows every series
# colour, and no other); a broken page must fail that check. Then bad usage (exit 2), damaged
# or missing files (exit 1, the file and line named, no report written) and escaping.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CHECK=("$PY" "$HERE/report_check.py")

# The browser test needs a browser: without one it fails, loudly, rather than skip.
CHROMIUM=$(command -v chromium)
if [ -z "$CHROMIUM" ] || ! "$PY" -c 'import PIL, numpy' 2>/dev/null; then
    fail "chromium and python3-pil are needed for the browser test: run 'make test-deps'" \
         "(apt-get install chromium python3-pil)"
    finish
    exit 1
fi

# The browser checks take a second each, most of it Chromium starting: they run two at a time
# in the background, and their results are counted at the end (browser_results).
JOBS=()
# browser_ok DESC REPORT ARGS...: report_check.py passes (static and browser checks).
browser_ok() {
    local n=${#JOBS[@]}
    JOBS+=("ok|$1|")
    shift
    [ "$(jobs -rp | wc -l)" -lt 2 ] || wait -n
    ("${CHECK[@]}" "$@" >"$WORK/check.$n" 2>&1; echo $? >"$WORK/rc.$n") &
}
# check_fails DESC PATTERN REPORT ARGS...: report_check.py fails, and says PATTERN (a regular
# expression; several separated by ';;'; !PATTERN: does not say it).
check_fails() {
    local n=${#JOBS[@]}
    JOBS+=("fails|$1|$2")
    shift 2
    [ "$(jobs -rp | wc -l)" -lt 2 ] || wait -n
    ("${CHECK[@]}" "$@" >"$WORK/check.$n" 2>&1; echo $? >"$WORK/rc.$n") &
}
browser_results() {
    wait
    local n kind desc patterns pattern
    for n in "${!JOBS[@]}"; do
        IFS='|' read -r kind desc patterns <<<"${JOBS[$n]}"
        local rc
        rc=$(cat "$WORK/rc.$n" 2>/dev/null || echo missing)
        if [ "$kind" = ok ]; then
            check "$desc: $(cat "$WORK/check.$n")" [ "$rc" = 0 ]
            continue
        fi
        check "$desc: the check passed a broken report" [ "$rc" = 1 ]
        while [ -n "$patterns" ]; do
            pattern=${patterns%%;;*}
            [ "$pattern" = "$patterns" ] && patterns= || patterns=${patterns#*;;}
            if [ "${pattern#!}" != "$pattern" ]; then
                check "$desc: the check does not say '${pattern#!}': $(cat "$WORK/check.$n")" \
                    bash -c '! grep -q -- "$1" "$2"' _ "${pattern#!}" "$WORK/check.$n"
            else
                check "$desc: the check says '$pattern': $(cat "$WORK/check.$n")" \
                    grep -q -- "$pattern" "$WORK/check.$n"
            fi
        done
    done
}

# ---- the runs and the study -----------------------------------------------------------------
# Sigmoid units with and without batch norm: Ioffe and Szegedy's figure 1, if this nabla traces.
TRAIN=(train --data moons --samples 600 --epochs 6 --dev-fraction 0.2 --layers 16,16
       --activation sigmoid --lr 0.01 --threads 1 --quiet)
EXTRA=()
if "$NABLA" train --help | grep -q -- "--trace-activations"; then
    EXTRA=(--trace-activations --eval-every 10)
fi
run "${TRAIN[@]}" "${EXTRA[@]}" --out r1
check "train r1" [ "$RC" -eq 0 ]
run "${TRAIN[@]}" "${EXTRA[@]}" --batchnorm --optimizer momentum --lr 0.1 --out r2
check "train r2" [ "$RC" -eq 0 ]
SPACE="lr=log(1e-3,1); beta=1-log(0.5,0.999); layers=choice(8,16|16,32)"
run tune --data moons --samples 400 --epochs 3 --trials 8 --workers 2 --prune asha \
    --space "$SPACE" --out study --quiet
check "tune" [ "$RC" -eq 0 ]
TRACED=0
[ -f r1/trace.jsonl ] && [ -f r1/steps.jsonl ] && TRACED=1

# ---- one run ---------------------------------------------------------------------------------
run report r1
check "report r1: exit 0" [ "$RC" -eq 0 ]
check "report r1: prints the path" grep -qx "wrote r1/report.html" "$WORK/stdout"
ARGS=(--series loss=3 --series accuracy=3 --series lr=1 --series regions=2)
if [ $TRACED = 1 ]; then
    ARGS+=(--charts 8 --series steps-loss=2 --series steps-accuracy=2 --series trace-unit=3
           --series trace-layer=3)
else
    ARGS+=(--charts 4)
fi
# train, dev, test and the learning rate in their colours; two classes in theirs.
browser_ok "one run" r1/report.html "${ARGS[@]}" --colors 6 --height 3400

# ---- two runs overlaid: a colour per run ------------------------------------------------------
run report r1 r2 --out two.html
check "report r1 r2: exit 0" [ "$RC" -eq 0 ]
check "report r1 r2: prints the path" grep -qx "wrote two.html" "$WORK/stdout"
ARGS=(--series loss=6 --series accuracy=6 --series lr=2 --count regions=2 --series regions=2)
if [ $TRACED = 1 ]; then
    ARGS+=(--charts 9 --series steps-loss=4 --series trace-unit=6 --series trace-layer=6)
else
    ARGS+=(--charts 5)
fi
browser_ok "two runs" two.html "${ARGS[@]}" --colors 4 --height 3400
check "two runs: the settings that differ are marked" \
    grep -q '<tr class="differs"><td>batchnorm</td><td>false</td><td>true</td>' two.html

# ---- the study -------------------------------------------------------------------------------
run report study
check "report study: exit 0" [ "$RC" -eq 0 ]
check "report study: prints the path" grep -qx "wrote study/report.html" "$WORK/stdout"
# What the journal says, worked out here: the states present and the trials with a score.
read -r STATES SCORED <<<"$("$PY" - study/journal.jsonl <<'EOF'
import json, sys
final = {}
for line in open(sys.argv[1]):
    ev = json.loads(line)
    if ev.get("state") in ("complete", "pruned", "failed"):
        final[ev["trial"]] = ev["state"]
states = set(final.values())
print(len(states), sum(1 for s in final.values() if s in ("complete", "pruned")))
EOF
)"
browser_ok "study" study/report.html --charts 7 --series param-lr="$STATES" \
    --series param-beta="$STATES" --series param-layers="$STATES" \
    --series best-so-far=$((STATES + 1)) --lines parallel="$SCORED" --count importance=1 \
    --colors $((STATES + 1)) --height 3200
check "study: the best trial's command is shown" grep -q "Train it again" study/report.html
check "study: 1-x on a log axis is labelled 0.9, 0.99, 0.999" \
    pytrue "all(('>%s</text>' % v) in open('study/report.html').read()
             for v in ('0.9', '0.99', '0.999'))"

# ---- odd data: splits that are all null, gaps, negative values, equal values, more points
# ---- than a chart draws, a single epoch -------------------------------------------------------
mkdir edge one
cp r1/config.json edge/
cp r1/config.json one/
"$PY" - <<'EOF'
import json, math
def line(f, **kv):
    f.write(json.dumps(kv) + "\n")
# What the readers hold the lines to: the rate of r1's schedule (constant), accuracies that
# count samples of their split.
config = json.load(open("r1/config.json"))
LR = config["lr"]
def count(accuracy, split):
    n = config[split + "_samples"]
    return round(accuracy * n) / n
# A run that has not finished (no summary.json), diverging: its dev and test losses may be null
# (overflowed), its accuracies not.
with open("edge/metrics.jsonl", "w") as f:     # a gap, all-equal test, an unchanging lr
    for e, loss in ((1, 0.7), (2, None), (3, 0.5)):
        line(f, epoch=e, lr=LR, train_loss=0.6, train_accuracy=count(0.4, "train"),
             dev_loss=loss, dev_accuracy=count(0.5, "dev"), test_loss=0.25,
             test_accuracy=count(0.75, "test"), seconds=0.1)
with open("edge/steps.jsonl", "w") as f:       # 5000 points, gaps, all-equal test
    for s in range(1, 5001):
        gap = 2000 <= s < 2100
        line(f, step=s, epoch=1 + s // 1000, lr=LR,
             dev_loss=None if gap else 1 - math.sin(s / 50),
             dev_accuracy=count(0.5 + 0.4 * math.sin(s / 300), "dev"),
             test_loss=2.0, test_accuracy=count(0.75, "test"))
with open("edge/trace.jsonl", "w") as f:       # negative, and 3000 of them
    for s in range(1, 3001):
        line(f, step=s, epoch=1, layer=1, unit=3, unit_p15=-5 - s / 1000, unit_p50=-4,
             unit_p85=-3 + s / 3000, layer_p15=-1, layer_p50=-1, layer_p85=-1)
with open("one/metrics.jsonl", "w") as f:      # a single epoch
    line(f, epoch=1, lr=LR, train_loss=0.6, train_accuracy=count(0.7, "train"), dev_loss=0.5,
         dev_accuracy=count(0.75, "dev"), test_loss=0.55, test_accuracy=count(0.72, "test"),
         seconds=0.1)
EOF
run report edge
check "report edge: exit 0" [ "$RC" -eq 0 ]
browser_ok "odd data" edge/report.html --charts 7 --series loss=3 --series accuracy=3 \
    --series lr=1 --series steps-loss=2 --series steps-accuracy=2 --series trace-unit=3 \
    --series trace-layer=3 --max-points 2000 --colors 4 --height 2600
check "odd data: no decision regions without a model" absent edge/model.safetensors
check "odd data: thinned, the file stays small" [ "$(stat -c %s edge/report.html)" -lt 400000 ]
check "odd data: the trace names its layer and unit" grep -q "Input of layer 1, unit 3" \
    edge/report.html
# A single point has no line to show it: it gets a marker, in every series.
run report one
check "report one: exit 0" [ "$RC" -eq 0 ]
"${CHECK[@]}" one/report.html --static-only --charts 3 --series loss=3 --series accuracy=3 \
    --series lr=1 >"$WORK/check.out" 2>&1
check "one epoch: static checks ($(cat "$WORK/check.out"))" [ $? -eq 0 ]
check "one epoch: a marker in each of the 7 series" "$PY" -c '
import re, sys
t = open(sys.argv[1]).read()
sys.exit(len(re.findall(r"<g class=.series.[^>]*>(?:(?!</g>).)*?<circle", t, re.S)) != 7)
' one/report.html

# A run that has just started: no epoch yet, no summary.
mkdir fresh
cp r1/config.json fresh/
: >fresh/metrics.jsonl
run report fresh
check "a fresh run: exit 0" [ "$RC" -eq 0 ]
check "a fresh run: says it has no data yet" grep -q "no data yet" fresh/report.html
check "a fresh run: not finished" grep -q "not finished" fresh/report.html
"${CHECK[@]}" fresh/report.html --static-only --charts 3 --series loss=0 >"$WORK/check.out" 2>&1
check "a fresh run: static checks ($(cat "$WORK/check.out"))" [ $? -eq 0 ]

# ---- the check can fail ----------------------------------------------------------------------
# nabla's script broken so that it throws (a misspelt method), and the series hidden: the
# browser check catches both, and nothing else is wrong with the page.
sed -e 's|addEventListener|addEventListenr|' -e 's|</style>|.series{display:none}</style>|' \
    r1/report.html >broken.html
check_fails "a throwing script, hidden series" \
    "console: .*TypeError.*addEventListenr;;colours drawn \[\] != series colours" broken.html \
    --height 3000
# Every legend entry clicked once the page has loaded: nabla's script hides every series but
# the learning rate's (the only one without a legend), and throws nothing.
CLICK_ALL='document.querySelectorAll(".legend-item").forEach(function (e) {
    e.dispatchEvent(new MouseEvent("click")); });'
sed "s|</body>|<script>${CLICK_ALL//$'\n'/ }</script></body>|" r1/report.html >clicked.html
check_fails "the legends clicked" \
    "colours drawn \['#9467bd'\] != series colours;;!console" clicked.html \
    --height 3000 --scripts 2
sed 's|</body>|<img src="https://example.com/x.png"></body>|' r1/report.html >external.html
check_fails "an external reference" "external reference" external.html --static-only
sed '0,/<\/g>/s|</g>||' r1/report.html >unbalanced.html
check_fails "an element left open" "closes" unbalanced.html --static-only
check_fails "a chart too many" "charts, expected" r1/report.html --static-only --charts 99
browser_results

# ---- bad usage: exit 2, one line, nothing written --------------------------------------------
usage_error() {
    local prefix=$1
    shift
    expect_exit 2 "nabla $*" "$@"
    check "nabla $*: one line starting '$prefix' (got: $(head -c 200 "$WORK/stderr"))" \
        one_line_error "$prefix"
}
rm -f r2/report.html
usage_error "nabla report: give a run or study directory" report
usage_error "nabla report: unknown option '--frob'" report --frob r2
usage_error "nabla report: --out needs a file name" report --out "" r2
usage_error "nabla report: --title needs a text" report --title "" r2
usage_error "nabla report: option '--out' needs a value" report r2 --out
usage_error "nabla report: a study is reported on its own" report study r2
check "bad usage writes nothing" absent r2/report.html
expect_exit 0 "report --help" report --help
check "report --help: the options" grep -q -- "--title T" "$WORK/stdout"
expect_exit 0 "help report" help report
check "help report: the usage" grep -q "usage: nabla report" "$WORK/stdout"
run --help
check "the manual covers report" grep -q "usage: nabla report" "$WORK/stdout"

# ---- missing and damaged files: exit 1, the file (and line) named, no report -----------------
runtime_error() {
    local pattern=$1
    shift
    expect_exit 1 "nabla $*" "$@"
    check "nabla $*: one line saying '$pattern' (got: $(head -c 300 "$WORK/stderr"))" \
        bash -c '[ "$(wc -l <"$1")" -eq 1 ] && grep -q -- "$2" "$1"' _ "$WORK/stderr" "$pattern"
}
runtime_error "nosuch: no such directory" report nosuch
runtime_error "r1/config.json: not a directory" report r1/config.json
mkdir empty
runtime_error "empty: neither a run directory" report empty

# damaged COPY NAME: a copy of run or study NAME to break.
damaged() { rm -rf "$1" && cp -r "$2" "$1" && echo "an older report" >"$1/report.html"; }
damaged bad r1
sed -i '2s/.*/{"epoch":2,"lr":/' bad/metrics.jsonl
runtime_error "bad/metrics.jsonl:2: not valid JSON" report bad
check "a damaged file leaves the older report alone" grep -qx "an older report" bad/report.html
damaged bad r1
sed -i '3s/"train_loss":[^,]*/"train_loss":"low"/' bad/metrics.jsonl
runtime_error 'bad/metrics.jsonl:3: "train_loss" must be a number' report bad
damaged bad r1
sed -i '1s/"epoch":1/"epoch":null/' bad/metrics.jsonl
runtime_error 'bad/metrics.jsonl:1: "epoch" must be a number' report bad
damaged bad r1
echo '{"command": "train",' >bad/config.json
runtime_error "bad/config.json:2: not valid JSON" report bad
damaged bad r1
rm bad/metrics.jsonl
runtime_error "bad/metrics.jsonl: missing" report bad
damaged bad r1
head -c 100 r1/model.safetensors >bad/model.safetensors
runtime_error "bad/model.safetensors" report bad
check "a damaged model leaves the older report alone" grep -qx "an older report" bad/report.html
if [ $TRACED = 1 ]; then
    damaged bad r1
    sed -i '4s/"unit_p15":[^,]*/"unit_p15":[1]/' bad/trace.jsonl
    runtime_error 'bad/trace.jsonl:4: "unit_p15" must be a number or null' report bad
fi
# A last line without its newline is being written: left out, not an error (while the run has
# no summary.json; a finished run has no line being written).
damaged bad r1
rm bad/summary.json
printf '{"epoch":7,"lr":0.01,"train_lo' >>bad/metrics.jsonl
run report bad
check "an unfinished last line is left out" [ "$RC" -eq 0 ]

damaged badstudy study
sed -i '3s/.*/{"trial":1,"state":"exploded"}/' badstudy/journal.jsonl
runtime_error 'badstudy/journal.jsonl:3: unknown state "exploded"' report badstudy
check "a damaged journal leaves the older report alone" \
    grep -qx "an older report" badstudy/report.html
damaged badstudy study
sed -i '1s/"layers":"[^"]*"/"layers":"64|64"/' badstudy/journal.jsonl
runtime_error 'badstudy/journal.jsonl:1: params: "layers" is not a value of the study' \
    report badstudy
damaged badstudy study
sed -i 's/"space":.*/"space": "lr=lg(1,2)",/' badstudy/study.json
runtime_error 'badstudy/study.json:2: "space": --space: part 1 "lr=lg(1,2)"' report badstudy
damaged badstudy study
rm badstudy/best.json
run report badstudy
check "no best.json: still a report" [ "$RC" -eq 0 ]
check "no best.json: says so" grep -q "best.json is missing" badstudy/report.html

# ---- text from files is escaped --------------------------------------------------------------
WEIRD='we<i>rd & "quoted" '"'"'run'"'"
cp -r r1 "$WEIRD"
run report "$WEIRD" --title '<script>alert(1)</script> & co' --out weird.html
check "odd names: exit 0" [ "$RC" -eq 0 ]
"${CHECK[@]}" weird.html --static-only --charts "$(grep -c '<svg class="chart"' r1/report.html)" \
    >"$WORK/check.out" 2>&1
check "odd names: still one script, every element closed ($(cat "$WORK/check.out"))" [ $? -eq 0 ]
check "odd names: the title escaped" \
    grep -qF '&lt;script&gt;alert(1)&lt;/script&gt; &amp; co' weird.html
check "odd names: the path escaped" \
    grep -qF 'we&lt;i&gt;rd &amp; &quot;quoted&quot; &#39;run&#39;' weird.html

finish

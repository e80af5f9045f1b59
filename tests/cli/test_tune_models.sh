#!/bin/bash
# nabla tune searching over model texts: a choice value of layers is a model's text with its
# layers separated by '|' (a layer's own arguments keep their commas), and each trial trains
# exactly that model (config.json's "model" is the value with each '|' turned into ','); best.json
# and the report name it; the same command continues a stopped study. Every way to write a
# model wrong (syntax, parentheses, shapes that do not fit the data, options of the widths form
# beside a text) is refused with exit 2 before anything is written.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

STARTED=$SECONDS
T1="linear(16)|relu|linear"
T2="linear(16)|batchnorm|relu|linear"
T3="linear(8)|tanh|linear(8)|tanh|linear"
SPACE="layers=choice($T1, $T2, $T3, 8|8)"
BASE=(tune --data moons --samples 200 --epochs 2 --trials 4 --sampler grid --quiet)

# model_of DIR N: config.json's "model" of trial N of study DIR.
model_of() { json "$1/trials/$2/config.json" 'j["model"]'; }
# layers_of DIR N: the layers value trial N of study DIR was given, from the journal.
layers_of() {
    "$PY" - "$1/journal.jsonl" "$2" <<'EOF'
import json, sys
for line in open(sys.argv[1]):
    ev = json.loads(line)
    if ev.get("trial") == int(sys.argv[2]) and ev.get("state") == "complete":
        print(ev["params"]["layers"])
EOF
}

# ---- the help names the rule ------------------------------------------------------------------
expect_exit 0 "help" tune --help
check "help: '|' between layers, commas inside parentheses kept" \
    grep -q "layers are separated by '|'" "$WORK/stdout"

# ---- a grid over three model texts and widths -------------------------------------------------
expect_exit 0 "dry run over model texts" "${BASE[@]}" --dry-run --space "$SPACE"
for t in "$T1" "$T2" "$T3"; do
    check "dry run: $t drawn" grep -qF "layers=$t" "$WORK/stdout"
done
expect_exit 0 "study over model texts" "${BASE[@]}" --space "$SPACE" --out s
check "study: 4 complete trials" [ "$(study_outcome s | grep -c complete)" -eq 4 ]
for i in 0 1 2 3; do
    value=$(layers_of s "$i")
    if [ "$value" = "8|8" ]; then
        want="linear(8),relu,linear(8),relu,linear"
    else
        want=${value//|/,}
    fi
    check "trial $i ($value): config.json's model is the value with ',' for '|'" \
        [ "$(model_of s "$i")" = "$want" ]
done
check "study: every value drawn once" \
    [ "$(for i in 0 1 2 3; do layers_of s "$i"; done | sort | tr '\n' ' ')" = \
      "$(printf '%s\n' "$T1" "$T2" "$T3" "8|8" | sort | tr '\n' ' ')" ]
best=$(json s/best.json 'j["trial"]')
best_value=$(layers_of s "$best")
check "best.json: its params name the best trial's text" \
    [ "$(json s/best.json 'j["params"]["layers"]')" = "$best_value" ]
check "best.json: its command trains that model" \
    grep -qF -- "--layers '${best_value//|/,}'" s/best.json
expect_exit 0 "report of the study" report s --out s.html
check "report: every text in the leaderboard, whole" \
    "$PY" - s.html "$T1" "$T2" "$T3" <<'EOF'
import re, sys
text = re.sub(r"<wbr>", "", open(sys.argv[1]).read())
assert all(f"<td>{t}</td>" in text for t in sys.argv[2:]), "a text is missing or cut"
EOF

# ---- a fixed model's text -------------------------------------------------------------------
expect_exit 0 "a fixed model's text" tune --data moons --samples 200 --epochs 2 --trials 2 \
    --sampler grid --quiet --layers "linear(16),batchnorm,relu,linear" \
    --space "lr=choice(0.01,0.1)" --out f
check "fixed text: both trials train it" \
    [ "$(model_of f 0)|$(model_of f 1)" = "linear(16),batchnorm,relu,linear|linear(16),batchnorm,relu,linear" ]

# ---- a stopped study: the same command continues it -------------------------------------------
# As the tuner leaves it when killed (kill -9) after trial 1 ended and before trial 2 started:
# the journal up to trial 1's end, no later trial, no best.json.
cp -r s c
rm -rf c/trials/2 c/trials/3 c/best.json
"$PY" - c/journal.jsonl <<'EOF'
import json, sys
lines = open(sys.argv[1]).readlines()
end = next(k for k, l in enumerate(lines)
           if json.loads(l).get("trial") == 1 and json.loads(l).get("state") == "complete")
open(sys.argv[1], "w").writelines(lines[:end + 1])
EOF
check "stopped study: 2 trials finished" [ "$(study_outcome c | wc -l)" -eq 2 ]
expect_exit 0 "stopped study: the same command continues it" "${BASE[@]}" --space "$SPACE" --out c
check "stopped study: the uninterrupted study's trials" diff <(study_outcome s) <(study_outcome c)
check "stopped study: best.json as the uninterrupted study's" \
    [ "$(json c/best.json 'j["params"]')" = "$(json s/best.json 'j["params"]')" ]
expect_exit 2 "stopped study: another space is another study" "${BASE[@]}" \
    --space "layers=choice($T1, $T2, $T3, 8|16)" --out c
check "another space: says so" grep -q "started with other settings" "$WORK/stderr"

# ---- refused before anything is written: exit 2 -----------------------------------------------
# refused DESCRIPTION MESSAGE ARGS...: exit 2, MESSAGE (fixed text) on stderr, no study.
refused() {
    local desc=$1 message=$2
    shift 2
    rm -rf bad
    expect_exit 2 "$desc" "$@" --out bad
    check "$desc: says '$message'" grep -qF -- "$message" "$WORK/stderr"
    check "$desc: nothing written" absent bad
}
refused "a misspelled layer" "unknown layer 'lineer'" \
    "${BASE[@]}" --space "layers=choice($T1, linear(16)|relu|lineer)"
check "a misspelled layer: tune names the value" \
    grep -qF "layers=linear(16)|relu|lineer is refused by nabla train" "$WORK/stderr"
refused "a bad argument" "linear takes at most 1 argument" \
    "${BASE[@]}" --space "layers=choice($T1, linear(16,3)|relu|linear)"
refused "a '(' never closed" 'unbalanced parentheses: 1 "(" without its ")"' \
    "${BASE[@]}" --space "layers=choice($T1, linear(16|relu|linear); lr=log(1e-3,1e-1)"
refused "a ')' too many" 'unexpected text "|relu|linear)" after ")"' \
    "${BASE[@]}" --space "layers=choice(linear(16))|relu|linear)"
refused "a '(' in a number's arguments" 'unexpected "(" inside the arguments of log' \
    "${BASE[@]}" --space "layers=choice($T1); lr=log((1e-3),1e-1)"
refused "a blank inside a text" "has a blank inside" \
    "${BASE[@]}" --space "layers=choice($T1, linear(16)| relu|linear)"
refused "one text written twice" "is given twice (values 1 and 2: '|' stands for ',')" \
    "${BASE[@]}" --space "layers=choice(conv2d(4,3)|flatten|linear, conv2d(4|3)|flatten|linear)"
LONG="linear(1)$(printf '|relu|linear(1)%.0s' $(seq 1 20))|linear"
refused "a text too long" "is too long (at most 255 characters)" \
    "${BASE[@]}" --space "layers=choice($T1, $LONG)"
# Shapes that do not fit the data (2 features, 2 classes), as nabla train would find them.
refused "an output that is not the classes" "layers=linear(16)|relu does not fit the data" \
    "${BASE[@]}" --space "layers=choice($T1, linear(16)|relu)"
check "output not the classes: train's shapes" grep -qF "(the input is 2, the classes 2)" "$WORK/stderr"
refused "layers written with ',' between them" "layers=linear(16) does not fit the data" \
    "${BASE[@]}" --space "layers=choice(linear(16),relu,linear)"
refused "an image layer on vectors" "layers=conv2d(4,3)|flatten|linear does not fit the data" \
    "${BASE[@]}" --space "layers=choice($T1, conv2d(4,3)|flatten|linear)"
refused "a fixed text that does not fit" "--layers: the model's output has 16 features" \
    "${BASE[@]}" --layers "linear(16),relu" --space "lr=choice(0.01,0.1)"
# The widths form's options beside a model's text.
refused "units with a fixed text" "units makes --layers widths, but --layers 'linear(16),relu,linear' is a model's text" \
    "${BASE[@]}" --layers "linear(16),relu,linear" --space "units=choice(8,16)"
refused "the default space with a fixed text" "the default space searches units and depth" \
    "${BASE[@]}" --layers "linear(16),relu,linear"
refused "activation searched beside a text" "activation goes with --layers widths, but layers=$T1 is a model's text" \
    "${BASE[@]}" --space "layers=choice(8|8, $T1); activation=choice(relu,tanh)"
refused "batchnorm searched beside a text" "batchnorm goes with --layers widths" \
    "${BASE[@]}" --space "layers=choice($T1, 8); batchnorm=choice(on,off)"
refused "batchnorm held fixed beside a text" "--batchnorm goes with --layers widths" \
    "${BASE[@]}" --batchnorm --space "layers=choice(8, $T1)"
check "batchnorm fixed: tune names the value" grep -qF "layers=$T1 is refused by nabla train" "$WORK/stderr"
refused "--input-shape with widths searched" "--input-shape goes with a model's text" \
    "${BASE[@]}" --input-shape 1,1,2 --space "layers=choice(flatten|$T1, 8|8)"

echo "test_tune_models: $((SECONDS - STARTED)) s"
finish

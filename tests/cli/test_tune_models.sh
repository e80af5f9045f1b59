#!/bin/bash
# nabla tune searching over model texts: a choice value of layers is a model's text with its
# layers separated by '|' (a layer's own arguments keep their commas), and each trial trains
# exactly that model (config.json's "model" is the value with each '|' turned into ','); best.json
# and the report name it; the same command continues a stopped study. Every way to write a
# model wrong (syntax, parentheses, shapes that do not fit the data, options of the widths form
# beside a text) is refused with exit 2 before anything is written. A model's text may write
# {name} for an argument searched under that name (dropout({p}) with p=uniform(0.1,0.6)).
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

# ---- a model's arguments searched: {name} in a model's text ------------------------------------
# Each trial's model is the text with the trial's values in place of {w} and {p}, in the fixed
# --layers and in the values of a searched layers alike; the journal and best.json keep w and p.
# args_fit DIR N TEXT: config.json's model of trial N is TEXT (with ',' for '|') filled with the
# journal's params of that trial (p to the 6 digits a trial is given).
args_fit() {
    "$PY" - "$1" "$2" "$3" <<'EOF2'
import json, re, sys
d, n, text = sys.argv[1], int(sys.argv[2]), sys.argv[3].replace("|", ",")
params = next(json.loads(l)["params"] for l in open(d + "/journal.jsonl")
              if json.loads(l).get("trial") == n and json.loads(l).get("state") == "complete")
model = json.load(open("%s/trials/%d/config.json" % (d, n)))["model"]
pattern = re.escape(text).replace(r"\{w\}", r"(\d+)").replace(r"\{p\}", r"([0-9.e-]+)")
m = re.fullmatch(pattern, model)
assert m, (model, text)
got = dict(zip([g for g in re.findall(r"\{(\w)\}", text)], m.groups()))
if "w" in got:
    assert int(got["w"]) == params["w"], (got, params)
assert abs(float(got["p"]) - params["p"]) <= 1e-6 * params["p"], (got, params)
assert 0.1 <= params["p"] <= 0.6, params
EOF2
}
ARGS_TEXT="linear({w}),relu,dropout({p}),linear"
expect_exit 0 "a model's arguments searched" tune --data moons --samples 200 --epochs 1 \
    --trials 3 --quiet --layers "$ARGS_TEXT" --space "w=int(4,32); p=uniform(0.1,0.6)" --out a
for i in 0 1 2; do
    check "model's arguments: trial $i trained the text with its w and p" args_fit a "$i" "$ARGS_TEXT"
done
check "model's arguments: the trials differ in p" \
    [ "$(for i in 0 1 2; do model_of a "$i"; done | sort -u | wc -l)" -eq 3 ]
check "model's arguments: best.json's command trains the filled text" \
    grep -qF -- "--layers 'linear($(json a/best.json 'j["params"]["w"]')),relu,dropout(" a/best.json
A1="linear(8)|relu|dropout({p})|linear"
A2="linear(8)|tanh|dropout({p})|linear(8)|tanh|linear"
expect_exit 0 "an argument in a searched layers" tune --data moons --samples 200 --epochs 1 \
    --trials 2 --sampler grid --quiet --space "layers=choice($A1, $A2); p=uniform(0.1,0.6)" --out a2
for i in 0 1; do
    check "searched layers: trial $i trained its text with its p" \
        args_fit a2 "$i" "$(layers_of a2 "$i")"
done

refused "an argument no parameter names" "{q} in 'linear(16),relu,dropout({q}),linear' is no parameter of --space" \
    "${BASE[@]}" --layers "linear(16),relu,dropout({q}),linear" --space "p=uniform(0.1,0.5)"
refused "a '{' never closed" "a '{' that no '}' closes" \
    "${BASE[@]}" --layers "linear(16),relu,dropout({p),linear" --space "p=uniform(0.1,0.5)"
refused "a '}' alone" "a '}' with no '{' before it" \
    "${BASE[@]}" --space "layers=choice(linear(16)|relu|dropout(p})|linear); p=uniform(0.1,0.5)"
refused "an empty name" "{} names no parameter" \
    "${BASE[@]}" --layers "linear(16),relu,dropout({}),linear" --space "p=uniform(0.1,0.5)"
refused "a name in capitals" "{P}: a name may only hold lowercase letters" \
    "${BASE[@]}" --layers "linear(16),relu,dropout({P}),linear" --space "p=uniform(0.1,0.5)"
refused "an argument named as a train option" "{lr} in 'linear(16),relu,dropout({lr}),linear' names an option of nabla train" \
    "${BASE[@]}" --layers "linear(16),relu,dropout({lr}),linear" --space "lr=uniform(0.1,0.5)"
refused "an argument named units" "{units} in 'linear({units}),relu,linear' names what makes --layers" \
    "${BASE[@]}" --layers "linear({units}),relu,linear" --space "units=int(2,8)"
refused "an argument's end train refuses" "p=1.5 is refused by nabla train" \
    "${BASE[@]}" --layers "linear(16),relu,dropout({p}),linear" --space "p=uniform(0.1,1.5)"
check "an argument's end train refuses: train's reason" \
    grep -qF "'dropout(1.5)' at position 2: p must be a number from 0 to below 1" "$WORK/stderr"
refused "an argument the text does not write" "'p' is not an option of nabla train" \
    "${BASE[@]}" --layers "linear(16),relu,dropout(0.5),linear" --space "p=uniform(0.1,0.5)"
check "an argument the text does not write: how to write one" \
    grep -qF "a model's argument is written {p} in the model's text" "$WORK/stderr"
# The first value stands in for the model beside the fixed options, which train checks first.
refused "an argument's first value train refuses" "'linear(0)' at position 0: out must be" \
    "${BASE[@]}" --layers "linear({w}),relu,linear" --space "w=int(0,8)"
check "an argument's first value train refuses: tune says which value stood in" \
    grep -qF "given the searched model at its first values: w=0)" "$WORK/stderr"
refused "an argument's choice whose shapes do not fit" "k=3 does not fit the data" \
    "${BASE[@]}" --input-shape 1,1,2 --layers "conv2d(2,{k}),flatten,linear" --space "k=choice(1,3)"

echo "test_tune_models: $((SECONDS - STARTED)) s"
finish

#!/bin/bash
# --layers as a model's text (linear(16),relu,linear ...) and --input-shape: the same model as
# the widths form, saved as its canonical text in config.json and model.safetensors, loaded by
# eval, resume and report; models that do not fit the data refused before anything is written
# (exit 2, the layer quoted); model files written before the text form still load.
. "$(dirname "$0")/lib.sh"

SMALL=(--data moons --samples 200 --epochs 2 --batch-size 32 --threads 1 --quiet)

# --- The widths form and the text form are one model ---
for act in relu tanh sigmoid "leaky_relu:0.2"; do
    name=${act%%:*}
    slope=${act#*:}
    if [ "$slope" != "$act" ]; then
        widths=(--activation "$name" --leaky-slope "$slope")
        text="linear(12),$name($slope),linear(5),$name($slope),linear"
    else
        widths=(--activation "$name")
        text="linear(12),$name,linear(5),$name,linear"
    fi
    expect_exit 0 "widths $act" train "${SMALL[@]}" --layers 12,5 "${widths[@]}" --seed 4 \
        --out "w_$name"
    expect_exit 0 "text $act" train "${SMALL[@]}" --layers "$text" --seed 4 --out "t_$name"
    check "$act: the same weights, bit for bit" cmp -s "w_$name/model.safetensors" \
        "t_$name/model.safetensors"
    check "$act: config.json model" [ "$(json "t_$name/config.json" 'j["model"]')" = "$text" ]
    check "$act: widths config.json model" \
        [ "$(json "w_$name/config.json" 'j["model"]')" = "$text" ]
done
# With batch norm: the linear layers before it have no bias.
expect_exit 0 "widths batchnorm" train "${SMALL[@]}" --layers 8 --batchnorm --seed 2 --out wb
expect_exit 0 "text batchnorm" train "${SMALL[@]}" --layers "linear(8),batchnorm,relu,linear" \
    --seed 2 --out tb
check "batchnorm: the same model file" cmp -s wb/model.safetensors tb/model.safetensors
check "batchnorm: no 0.bias" pytrue "'0.bias' not in open('tb/model.safetensors','rb').read(4000).decode('latin-1')"
# Spelling does not matter: named arguments, spaces, the last width written out.
expect_exit 0 "named arguments" train "${SMALL[@]}" \
    --layers " linear(out=8) , batchnorm, relu(), linear(2)" --seed 2 --out tb2
check "canonical text in config" [ "$(json tb2/config.json 'j["model"]')" = \
    "linear(8),batchnorm,relu,linear(2)" ]
check "the same weights however written" cmp -s <(tail -c 200 tb/model.safetensors) \
    <(tail -c 200 tb2/model.safetensors)
check "input_shape in config" [ "$(json tb/config.json 'j["input_shape"]')" = "2" ]
check "no widths-form members for a text" pytrue \
    "'layers' not in json.load(open('tb/config.json'))"

# eval, resume and report take the text from the run.
expect_exit 0 "eval a text-form model" eval --model tb/model.safetensors --data moons \
    --samples 200
expect_exit 0 "resume a text-form run" train --resume tb --epochs 3 --quiet
check "resumed to 3 epochs" [ "$(lines tb/metrics.jsonl)" -eq 3 ]
expect_exit 0 "report a text-form run" report tb --out tb.html
expect_exit 0 "init-weights into the same text model" train "${SMALL[@]}" \
    --layers "linear(8),batchnorm,relu,linear" --init-weights tb/model.safetensors --out tbi

# --- Refusals: exit 2, one line, nothing written ---
refuse() {   # refuse DESCRIPTION EXPECTED-TEXT ARGS...
    local desc=$1 want=$2
    shift 2
    rm -rf refused
    expect_exit 2 "$desc" train "${SMALL[@]}" --out refused "$@"
    check "$desc: one line" one_line_error "nabla train:"
    check "$desc: says '$want'" grep -qF -- "$want" "$WORK/stderr"
    check "$desc: nothing written" absent refused
}
refuse "unknown layer" "'linaer' at position 2: unknown layer 'linaer' (did you mean 'linear'?)" \
    --layers "linear(8),relu,linaer"
refuse "bad argument" "'conv2d(8,x)' at position 0" --layers "conv2d(8,x),flatten,linear"
refuse "conv on a vector" "input is a vector of 2 features: conv2d needs an image" \
    --layers "conv2d(8,3),flatten,linear"
refuse "output not the classes" "the model's output has 3 features, not the 2 classes" \
    --layers "linear(8),relu,linear(3)"
refuse "width left out in the middle" "only the last linear may leave out its width" \
    --layers "linear,relu,linear"
refuse "--activation with a text" "--activation goes with --layers widths" \
    --layers "linear(8),relu,linear" --activation tanh
refuse "--batchnorm with a text" "--batchnorm goes with --layers widths" \
    --layers "linear(8),relu,linear" --batchnorm
refuse "--leaky-slope with a text" "--leaky-slope goes with --layers widths" \
    --layers "linear(8),leaky_relu,linear" --leaky-slope 0.1
refuse "input shape of other features" "--input-shape 1x2x2 has 4 features, but the data has 2" \
    --input-shape 1,2,2 --layers "flatten,linear"
refuse "input shape with widths" "--input-shape goes with a model's text" --input-shape 2,1,1
refuse "input shape malformed" "--input-shape '2x'" --input-shape 2x
refuse "input shape of two numbers" "--input-shape '1,2'" --input-shape 1,2
refuse "trace layer beyond" "--trace-layer 3: the model has activation layers 1 to 2" \
    --layers "linear(8),relu,linear(4),tanh,linear" --trace-activations --trace-layer 3
refuse "trace unit beyond" "--trace-unit 4: activation layer 2 has units 0 to 3" \
    --layers "linear(8),relu,linear(4),tanh,linear" --trace-activations --trace-layer 2 \
    --trace-unit 4
refuse "no activation to trace" "--trace-activations needs an activation layer" \
    --layers "linear" --trace-activations
refuse "sync-batchnorm without batch norm" "--sync-batchnorm needs batch norm in the model" \
    --layers "linear(8),relu,linear" --sync-batchnorm

# A 2-feature CSV seen as an image 2x1x1 (C*H*W = features) trains.
"$PY" - <<'EOF'
import random
random.seed(1)
with open("img.csv", "w") as f:
    for i in range(60):
        c = i % 2
        f.write("%g,%g,%d\n" % (c + random.random(), 1 - c + random.random(), c))
EOF
expect_exit 0 "CSV as an image" train --data img.csv --epochs 2 --batch-size 16 --threads 1 \
    --quiet --input-shape 2,1,1 --layers "flatten,linear(4),relu,linear" --out img
check "image input shape in config" [ "$(json img/config.json 'j["input_shape"]')" = "2x1x1" ]
expect_exit 0 "eval the image model" eval --model img/model.safetensors --data img.csv
rm -rf refused
expect_exit 2 "a vector model on an image input" train --data img.csv --epochs 1 --threads 1 \
    --quiet --input-shape 2,1,1 --layers "linear(4),relu,linear" --out refused
check "names flatten" grep -qF "input is an image 2x1x1: put flatten before linear" \
    "$WORK/stderr"

# --- A model file written before the text form still loads, and gives the same results ---
"$PY" - <<'EOF'
import json, struct
raw = open("wb/model.safetensors", "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
head = json.loads(raw[8:8 + n])
meta = head["__metadata__"]
assert meta["model"] == "linear(8),batchnorm,relu,linear", meta
for k in ("model", "input_shape"):
    del meta[k]
meta.update({"inputs": "2", "layers": "8", "activation": "relu", "leaky_slope": "0.01",
             "batchnorm": "1"})
text = json.dumps(head, separators=(",", ":")).encode()
text += b" " * (-len(text) % 8)
open("legacy.safetensors", "wb").write(struct.pack("<Q", len(text)) + text + raw[8 + n:])
EOF
expect_exit 0 "eval a legacy model file" eval --model legacy.safetensors --data moons \
    --samples 200 --json
cp "$WORK/stdout" legacy.json
expect_exit 0 "eval the same model, new file" eval --model wb/model.safetensors --data moons \
    --samples 200 --json
check "legacy file: the same results" cmp -s legacy.json "$WORK/stdout"
expect_exit 0 "legacy file as --init-weights" train "${SMALL[@]}" --layers 8 --batchnorm \
    --init-weights legacy.safetensors --out fromlegacy

finish

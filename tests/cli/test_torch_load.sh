#!/bin/bash
# Models saved by `nabla train` load into the equivalent torch.nn.Sequential with
# load_state_dict(strict=True) (tests/st_torch_check.py), and the other way round: a state_dict
# written by PyTorch loads into `nabla eval` and `nabla train --init-weights`, and nabla's eval
# of it gives PyTorch's own loss and accuracy.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CHECKER=$HERE/../st_torch_check.py
if [ ! -f "$CHECKER" ]; then
    echo "skipped: tests/st_torch_check.py does not exist"
    finish
    exit
fi
if ! "$PY" -c 'import torch' 2>/dev/null; then
    echo "skipped: $PY cannot import torch (install python3-torch)"
    finish
    exit
fi

# Three classes in four features, a CSV for both directions.
"$PY" - <<'EOF'
import random
random.seed(5)
with open("data.csv", "w") as f:
    for i in range(240):
        c = i % 3
        f.write(",".join(f"{c * (k % 2) + random.gauss(0, 0.5):.5f}" for k in range(4)) + f",{c}\n")
EOF

# name:extra train options
configs=(
    "plain:--layers 16,8"
    "bn-tanh:--layers 16,8 --batchnorm --activation tanh"
    "leaky-norm:--layers 12 --activation leaky_relu --leaky-slope 0.2 --normalize standard"
    "linear:--layers none"
)
names=()
for entry in "${configs[@]}"; do
    name=${entry%%:*}
    names+=("$name")
    # shellcheck disable=SC2086
    run train --data data.csv --test data.csv --epochs 2 --batch-size 32 --out "$name" --quiet \
        ${entry#*:}
    check "$name: train exits 0 (stderr: $(cat "$WORK/stderr"))" [ "$RC" -eq 0 ]
done

# The checker as a program, once (importing torch takes a second or two).
out=$("$PY" "$CHECKER" bn-tanh/model.safetensors 2>&1)
check "st_torch_check.py accepts a batch-norm model ($out)" [ $? -eq 0 ]
printf 'not safetensors' >garbage.safetensors
"$PY" "$CHECKER" garbage.safetensors >/dev/null 2>&1
check "st_torch_check.py refuses a broken file (so the check above can fail)" [ $? -ne 0 ]

# Then, in one Python process for all models, through the checker's own functions: strict
# loading of nabla's file; PyTorch's own weights written back with nabla's metadata; and
# PyTorch's loss and accuracy of those weights on data.csv, for nabla eval to match.
cat >torch_side.py <<'EOF'
import importlib.util, json, sys
import torch
spec = importlib.util.spec_from_file_location("st", sys.argv[1])
st = importlib.util.module_from_spec(spec)
spec.loader.exec_module(st)
rows = [list(map(float, line.split(","))) for line in open("data.csv")]
x0 = torch.tensor([r[:-1] for r in rows], dtype=torch.float32)
y = torch.tensor([int(r[-1]) for r in rows])
for seed, name in enumerate(sys.argv[2:]):
    model, meta = st.check(f"{name}/model.safetensors")   # load_state_dict(strict=True)
    st.resave(model, meta, f"{name}-torch.safetensors", seed)
    model.eval()
    x = x0
    if "normalize_mean" in meta:
        mean = torch.tensor(json.loads(meta["normalize_mean"]), dtype=torch.float32)
        std = torch.tensor(json.loads(meta["normalize_std"]), dtype=torch.float32)
        x = (x - mean) / std
    with torch.no_grad():
        logits = model(x)
    loss = torch.nn.functional.cross_entropy(logits, y).item()
    correct = int((logits.argmax(1) == y).sum())
    json.dump({"loss": loss, "correct": correct}, open(f"{name}-torch.json", "w"))
EOF
out=$("$PY" torch_side.py "$CHECKER" "${names[@]}" 2>&1)
check "every model loads into torch strictly and re-saves ($out)" [ $? -eq 0 ]

cat >compare.py <<'EOF'
import json, sys
t = json.load(open(sys.argv[1]))
e = json.loads(sys.argv[2])
assert e["samples"] == 240, e
assert abs(e["loss"] - t["loss"]) <= 1e-5 * max(1.0, t["loss"]), (e, t)
assert round(e["accuracy"] * 240) == t["correct"], (e, t)
EOF
for entry in "${configs[@]}"; do
    name=${entry%%:*}
    run eval --model "$name-torch.safetensors" --data data.csv --json
    check "$name: nabla eval reads PyTorch's file (stderr: $(cat "$WORK/stderr"))" [ "$RC" -eq 0 ]
    check "$name: nabla eval agrees with PyTorch's loss and accuracy" \
        "$PY" compare.py "$name-torch.json" "$(cat "$WORK/stdout")"
    # shellcheck disable=SC2086
    run train --data data.csv --epochs 1 --batch-size 32 --out "$name-init" --quiet \
        --init-weights "$name-torch.safetensors" ${entry#*:}
    check "$name: train --init-weights takes PyTorch's file (stderr: $(cat "$WORK/stderr"))" \
        [ "$RC" -eq 0 ]
done

finish

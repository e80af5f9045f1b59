#!/bin/bash
# The NaN guard: a learning rate that blows the loss up stops training with a message and exit
# 1, yet the run still ends with a finite model (the last good weights) and a summary.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# all_finite FILE: every F32 tensor of a safetensors file is finite.
all_finite() {
    "$PY" - "$1" "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)" <<'PYEOF'
import sys
import numpy as np
sys.path.insert(0, sys.argv[2])
import safetensors_py
tensors, _ = safetensors_py.read(sys.argv[1])
floats = {name: a for name, a in tensors.items() if a.dtype == np.float32}
assert floats
for name, a in floats.items():
    assert np.isfinite(a).all(), name
PYEOF
}

for opt in sgd momentum; do
    run train --data moons --samples 200 --layers 8 --optimizer $opt --lr 1e30 --epochs 3 \
        --out nan-$opt --save-weights nan-$opt.safetensors
    check "$opt, --lr 1e30: exit 1" [ "$RC" -eq 1 ]
    check "$opt: the message names epoch, step and the learning rate (got: $(cat "$WORK/stderr"))" \
        grep -Eq "^nabla: loss became NaN/inf at epoch [0-9]+ step [0-9]+; keeping the last good weights\. Try a lower learning rate \(--lr is 1e\+30\)\.$" "$WORK/stderr"
    check "$opt: one line on stderr" [ "$(lines "$WORK/stderr")" -eq 1 ]
    for f in config.json metrics.jsonl model.safetensors summary.json; do
        check "$opt: $f is still written" [ -s nan-$opt/$f ]
    done
    check "$opt: --save-weights is still written" cmp -s nan-$opt.safetensors nan-$opt/model.safetensors
    check "$opt: the saved weights are finite" all_finite nan-$opt/model.safetensors
    check "$opt: summary says diverged, with finite test metrics" "$PY" - nan-$opt <<'PYEOF'
import json, math, sys
s = json.load(open(sys.argv[1] + "/summary.json"))
assert s["diverged"] is True and s["diverged_epoch"] >= 1 and s["diverged_step"] >= 1, s
assert math.isfinite(s["test_loss"]) and 0 <= s["test_accuracy"] <= 1, s
assert s["epochs"] < 3, s
PYEOF
    run eval --model nan-$opt/model.safetensors --data moons --samples 200 --json
    check "$opt: the saved model evaluates to the summary's numbers" "$PY" - nan-$opt "$(cat "$WORK/stdout")" <<'PYEOF'
import json, sys
s = json.load(open(sys.argv[1] + "/summary.json"))
e = json.loads(sys.argv[2])
assert e["accuracy"] == s["test_accuracy"] and abs(e["loss"] - s["test_loss"]) < 1e-5, (e, s)
PYEOF
done

# A sane learning rate does not trip the guard.
run train --data moons --samples 200 --layers 8 --optimizer sgd --lr 0.1 --epochs 3 --out sane --quiet
check "--lr 0.1: exit 0, no message" bash -c "[ $RC -eq 0 ] && [ ! -s '$WORK/stderr' ]"
check "--lr 0.1: not diverged" pytrue "json.load(open('sane/summary.json'))['diverged'] is False"

finish

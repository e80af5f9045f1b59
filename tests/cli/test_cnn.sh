#!/bin/bash
# A convolutional network through everything a run promises: results independent of the thread
# count, a stop and --resume ending bit for bit like an uninterrupted run (BatchNorm2d's running
# statistics and dropout's masks included), the NaN guard, nabla eval, the activation trace of
# a layer inside the convolutional part and nabla report, and a model file PyTorch loads into
# the equivalent nn.Sequential and evaluates to the same loss.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# 1x10x10 images of 3 classes (a bright horizontal bar, a vertical bar, a blob) with noise, as
# CSV rows; a test set of the same kind.
"$PY" - <<'EOF'
import random
random.seed(7)
def image(c):
    px = [[random.gauss(0, 0.3) for _ in range(10)] for _ in range(10)]
    k = random.randrange(2, 8)
    for i in range(10):
        if c == 0:
            px[k][i] += 1.5
        elif c == 1:
            px[i][k] += 1.5
    if c == 2:
        for i in range(k - 2, k + 1):
            for j in range(k - 2, k + 1):
                px[i][j] += 1.5
    return [v for row in px for v in row]
for name, n in (("train.csv", 600), ("test.csv", 150)):
    with open(name, "w") as f:
        for i in range(n):
            c = i % 3
            f.write(",".join("%.4f" % v for v in image(c)) + ",%d\n" % c)
EOF
# The second conv (3x3, 8 channels in) is computed by Winograd's method, the first by im2col.
CNN="conv2d(8,3,padding=1),batchnorm,relu,maxpool2d(2),conv2d(8,3),layernorm,leaky_relu,avgpool2d(3,1),flatten,linear(16),relu,dropout(0.3),linear"
TRAIN=(train --data train.csv --test test.csv --input-shape 1,10,10 --layers "$CNN"
       --batch-size 20 --lr 0.01 --seed 3 --quiet)

# ---- results independent of the thread count ----
for t in 1 2 3; do
    run "${TRAIN[@]}" --epochs 2 --threads "$t" --out "t$t"
    check "--threads $t: exit 0 (stderr: $(head -c 300 "$WORK/stderr"))" [ "$RC" -eq 0 ]
done
check "2 threads: the same model as 1, bit for bit" cmp -s t1/model.safetensors t2/model.safetensors
check "3 threads: the same model as 1, bit for bit" cmp -s t1/model.safetensors t3/model.safetensors
check "it learned: test accuracy above 0.8" \
    pytrue "json.load(open('t1/summary.json'))['test_accuracy'] > 0.8"
check "config.json: the model's text and input shape" \
    pytrue "(lambda c: c['model'] == '$CNN' and c['input_shape'] == '1x10x10')(json.load(open('t1/config.json')))"
check "BatchNorm2d: 8 running means, counted batches" \
    pytrue "'\"1.running_mean\":{\"dtype\":\"F32\",\"shape\":[8]' in open('t1/model.safetensors','rb').read(100000).decode('latin-1')"

# ---- nabla eval: the summary's test figures ----
run eval --model t1/model.safetensors --data test.csv --json
check "eval: exit 0 (stderr: $(head -c 300 "$WORK/stderr"))" [ "$RC" -eq 0 ]
cp "$WORK/stdout" eval.json
check "eval: the accuracy of summary.json" \
    pytrue "abs(json.load(open('eval.json'))['accuracy'] - json.load(open('t1/summary.json'))['test_accuracy']) < 1e-9"

# ---- a stop, then --resume: the uninterrupted run's model, bit for bit ----
run "${TRAIN[@]}" --epochs 4 --threads 1 --out whole
check "uninterrupted 4 epochs: exit 0" [ "$RC" -eq 0 ]
# 30 steps an epoch; a checkpoint every 7 steps. SIGINT once the first checkpoint is there
# (background jobs of a script start with SIGINT ignored: env puts the default back). A machine
# busy enough to let the run end first gets two more tries.
stopped=0
for attempt in 1 2 3; do
    rm -rf part
    env --default-signal=INT "$NABLA" "${TRAIN[@]}" --epochs 4 --threads 1 \
        --checkpoint-every 7 --out part >/dev/null 2>"$WORK/stderr" &
    pid=$!
    while kill -0 "$pid" 2>/dev/null && [ ! -e part/checkpoint.safetensors ]; do sleep 0.01; done
    kill -INT "$pid" 2>/dev/null
    wait "$pid"
    rc=$?
    if [ "$rc" -eq 130 ]; then
        stopped=1
        break
    fi
done
check "SIGINT after the first checkpoint: exit 130 (got $rc)" [ "$stopped" -eq 1 ]
run train --resume part --threads 2 --quiet
check "--resume (on 2 threads): exit 0 (stderr: $(head -c 300 "$WORK/stderr"))" [ "$RC" -eq 0 ]
check "resumed: the uninterrupted model, bit for bit" cmp -s part/model.safetensors \
    whole/model.safetensors
check "resumed: every epoch once" \
    pytrue "[json.loads(l)['epoch'] for l in open('part/metrics.jsonl')] == [1, 2, 3, 4]"
run train --resume whole --epochs 5 --threads 1 --quiet
check "extended by an epoch: exit 0" [ "$RC" -eq 0 ]

# ---- the NaN guard ----
run "${TRAIN[@]}" --epochs 2 --threads 1 --lr 1e30 --optimizer sgd --out nan
check "--lr 1e30: exit 1" [ "$RC" -eq 1 ]
check "--lr 1e30: says the loss became NaN/inf" grep -q "loss became NaN/inf" "$WORK/stderr"
check "--lr 1e30: the kept weights are finite" "$PY" - nan/model.safetensors "$(cd "$HERE/.." && pwd)" <<'EOF'
import sys
sys.path.insert(0, sys.argv[2])
import numpy as np
import safetensors_py
tensors, _ = safetensors_py.read(sys.argv[1])
assert all(np.isfinite(t).all() for t in tensors.values())
EOF

# ---- watching a layer inside the convolutional part, and the report ----
# Activation layer 2 is the leaky_relu after the layer norm: its input is 8x3x3, 72 units.
run "${TRAIN[@]}" --epochs 1 --threads 1 --trace-activations --trace-layer 2 --trace-unit 71 \
    --trace-every 5 --eval-every 10 --dev-fraction 0.1 --out traced
check "traced run: exit 0 (stderr: $(head -c 300 "$WORK/stderr"))" [ "$RC" -eq 0 ]
check "trace.jsonl: a record every 5 steps" [ "$(lines traced/trace.jsonl)" -ge 5 ]
run "${TRAIN[@]}" --epochs 1 --threads 1 --eval-every 10 --dev-fraction 0.1 --out untraced
check "tracing does not change the model, bit for bit" cmp -s traced/model.safetensors \
    untraced/model.safetensors
run train "${TRAIN[@]:1}" --epochs 1 --threads 1 --trace-activations --trace-layer 2 \
    --trace-unit 72 --out refused
check "--trace-unit 72 of 72 units: exit 2" [ "$RC" -eq 2 ]
check "--trace-unit 72: names the units" grep -qF "activation layer 2 has units 0 to 71" \
    "$WORK/stderr"
run report traced t1 --out cnn.html
check "report: exit 0 (stderr: $(head -c 300 "$WORK/stderr"))" [ "$RC" -eq 0 ]
check "report: the traced layer's chart" grep -q "trace" cnn.html

# ---- nabla tune over CNN texts that differ in dropout's p ----
A="conv2d(4,3,padding=1)|batchnorm|relu|maxpool2d(2)|flatten|linear(16)|relu|dropout(0.2)|linear"
B="conv2d(4,3,padding=1)|batchnorm|relu|maxpool2d(2)|flatten|linear(16)|relu|dropout(0.6)|linear"
run tune --data train.csv --test test.csv --input-shape 1,10,10 --epochs 2 --batch-size 20 \
    --trials 2 --sampler grid --space "layers=choice($A,$B); lr=log(0.003,0.03)" --quiet \
    --out study
check "tune over CNN texts: exit 0 (stderr: $(head -c 300 "$WORK/stderr"))" [ "$RC" -eq 0 ]
check "tune: each trial trained its text, dropout's p included" pytrue \
    "sorted(json.load(open('study/trials/%d/config.json' % i))['model'] for i in (0, 1)) == sorted(['${A//|/,}', '${B//|/,}'])"
check "tune: best.json names a CNN text" \
    pytrue "json.load(open('study/best.json'))['params']['layers'] in ('$A', '$B')"

# ---- nabla tune over dropout's p and a conv's width, as arguments of one CNN text ----
ARGS_CNN="conv2d({width},3,padding=1),batchnorm,relu,maxpool2d(2),flatten,linear(16),relu,dropout({p}),linear"
run tune --data train.csv --input-shape 1,10,10 --epochs 2 --batch-size 20 --trials 2 \
    --layers "$ARGS_CNN" --space "width=choice(4,8); p=uniform(0.2,0.6)" --quiet --out study_p
check "tune over p: exit 0 (stderr: $(head -c 300 "$WORK/stderr"))" [ "$RC" -eq 0 ]
check "tune over p: each trial trained the CNN with its width and p" pytrue "all(
    json.load(open('study_p/trials/%d/config.json' % e['trial']))['model'] ==
    'conv2d(%s,3,padding=1),batchnorm,relu,maxpool2d(2),flatten,linear(16),relu,dropout(%s),linear'
    % (e['params']['width'], '%g' % e['params']['p'])
    and 0.2 <= e['params']['p'] <= 0.6
    for e in map(json.loads, open('study_p/journal.jsonl')) if e.get('state') == 'complete')"
check "tune over p: two trials, two values of p" pytrue \
    "len({e['params']['p'] for e in map(json.loads, open('study_p/journal.jsonl')) if e.get('state') == 'complete'}) == 2"

# ---- PyTorch loads the model and computes the same loss ----
run eval --model t1/model.safetensors --data test.csv --json
cp "$WORK/stdout" t1_eval.json
check "PyTorch: strict load of the Sequential, the same test loss and accuracy" \
    "$PY" - "$(cd "$HERE/.." && pwd)" <<'EOF'
import json, sys
sys.path.insert(0, sys.argv[1])
import numpy as np
import torch
import model_text_py
import safetensors_py
arrays, meta = safetensors_py.read("t1/model.safetensors")
model = model_text_py.sequential(meta["model"], model_text_py.parse_shape(meta["input_shape"]),
                                 int(meta["classes"]))
model.load_state_dict({k: torch.from_numpy(v) for k, v in arrays.items()}, strict=True)
model.eval()
rows = np.loadtxt("test.csv", delimiter=",", dtype=np.float32)
x = torch.from_numpy(rows[:, :-1]).reshape(-1, 1, 10, 10)
y = torch.from_numpy(rows[:, -1].astype(np.int64))
with torch.no_grad():
    logits = model(x)
loss = torch.nn.functional.cross_entropy(logits, y).item()
acc = (logits.argmax(1) == y).float().mean().item()
ours = json.load(open("t1_eval.json"))
assert abs(loss - ours["loss"]) <= 1e-4 * max(1.0, abs(loss)), (loss, ours["loss"])
assert abs(acc - ours["accuracy"]) < 1e-6, (acc, ours["accuracy"])
EOF
check "PyTorch: st_torch_check loads it strictly" "$PY" "$HERE/../st_torch_check.py" \
    t1/model.safetensors

finish

#!/bin/bash
# The three tasks end to end: regression (--task regression, --loss mse|l1|huber), multi-label
# and classification with words for classes: train, resume, eval (of a run, its metrics),
# predict (CSV and JSON Lines, --proba, stdin, the model's reading of new rows), report; the
# metrics files speak the task's metrics; a PyTorch state_dict predicts with --layers; bad
# usage exits 2 and bad data 1, with one line and nothing written.
. "$(dirname "$0")/lib.sh"

"$PY" - <<'EOF'
import random
random.seed(5)
# Regression: two targets in units far from 0 (the model standardizes them), a category.
with open("houses.csv", "w") as f:
    f.write("size,rooms,town,price,rent\n")
    for i in range(400):
        size, rooms = random.uniform(40, 200), random.randint(1, 6)
        town = random.choice(["north", "south", "east"])
        bonus = {"north": 30, "south": 0, "east": -20}[town]
        price = 3.0 * size + 12 * rooms + bonus + random.gauss(0, 8) + 500
        rent = 0.01 * price + random.gauss(0, 0.3)
        f.write("%.2f,%d,%s,%.3f,%.4f\n" % (size, rooms, town, price, rent))
# Multi-label: three 0/1 columns, the targets first.
with open("tags.csv", "w") as f:
    f.write("red,big,round,x1,x2,x3\n")
    for i in range(400):
        x = [random.gauss(0, 1) for _ in range(3)]
        tags = [int(x[0] > 0), int(x[1] + x[2] > 0.3), int(x[0] * x[2] > 0)]
        f.write(",".join(map(str, tags)) + "," + ",".join("%.4f" % v for v in x) + "\n")
# Classification with words for classes.
with open("fruit.csv", "w") as f:
    f.write("weight;colour;kind\n")
    for i in range(300):
        kind = random.choice(["apple", "banana", "cherry"])
        w = {"apple": 150, "banana": 120, "cherry": 10}[kind] + random.gauss(0, 8)
        colour = {"apple": "red", "banana": "yellow", "cherry": "red"}[kind]
        f.write("%.1f;%s;%s\n" % (w, colour, kind))
EOF

REG=(--data houses.csv --task regression --target price,rent --test-fraction 0.2
     --dev-fraction 0.2 --layers 32 --lr 0.01 --batch-size 32 --seed 1 --threads 1 --quiet)

# ---- regression: training, the metrics files ----
run train "${REG[@]}" --epochs 40 --out reg
check "regression: exit 0 (stderr: $(head -c 300 "$WORK/stderr"))" [ "$RC" -eq 0 ]
check "regression: the result line gives mse, rmse, mae and r2" \
    grep -q "^test mse [0-9.e+]* rmse [0-9.e+]* mae [0-9.e+]* r2 0\.[0-9]* (loss" "$WORK/stdout"
check "regression: summary.json: an r2 above 0.9, no accuracy" \
    pytrue "(lambda s: s['test_r2'] > 0.9 and s['test_accuracy'] is None and s['train_accuracy'] is None and abs(s['test_rmse'] ** 2 - s['test_mse']) < 1e-6 * s['test_mse'])(json.load(open('reg/summary.json')))"
check "regression: metrics.jsonl has each epoch's dev and test rmse, mae, r2" \
    pytrue "all('dev_rmse' in r and 'test_r2' in r and r['train_accuracy'] is None for r in map(json.loads, open('reg/metrics.jsonl')))"
check "regression: config.json says task and loss" \
    pytrue "(lambda c: c['task'] == 'regression' and c['loss'] == 'mse' and c['target'] == 'price,rent')(json.load(open('reg/config.json')))"
check "regression: the model keeps its target scaling and table" \
    pytrue "(lambda h: all(k in h['__metadata__'] for k in ('target_mean', 'target_std', 'table', 'task', 'loss')))(json.loads(open('reg/model.safetensors','rb').read()[8:8+int.from_bytes(open('reg/model.safetensors','rb').read(8),'little')]))"

# ---- resume: a run stopped and resumed ends as the uninterrupted one ----
run train "${REG[@]}" --epochs 20 --out reg-part
run train --resume reg-part --epochs 40 --quiet
check "regression: resumed and extended to 40 epochs: the same model, byte for byte" \
    cmp -s reg/model.safetensors reg-part/model.safetensors

# ---- eval of the run: its test split, in the data's units ----
run eval --model reg --json
check "eval of the regression run: exit 0 (stderr: $(head -c 300 "$WORK/stderr"))" [ "$RC" -eq 0 ]
cp "$WORK/stdout" reg-eval.json
check "eval: the summary's test metrics on its 80 test rows" \
    pytrue "(lambda e, s: e['samples'] == 80 and e['task'] == 'regression' and e['accuracy'] is None and all(abs(e[k] - s['test_' + k]) <= 1e-6 * abs(s['test_' + k]) for k in ('mse', 'rmse', 'mae', 'r2', 'loss')))(json.load(open('reg-eval.json')), json.load(open('reg/summary.json')))"

# ---- predict: values in the data's units, columns named as the data named them ----
cut -d, -f1-3 houses.csv | head -51 >new_houses.csv
run predict --model reg --data new_houses.csv --out pred.csv
check "predict: exit 0, nothing on stdout" [ "$RC" -eq 0 ] && [ ! -s "$WORK/stdout" ]
check "predict: a header 'price,rent' and a line per row" \
    pytrue "(lambda l: l[0] == 'price,rent' and len(l) == 51)(open('pred.csv').read().splitlines())"
check "predict: close to the true prices (in the data's units)" "$PY" - <<'EOF'
rows = [l.split(",") for l in open("houses.csv").read().splitlines()[1:51]]
pred = [l.split(",") for l in open("pred.csv").read().splitlines()[1:]]
err = sum(abs(float(p[0]) - float(r[3])) for p, r in zip(pred, rows)) / len(rows)
assert err < 40, err                  # prices of 600 to 1200, noise 8
EOF
# The same rows with their targets, in another column order, from standard input.
"$PY" -c '
import csv, sys
rows = list(csv.reader(open("houses.csv")))[:51]
w = csv.writer(sys.stdout, lineterminator="\n")
for r in rows: w.writerow([r[3], r[2], r[4], r[1], r[0]])' >shuffled.csv
run predict --model reg --data - --format jsonl <shuffled.csv
check "predict from stdin, columns in another order, targets present: the same values" \
    "$PY" -c '
import json, sys
a = [l.split(",") for l in open("pred.csv").read().splitlines()[1:]]
b = [json.loads(l)["prediction"] for l in open(sys.argv[1])]
assert len(a) == len(b) == 50
assert all(abs(float(x[0]) - y["price"]) <= 1e-4 * abs(y["price"]) for x, y in zip(a, b))' "$WORK/stdout"

# ---- the losses ----
for loss in l1 huber; do
    run train "${REG[@]}" --epochs 3 --loss "$loss" --out "reg-$loss"
    check "--loss $loss: exit 0" [ "$RC" -eq 0 ]
    check "--loss $loss: config.json and the model say it" \
        pytrue "json.load(open('reg-$loss/config.json'))['loss'] == '$loss'"
done
check "the losses differ" pytrue "len({json.load(open(f))['train_loss'] for f in ('reg-l1/summary.json', 'reg-huber/summary.json')}) == 2"

# ---- multi-label ----
ML=(--data tags.csv --task multilabel --target red,big,round --test-fraction 0.25 --layers 32
    --lr 0.01 --epochs 30 --batch-size 32 --seed 2 --threads 1 --quiet)
run train "${ML[@]}" --out tags
check "multilabel: exit 0 (stderr: $(head -c 300 "$WORK/stderr"))" [ "$RC" -eq 0 ]
check "multilabel: result line with per-label accuracy and F1" \
    grep -q "^test accuracy 0\.[0-9]* micro_f1 0\.[0-9]* macro_f1 0\.[0-9]* (loss" "$WORK/stdout"
check "multilabel: accuracy above 0.8, F1 in the summary" \
    pytrue "(lambda s: s['test_accuracy'] > 0.8 and 0 < s['test_micro_f1'] <= 1 and 0 < s['test_macro_f1'] <= 1)(json.load(open('tags/summary.json')))"
run eval --model tags --json
check "multilabel eval: the summary's figures" \
    pytrue "(lambda e, s: e['task'] == 'multilabel' and e['accuracy'] == s['test_accuracy'] and abs(e['micro_f1'] - s['test_micro_f1']) < 1e-12)(json.loads(open('$WORK/stdout').read()), json.load(open('tags/summary.json')))"
cut -d, -f4-6 tags.csv | head -21 >new_tags.csv
run predict --model tags --data new_tags.csv --proba
check "multilabel predict: 0/1 per label, then p(label) each" \
    pytrue "(lambda l: l[0] == 'red,big,round,p(red),p(big),p(round)' and len(l) == 21 and all(set(r.split(',')[:3]) <= {'0', '1'} and all(0 <= float(v) <= 1 for v in r.split(',')[3:]) for r in l[1:]))(open('$WORK/stdout').read().splitlines())"

run tune --data tags.csv --task multilabel --target red,big,round --layers 16 --epochs 2 \
    --trials 3 --space "lr=log(0.001,0.05)" --objective macro_f1 --threads 1 --quiet --out tags-study
check "multilabel tune of dev macro F1: exit 0 (stderr: $(head -c 300 "$WORK/stderr"))" [ "$RC" -eq 0 ]
check "... best.json holds the best trial's dev macro F1" \
    pytrue "(lambda b, js: b['objective'] == 'macro_f1' and b['dev_macro_f1'] == max(j['dev_macro_f1'] for j in js))(json.load(open('tags-study/best.json')), [json.load(open('tags-study/trials/%d/summary.json' % t)) for t in range(3)])"

# ---- a tie of the objective goes to the lower dev loss ----
run tune --data moons --samples 200 --dev-fraction 0.1 --layers 8 --epochs 3 --trials 6 \
    --space "lr=log(0.02,0.2)" --threads 1 --quiet --out ties
check "a study of dev accuracy on 20 dev samples: exit 0" [ "$RC" -eq 0 ]
check "its trials tie on dev accuracy (else this check tests nothing)" \
    pytrue "(lambda c: sum(e['dev_accuracy'] == max(x['dev_accuracy'] for x in c) for e in c) >= 2)([e for e in map(json.loads, open('ties/journal.jsonl')) if e.get('state') == 'complete'])"
check "best.json: of the tied best, the lowest dev loss" \
    pytrue "(lambda b, c: b['trial'] == min((e for e in c if e['dev_accuracy'] == max(x['dev_accuracy'] for x in c)), key=lambda e: (e['dev_loss'], e['trial']))['trial'])(json.load(open('ties/best.json')), [e for e in map(json.loads, open('ties/journal.jsonl')) if e.get('state') == 'complete'])"

# ---- classification with words: ';', a category, names kept ----
run train --data fruit.csv --test-fraction 0.2 --layers 16 --lr 0.02 --epochs 20 --seed 3 \
    --threads 1 --quiet --out fruit
check "words as classes: exit 0 (stderr: $(head -c 300 "$WORK/stderr"))" [ "$RC" -eq 0 ]
run eval --model fruit --json
check "eval --json: the classes by name, per class scores, the confusion matrix" \
    pytrue "(lambda e: e['classes'] == ['apple', 'banana', 'cherry'] and len(e['per_class']) == 3 and sum(map(sum, e['confusion'])) == e['samples'] == 60)(json.loads(open('$WORK/stdout').read()))"
run eval --model fruit
check "eval text: a line per class, then the matrix" grep -q "^banana  *[0-9.]* " "$WORK/stdout"
printf 'weight;colour\n149.0;red\n11.5;red\n119.0;yellow\n' >new_fruit.csv
run predict --model fruit --data new_fruit.csv --proba
check "predict names the classes as the data did" \
    pytrue "[l.split(',')[0] for l in open('$WORK/stdout').read().splitlines()] == ['kind', 'apple', 'cherry', 'banana']"

# ---- reports: each task's curves; a classifier's classes ----
run report reg --out reg.html
check "report of a regression run: exit 0 (stderr: $(head -c 300 "$WORK/stderr"))" [ "$RC" -eq 0 ]
check "... with RMSE and R² per epoch, no accuracy chart" \
    pytrue "(lambda s: 'RMSE per epoch' in s and 'R² per epoch' in s and 'Accuracy per epoch' not in s)(open('reg.html').read())"
run report tags --out tags.html
check "report of a multi-label run: macro F1 per epoch" grep -q "Macro F1 per epoch" tags.html
run report fruit --out fruit.html
check "report of a classifier: per-class scores and the confusion matrix, classes by name" \
    pytrue "(lambda s: 'Per class, on the test set' in s and 'banana' in s and 'Confusion matrix' in s)(open('fruit.html').read())"

# ---- a PyTorch state_dict, its architecture given ----
if "$PY" -c 'import torch' 2>/dev/null; then
    "$PY" - "$HERE/.." <<'EOF'
import sys, torch
sys.path.insert(0, sys.argv[1])
import safetensors_py
torch.manual_seed(0)
m = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
safetensors_py.write("sd.safetensors", [(k, v.detach().numpy()) for k, v in m.state_dict().items()])
x = torch.tensor([[0.5, -1.0, 2.0], [0.0, 0.25, -0.5]])
open("sd_expected.txt", "w").write("\n".join(",".join(repr(float(v)) for v in r) for r in m(x).tolist()))
EOF
    printf '0.5,-1.0,2.0\n0.0,0.25,-0.5\n' >sd_rows.csv
    run predict --model sd.safetensors --data sd_rows.csv --layers "linear(8),tanh,linear" \
        --task regression --format jsonl
    check "a state_dict predicts with --layers: PyTorch's outputs" "$PY" -c '
import json, sys
got = [list(json.loads(l)["prediction"].values()) for l in open(sys.argv[1])]
want = [list(map(float, l.split(","))) for l in open("sd_expected.txt").read().splitlines()]
assert all(abs(a - b) < 1e-5 for g, w in zip(got, want) for a, b in zip(g, w)), (got, want)' "$WORK/stdout"
    run predict --model sd.safetensors --data sd_rows.csv
    check "a state_dict without --layers: exit 1 naming --layers" \
        [ "$RC" -eq 1 ] && grep -q -- "--layers" "$WORK/stderr"
fi

# ---- bad usage and bad data: one line, exit 2 or 1, nothing written ----
run train "${REG[@]}" --loss bce --out bad1
check "--loss bce with --task regression: exit 2" [ "$RC" -eq 2 ] && [ ! -e bad1 ]
check "... saying which task it trains" one_line_error "nabla train: --loss bce trains a multilabel model"
run train --data houses.csv --target price --out bad2 --quiet
check "a price as classes: exit 1, nothing written" [ "$RC" -eq 1 ] && [ ! -e bad2/model.safetensors ]
check "... suggesting --task regression" grep -q -- "--task regression" "$WORK/stderr"
run train --data houses.csv --task bogus --out bad3
check "--task bogus: exit 2" [ "$RC" -eq 2 ]
run predict --model reg
check "predict without --data: exit 2" [ "$RC" -eq 2 ]
run predict --model reg --data new_houses.csv --proba
check "predict --proba of a regression model: exit 2" \
    one_line_error "nabla predict: --proba: a regression model predicts values"
run tune --data - --trials 2 --epochs 1 --out never-study <houses.csv
check "tune --data -: exit 2 (each trial reads the data), no study written" \
    [ "$RC" -eq 2 ] && [ ! -e never-study ]
cp fruit/model.safetensors copied.safetensors
run eval --model copied.safetensors
check "eval of a CSV model outside its run, no --data: exit 2, not Fashion-MNIST" \
    one_line_error "nabla eval: copied.safetensors was trained on a CSV file: give it with --data"
run predict --model reg --data new_houses.csv --out new_houses.csv
check "predict --out the --data file: exit 2, the data untouched" \
    [ "$RC" -eq 2 ] && [ "$(lines new_houses.csv)" -eq 51 ]
printf 'size,rooms,town\n100,3,west\n' >unseen.csv
run predict --model reg --data unseen.csv --out never.csv
check "predict: a category the training data did not have: exit 1, file:line:column, no file" \
    [ "$RC" -eq 1 ] && [ ! -e never.csv ] && grep -q "unseen.csv:2:7:" "$WORK/stderr"
printf 'size,rooms\n100,3\n' >short.csv
run predict --model reg --data short.csv
check "predict: a column missing: exit 1 naming it" [ "$RC" -eq 1 ] && grep -q "town" "$WORK/stderr"

finish

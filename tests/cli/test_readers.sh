#!/bin/bash
# Readers check what they read for sense, not only for format:
#   1. nabla report on run directories damaged in every file (metrics.jsonl, steps.jsonl,
#      trace.jsonl, summary.json, config.json), each kind of nonsense: exit 1, one line naming
#      the file and line, no report written; runs in progress and legitimate odd values pass.
#      1b: across members and files: required members, a name twice, last lines without their
#      newline, values config.json's options could not have had, splits and their nulls, a
#      summary that is not the last epoch's, another run's model; diverged and older runs pass.
#   2. nabla eval: what it reads besides the run (the model file, the data set): outputs that
#      are not finite, a standardization that overflows, labels beyond the model's classes
#      (named by line), hexadecimal numbers, safetensors headers and metadata the format or
#      nabla would not write.
#   3. CSV: the header rule (train, --test, eval), and bytes that are not CSV text (UTF-16
#      with and without byte order marks, NUL bytes, other formats).
#   4. --resume when the newest checkpoint cannot be read: the fallback is announced.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# ---- 1. report: damaged run directories -----------------------------------------------------
run train --data moons --samples 300 --epochs 4 --dev-fraction 0.2 --layers 8,8 --threads 1 \
    --trace-activations --trace-every 3 --eval-every 4 --quiet --out base
check "train base (stderr: $(head -c 300 "$WORK/stderr"))" [ "$RC" -eq 0 ]
for f in config.json metrics.jsonl steps.jsonl trace.jsonl summary.json; do
    check "base has $f" [ -s "base/$f" ]
done
run report base
check "report base: exit 0 (stderr: $(head -c 300 "$WORK/stderr"))" [ "$RC" -eq 0 ]

# copy NAME: a fresh copy of base, with an older report in it that must survive a refusal.
copy() { rm -rf "$1" && cp -r base "$1" && echo "an older report" >"$1/report.html"; }

# jsonl_set FILE LINE KEY JSON: sets KEY on line LINE of a JSON Lines file (JSON: the value).
jsonl_set() {
    "$PY" - "$@" <<'EOF'
import json, sys
path, line, key, value = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
lines = open(path).read().split("\n")
obj = json.loads(lines[line - 1])
obj[key] = json.loads(value) if value != "inf" else float("inf")
lines[line - 1] = json.dumps(obj).replace("Infinity", "1e999")
open(path, "w").write("\n".join(lines))
EOF
}
# json_set FILE KEY JSON: sets a member of a JSON file, written as nabla writes it (one member a
# line, tabs).
json_set() {
    "$PY" - "$@" <<'EOF'
import json, sys
path, key, value = sys.argv[1:4]
obj = json.load(open(path))
obj[key] = json.loads(value) if value != "inf" else float("inf")
open(path, "w").write(json.dumps(obj, indent="\t").replace("Infinity", "1e999") + "\n")
EOF
}
# line_of FILE KEY: the line of a JSON file on which member KEY is.
line_of() { grep -n "\"$2\"" "$1" | head -1 | cut -d: -f1; }

# refused DIR MESSAGE: nabla report DIR exits 1 with one line containing MESSAGE, and leaves
# the older report as it was.
refused() {
    local dir=$1 message=$2
    expect_exit 1 "report $dir ($message)" report "$dir"
    check "report $dir: one line with '$message' (got: $(head -c 300 "$WORK/stderr"))" \
        bash -c '[ "$(wc -l <"$1")" -eq 1 ] && grep -qF -- "$2" "$1"' _ "$WORK/stderr" \
        "nabla: $message"
    check "report $dir: the older report stays" grep -qx "an older report" "$dir/report.html"
}
# accepted DIR WHAT: nabla report DIR exits 0.
accepted() {
    run report "$1"
    check "report $1 ($2): exit 0 (stderr: $(head -c 300 "$WORK/stderr"))" [ "$RC" -eq 0 ]
    check "report $1: a new report" bash -c '! grep -qx "an older report" "$1/report.html"' _ "$1"
}

# metrics.jsonl: epochs 1..4, one a line.
copy m-back && jsonl_set m-back/metrics.jsonl 3 epoch 1
refused m-back 'm-back/metrics.jsonl:3: epoch 1 after epoch 2 (epochs go backwards)'
copy m-repeat && jsonl_set m-repeat/metrics.jsonl 3 epoch 2
refused m-repeat 'm-repeat/metrics.jsonl:3: epoch 2 after epoch 2 (a repeated epoch)'
copy m-skip && jsonl_set m-skip/metrics.jsonl 3 epoch 4
refused m-skip 'm-skip/metrics.jsonl:3: epoch 4 after epoch 2 (an epoch is missing)'
copy m-first && jsonl_set m-first/metrics.jsonl 1 epoch 2
refused m-first 'm-first/metrics.jsonl:1: epoch 2 on the first line; epochs count from 1'
copy m-half && jsonl_set m-half/metrics.jsonl 2 epoch 2.5
refused m-half 'm-half/metrics.jsonl:2: "epoch" is 2.5, expected a whole number from 1'
copy m-beyond && json_set m-beyond/config.json epochs 3
refused m-beyond "m-beyond/metrics.jsonl:4: epoch 4, but the run has 3 (config.json's \"epochs\")"
for bad in "train_accuracy 1.5" "train_accuracy -0.25" "dev_accuracy 2" "test_accuracy -1"; do
    set -- $bad
    copy "m-$1" && jsonl_set "m-$1/metrics.jsonl" 2 "$1" "$2"
    refused "m-$1" "m-$1/metrics.jsonl:2: \"$1\" is $2, expected a number in [0, 1]"
done
for bad in "train_loss -0.5" "dev_loss -2" "test_loss inf" "seconds -1" "lr -0.01" "lr inf"; do
    set -- $bad
    name="m-$1-$2" && copy "$name" && jsonl_set "$name/metrics.jsonl" 2 "$1" "$2"
    refused "$name" "$name/metrics.jsonl:2: \"$1\" is $2, expected a finite number >= 0"
done
copy m-lr-null && jsonl_set m-lr-null/metrics.jsonl 2 lr null
refused m-lr-null 'm-lr-null/metrics.jsonl:2: "lr" must be a number'
copy m-seconds-text && jsonl_set m-seconds-text/metrics.jsonl 4 seconds '"0.1"'
refused m-seconds-text 'm-seconds-text/metrics.jsonl:4: "seconds" must be a number'

# steps.jsonl: a line every 4 steps.
copy s-same && "$PY" - s-same/steps.jsonl <<'EOF'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
lines[2]["step"] = lines[1]["step"]
open(sys.argv[1], "w").write("".join(json.dumps(l) + "\n" for l in lines))
EOF
refused s-same 's-same/steps.jsonl:3: step 8 after step 8 (steps must increase)'
copy s-back && jsonl_set s-back/steps.jsonl 3 step 2
refused s-back 's-back/steps.jsonl:3: step 2 after step 8 (steps must increase)'
copy s-zero && jsonl_set s-zero/steps.jsonl 1 step 0
refused s-zero 's-zero/steps.jsonl:1: "step" is 0, expected a whole number >= 1'
LAST_STEPS=$(lines base/steps.jsonl)
copy s-epoch && jsonl_set s-epoch/steps.jsonl "$LAST_STEPS" epoch 1
refused s-epoch "s-epoch/steps.jsonl:$LAST_STEPS: epoch 1 after epoch"
copy s-acc && jsonl_set s-acc/steps.jsonl 2 dev_accuracy 1.25
refused s-acc 's-acc/steps.jsonl:2: "dev_accuracy" is 1.25, expected a number in [0, 1]'
copy s-test-acc && jsonl_set s-test-acc/steps.jsonl 2 test_accuracy -0.5
refused s-test-acc 's-test-acc/steps.jsonl:2: "test_accuracy" is -0.5, expected a number in [0, 1]'
copy s-loss && jsonl_set s-loss/steps.jsonl 2 dev_loss -1
refused s-loss 's-loss/steps.jsonl:2: "dev_loss" is -1, expected a finite number >= 0'

# trace.jsonl: steps 1, 3, 6, ... of layer 2, unit 0.
copy t-same && "$PY" - t-same/trace.jsonl <<'EOF'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
lines[3]["step"] = lines[2]["step"]
open(sys.argv[1], "w").write("".join(json.dumps(l) + "\n" for l in lines))
EOF
refused t-same 't-same/trace.jsonl:4: step'
check "t-same: says steps must increase" grep -qF "(steps must increase)" "$WORK/stderr"
LAST_TRACE=$(lines base/trace.jsonl)
copy t-epoch && jsonl_set t-epoch/trace.jsonl "$LAST_TRACE" epoch 1
refused t-epoch "t-epoch/trace.jsonl:$LAST_TRACE: epoch 1 after epoch"
copy t-unit-order && jsonl_set t-unit-order/trace.jsonl 2 unit_p15 1000
refused t-unit-order 't-unit-order/trace.jsonl:2: "unit_p15" 1000 is above "unit_p50"'
copy t-layer-order && jsonl_set t-layer-order/trace.jsonl 3 layer_p85 -1000
refused t-layer-order 't-layer-order/trace.jsonl:3: "layer_p50"'
check "t-layer-order: percentiles out of order" grep -qF "percentiles out of order" "$WORK/stderr"
copy t-layer && jsonl_set t-layer/trace.jsonl 3 layer 1
refused t-layer 't-layer/trace.jsonl:3: layer 1, but line 1 traces layer 2'
copy t-inf && jsonl_set t-inf/trace.jsonl 2 layer_p50 inf
refused t-inf 't-inf/trace.jsonl:2: "layer_p50" is inf, expected a finite number'

# summary.json: members at their lines.
summary_refused() {   # KEY JSON MESSAGE
    local dir="sum-$1-${2//[^a-z0-9]/}"
    copy "$dir" && json_set "$dir/summary.json" "$1" "$2"
    refused "$dir" "$dir/summary.json:$(line_of "$dir/summary.json" "$1"): \"$1\" $3"
}
summary_refused epochs 7 "is 7, but metrics.jsonl's last epoch is 4"
summary_refused epochs 3 "is 3, but metrics.jsonl's last epoch is 4"
summary_refused test_accuracy 1.5 "is 1.5, expected a number in [0, 1]"
summary_refused dev_accuracy -0.1 "is -0.1, expected a number in [0, 1]"
summary_refused steps -3 "is -3, expected a whole number >= 0"
summary_refused samples 2.5 "is 2.5, expected a whole number >= 0"
summary_refused train_seconds -1 "is -1, expected a finite number >= 0"
summary_refused test_loss -0.5 "is -0.5, expected a finite number >= 0"
summary_refused test_samples 17 "is 17, but config.json's is"
summary_refused test_accuracy null "is null, but \"test_samples\" is"
summary_refused dev_samples 9 "is 9, but config.json's is 60"
copy sum-no-test && json_set sum-no-test/summary.json test_samples 0
refused sum-no-test "sum-no-test/summary.json:$(line_of sum-no-test/summary.json test_loss): \"test_loss\" is a number, but \"test_samples\" is 0"
summary_refused diverged '"no"' "must be true or false"
summary_refused ranks 0 "is 0, expected a whole number from 1"

# config.json
config_refused() {   # KEY JSON MESSAGE
    local dir="cfg-$1-${2//[^a-z0-9]/}"
    copy "$dir" && json_set "$dir/config.json" "$1" "$2"
    refused "$dir" "$dir/config.json:$(line_of "$dir/config.json" "$1"): \"$1\" $3"
}
config_refused train_samples -5 "is -5, expected a whole number from 1"
config_refused features 0 "is 0, expected a whole number from 1"
config_refused lr 0 "is 0, expected a finite number > 0"
config_refused dev_fraction 1.5 "is 1.5, expected a number in [0, 1)"
config_refused layers '[8, -2]' "is -2, expected a whole number from 1"
config_refused epochs -1 "is -1, expected a whole number from 0 to 2147483647"   # 0: --epochs 0
config_refused early_stop 0 "is 0, expected a whole number from 1"
config_refused monitor '"dev_loss"' 'is "dev_loss", which nabla does not write there'
config_refused min_delta -0.5 "is -0.5, expected a finite number >= 0"
config_refused batch_size '"huge"' 'must be a number or "full"'
config_refused dev_samples 0 "is 0, but \"dev_fraction\" is 0.2"
config_refused seed -1 "is -1, expected a whole number >= 0"
config_refused beta 1 "is 1, expected a number in [0, 1)"

# Accepted: runs in progress, and the odd values a run can write.
copy progress && rm progress/summary.json && head -n 2 base/metrics.jsonl >progress/metrics.jsonl &&
    printf '{"epoch":3,"lr":0.001,"train_lo' >>progress/metrics.jsonl &&
    printf '{"step":' >>progress/steps.jsonl && printf '{"step":99,"lay' >>progress/trace.jsonl
accepted progress "a run in progress, last lines half written"
check "a run in progress: not finished" grep -q "not finished" progress/report.html
copy started && rm started/summary.json && : >started/metrics.jsonl && : >started/steps.jsonl &&
    : >started/trace.jsonl
accepted started "a run that has just started"
run train --data moons --samples 100 --epochs 3 --layers 4 --lr-decay exp --decay-rate 1e-30 \
    --quiet --out lr-zero
check "train lr-zero: exit 0 (stderr: $(head -c 300 "$WORK/stderr"))" [ "$RC" -eq 0 ]
check "lr-zero: epoch 3's rate is 0" pytrue "json.loads(open('lr-zero/metrics.jsonl').readlines()[2])['lr'] == 0"
accepted lr-zero "a learning rate decayed to 0 (a float underflows)"
# A run still going whose weights grow huge: dev and test losses that overflowed (null), and
# percentiles of a diverging step.
copy nulls && rm nulls/summary.json && jsonl_set nulls/metrics.jsonl 2 dev_loss null &&
    jsonl_set nulls/metrics.jsonl 3 test_loss null && jsonl_set nulls/steps.jsonl 2 dev_loss null &&
    jsonl_set nulls/trace.jsonl 2 unit_p50 null
accepted nulls "null losses and percentiles in a run still going (weights grown huge)"
copy edges && jsonl_set edges/metrics.jsonl 1 train_accuracy 0 && jsonl_set edges/metrics.jsonl 2 \
    test_accuracy 1 && jsonl_set edges/metrics.jsonl 3 train_loss 0
accepted edges "accuracies of exactly 0 and 1, a loss of 0"
# A run that starts again in a directory, or resumes, has no summary.json until its end.
copy again && echo '{"epochs": 99}' >again/summary.json
run train --resume again --epochs 6 --quiet
check "resume with more epochs: exit 0 (stderr: $(head -c 300 "$WORK/stderr"))" [ "$RC" -eq 0 ]
check "the resumed run's summary says 6 epochs" pytrue "json.load(open('again/summary.json'))['epochs'] == 6"
accepted again "a resumed run, extended"

# ---- 1b. report: sense across members and files -----------------------------------------------
# Every required member (the ones every nabla has written); each file's table says them.
copy sum-empty && echo '{}' >sum-empty/summary.json
refused sum-empty 'sum-empty/summary.json: "test_loss" is missing'
copy sum-array && echo '[]' >sum-array/summary.json
refused sum-array 'sum-array/summary.json:1: expected a JSON object'
drop_member() {   # FILE KEY: the file without member KEY
    "$PY" - "$1" "$2" <<'EOF'
import json, sys
obj = json.load(open(sys.argv[1]))
del obj[sys.argv[2]]
open(sys.argv[1], "w").write(json.dumps(obj, indent="\t") + "\n")
EOF
}
for key in model epochs diverged dev_samples; do
    copy "sum-no-$key" && drop_member "sum-no-$key/summary.json" "$key"
    refused "sum-no-$key" "sum-no-$key/summary.json: \"$key\" is missing"
done
for key in optimizer epochs seed features; do
    copy "cfg-no-$key" && drop_member "cfg-no-$key/config.json" "$key"
    refused "cfg-no-$key" "cfg-no-$key/config.json: \"$key\" is missing"
done
# The model: "model" (and "input_shape"), or only the widths form's members of older runs.
copy "cfg-no-model" && drop_member cfg-no-model/config.json model &&
    drop_member cfg-no-model/config.json layers
refused "cfg-no-model" "cfg-no-model/config.json: \"model\" is missing"
copy "cfg-no-shape" && drop_member cfg-no-shape/config.json input_shape
refused "cfg-no-shape" "cfg-no-shape/config.json: \"input_shape\" is missing"
copy "cfg-no-activation" && drop_member cfg-no-activation/config.json activation
refused "cfg-no-activation" \
    "cfg-no-activation/config.json:28: \"layers\" needs \"activation\", \"leaky_slope\" and \"batchnorm\""
# Older nabla wrote fewer members (data_header, sync_batchnorm, decay_epochs, ranks, blas_kernel,
# checkpoint_every, resumed_from, the trace and evaluation settings in config.json; ranks and
# the all-reduce figures in summary.json): their runs stay readable.
copy older && "$PY" - older <<'EOF'
import json, sys
d = sys.argv[1]
c = json.load(open(d + "/config.json"))
for k in ("data_header", "test_header", "sync_batchnorm", "decay_epochs", "ranks", "blas_kernel",
          "checkpoint_every", "resumed_from", "trace_activations", "trace_layer", "trace_unit",
          "trace_every", "eval_every"):
    del c[k]
open(d + "/config.json", "w").write(json.dumps(c, indent="\t") + "\n")
s = json.load(open(d + "/summary.json"))
for k in ("ranks", "allreduce_seconds", "allreduce_calls"):
    del s[k]
open(d + "/summary.json", "w").write(json.dumps(s, indent="\t") + "\n")
EOF
accepted older "the files of an older nabla (fewer members)"

# A name twice in one object: cJSON would keep the first; every reader refuses it.
raw_edit() {   # FILE LINE PYTHON-EXPRESSION: line LINE (1-based), l, becomes the expression
    "$PY" - "$@" <<'EOF'
import sys
path, n, expr = sys.argv[1], int(sys.argv[2]), sys.argv[3]
lines = open(path).read().split("\n")
l = lines[n - 1]
lines[n - 1] = eval(expr)
open(path, "w").write("\n".join(lines))
EOF
}
copy dup-epoch && raw_edit dup-epoch/metrics.jsonl 3 "l.replace('{\"epoch\":3,', '{\"epoch\":3,\"epoch\":9,')"
refused dup-epoch 'dup-epoch/metrics.jsonl:3: "epoch" appears twice'
copy dup-acc && raw_edit dup-acc/metrics.jsonl 2 "l[:-1] + ',\"train_accuracy\":5}'"
refused dup-acc 'dup-acc/metrics.jsonl:2: "train_accuracy" appears twice'
copy dup-same && raw_edit dup-same/metrics.jsonl 2 "l[:-1] + ',\"epoch\":2}'"
refused dup-same 'dup-same/metrics.jsonl:2: "epoch" appears twice'
copy dup-steps && raw_edit dup-steps/steps.jsonl 1 "l[:-1] + ',\"step\":4}'"
refused dup-steps 'dup-steps/steps.jsonl:1: "step" appears twice'
copy dup-trace && raw_edit dup-trace/trace.jsonl 2 "l[:-1] + ',\"unit\":0}'"
refused dup-trace 'dup-trace/trace.jsonl:2: "unit" appears twice'
LINE=$(line_of base/config.json epochs)
copy dup-cfg && raw_edit dup-cfg/config.json "$LINE" "l + '\n\t\"epochs\":\t1,'"
refused dup-cfg "dup-cfg/config.json:$((LINE + 1)): \"epochs\" appears twice"
LINE=$(line_of base/summary.json test_accuracy)
copy dup-sum && raw_edit dup-sum/summary.json "$LINE" "l + '\n\t\"test_accuracy\":\t0.99,'"
refused dup-sum "dup-sum/summary.json:$((LINE + 1)): \"test_accuracy\" appears twice"

# A last line without its newline: a line being written begins like the file's lines, and only
# a run still going (no summary.json) has one.
copy bin && rm bin/summary.json && head -c 20000 /dev/urandom | tr -d '\n' | head -c 1600 >bin/metrics.jsonl
refused bin 'bin/metrics.jsonl:1: the last line has no newline and is not the beginning of a line of this file'
copy junk-going && rm junk-going/summary.json && printf 'GARBAGE{{{' >>junk-going/metrics.jsonl
refused junk-going 'junk-going/metrics.jsonl:5: the last line has no newline and is not the beginning'
copy junk-done && printf 'GARBAGE{{{' >>junk-done/metrics.jsonl
refused junk-done 'junk-done/metrics.jsonl:5: the last line has no newline, but summary.json is there'
copy torn-done && printf '{"epoch":5,"lr":0.0' >>torn-done/metrics.jsonl
refused torn-done 'torn-done/metrics.jsonl:5: the last line has no newline, but summary.json is there'
copy torn-other && rm torn-other/summary.json && printf '{"step":5,"ep' >>torn-other/metrics.jsonl
refused torn-other 'torn-other/metrics.jsonl:5: the last line has no newline and is not the beginning'
copy torn-json && rm torn-json/summary.json && printf '{"epoch":5,"lr":0.0.1' >>torn-json/metrics.jsonl
refused torn-json 'torn-json/metrics.jsonl:5: the last line has no newline and is not the beginning'
copy torn-steps && rm torn-steps/summary.json && printf '\001\002{"step":' >>torn-steps/steps.jsonl
refused torn-steps "torn-steps/steps.jsonl:$((LAST_STEPS + 1)): the last line has no newline and is not"
copy torn-trace && printf '{"step":99,"lay' >>torn-trace/trace.jsonl
refused torn-trace "torn-trace/trace.jsonl:$((LAST_TRACE + 1)): the last line has no newline, but summary.json is there"

# Values config.json's options could not have had, and members that disagree.
config_refused optimizer '"bogus"' 'is "bogus", which nabla does not write there'
config_refused optimizer '"Adam"' 'is "Adam", which nabla does not write there'
config_refused activation '"bogus"' 'is "bogus", which nabla does not write there'
config_refused lr_decay '"linear"' 'is "linear", which nabla does not write there'
config_refused normalize '"minmax"' 'is "minmax", which nabla does not write there'
config_refused data_kind '"parquet"' 'is "parquet", which nabla does not write there'
config_refused command '"tune"' 'is "tune", which nabla does not write there'
config_refused features 99 "is 99, but moons has 2"
config_refused classes 3 "is 3, but moons has 2"
config_refused parameters 115 "is 115, but a model of these features, layers and classes has 114"
config_refused samples 999 "is not their sum, but \"train_samples\" and \"dev_samples\" make 300"
config_refused data_path '"moonz"' 'is "moonz", but "data_kind" is "synthetic"'
config_refused trace_layer 3 'must be an activation layer, 1 to 2'
config_refused trace_unit 8 'must be a unit of layer 2, 0 to 7'
# A split's numbers in metrics.jsonl and steps.jsonl exactly when it has samples; its loss null
# only in a run that diverged or is still going.
copy n-dev-acc && jsonl_set n-dev-acc/metrics.jsonl 2 dev_accuracy null
refused n-dev-acc 'n-dev-acc/metrics.jsonl:2: "dev_accuracy" is null, but the dev split has 60 samples'
copy n-test-loss && jsonl_set n-test-loss/metrics.jsonl 3 test_loss null
refused n-test-loss 'n-test-loss/metrics.jsonl:3: "test_loss" is null, but the test split has 200 samples and the run did not diverge'
copy n-train && jsonl_set n-train/metrics.jsonl 2 train_accuracy null
refused n-train 'n-train/metrics.jsonl:2: "train_accuracy" must be a number'
copy n-steps && jsonl_set n-steps/steps.jsonl 2 test_accuracy null
refused n-steps 'n-steps/steps.jsonl:2: "test_accuracy" is null, but the test split has 200 samples'
copy n-going && rm n-going/summary.json && jsonl_set n-going/metrics.jsonl 2 dev_accuracy null
refused n-going 'n-going/metrics.jsonl:2: "dev_accuracy" is null, but the dev split has 60 samples'
copy n-nodev && json_set n-nodev/config.json dev_fraction 0 && json_set n-nodev/config.json dev_samples 0 &&
    json_set n-nodev/config.json train_samples 300 && json_set n-nodev/summary.json dev_samples 0
refused n-nodev "n-nodev/metrics.jsonl:1: \"dev_loss\" is a number, but config.json's \"dev_samples\" is 0"
# The summary evaluates the weights the last epoch ended with: its figures are that epoch's.
for key in test_accuracy dev_accuracy train_accuracy train_loss dev_loss test_loss; do
    copy "s-$key" && json_set "s-$key/summary.json" "$key" 0.123
    refused "s-$key" "s-$key/summary.json:$(line_of "s-$key/summary.json" "$key"): \"$key\" is 0.123, but metrics.jsonl's last epoch (4) has"
done
summary_refused model '"/etc/passwd"' 'is "/etc/passwd", which nabla does not write there'
summary_refused model '"../x/model.safetensors"' 'is "../x/model.safetensors", which nabla'
copy s-div && json_set s-div/summary.json diverged true
refused s-div "s-div/summary.json:$(line_of s-div/summary.json diverged_epoch): \"diverged_epoch\" is null, but \"diverged\" is true"
copy s-div-epoch && json_set s-div-epoch/summary.json diverged_epoch 2
refused s-div-epoch "s-div-epoch/summary.json:$(line_of s-div-epoch/summary.json diverged_epoch): \"diverged_epoch\" is a number, but \"diverged\" is false"

# A diverged run: its summary evaluates the last good weights, as its last epoch did; losses
# that overflowed are null in both.
run train --data moons --samples 300 --epochs 4 --dev-fraction 0.2 --layers 8 --optimizer sgd \
    --lr 1e10 --threads 1 --quiet --out diverged
check "a diverging run exits 1 with its files" [ "$RC" -eq 1 ] && [ -f diverged/summary.json ]
copy_of() { rm -rf "$2" && cp -r "$1" "$2" && echo "an older report" >"$2/report.html"; }
copy_of diverged div && accepted div "a diverged run"
copy_of diverged div-null && jsonl_set div-null/metrics.jsonl "$(lines diverged/metrics.jsonl)" test_loss null &&
    json_set div-null/summary.json test_loss null
accepted div-null "a diverged run whose test loss overflowed"
# Diverged at an epoch's first step (one step an epoch): the model kept is the one before that
# step, not the one the last epoch was evaluated with; only the training figures compare.
run train --data moons --samples 300 --epochs 3 --layers 8 --batch-size full --optimizer sgd \
    --lr 1e30 --threads 1 --quiet --out diverged-first
check "a run diverging at an epoch's first step exits 1" [ "$RC" -eq 1 ]
check "it diverged in epoch 2, after epoch 1" pytrue \
    "(lambda s: (s['epochs'], s['diverged_epoch']) == (1, 2))(json.load(open('diverged-first/summary.json')))"
copy_of diverged-first div-first && accepted div-first "a run that diverged at an epoch's first step"
copy_of diverged-first div-first-train && json_set div-first-train/summary.json train_loss 0.5
refused div-first-train "div-first-train/summary.json:$(line_of div-first-train/summary.json train_loss): \"train_loss\" is 0.5, but metrics.jsonl's last epoch (1) has"
copy_of diverged div-epochs && json_set div-epochs/summary.json diverged_epoch 3
refused div-epochs "div-epochs/summary.json:$(line_of div-epochs/summary.json epochs): \"epochs\" is 1, but the run diverged in epoch 3"

# The model of the decision regions is the run's: another run's, copied in, is refused.
small() { run train --data "$1" --samples 200 --epochs 1 --threads 1 --quiet --out "$2" "${@:3}"; }
small moons F --layers 16,16 --dev-fraction 0.2
small circles G --layers 8
small moons H --layers 16,16 --batchnorm
small moons I --layers 16,16 --activation tanh
small spirals J --layers 16,16
foreign() {   # NAME FROM MESSAGE
    copy_of F "$1" && cp "$2/model.safetensors" "$1/"
    refused "$1" "$1/model.safetensors: the model's $3 (not this run's model)"
}
foreign f-layers G "layers: linear(8),relu,linear; config.json's: linear(16),relu,linear(16),relu,linear"
foreign f-bn H "layers: linear(16),batchnorm,relu,linear(16),batchnorm,relu,linear; config.json's: linear(16),relu,linear(16),relu,linear"
foreign f-act I "layers: linear(16),tanh,linear(16),tanh,linear; config.json's: linear(16),relu,linear(16),relu,linear"
foreign f-classes J "classes: 3; config.json's: 2"
"$PY" -c '
import random
random.seed(3)
with open("two.csv", "w") as f:
    for i in range(100):
        y = random.randrange(2)
        f.write("%.3f,%.3f,%d\n" % (random.gauss(3 * y, 1), random.gauss(-y, 1), y))
'
run train --data two.csv --test none --layers 4 --epochs 1 --threads 1 --normalize none \
    --quiet --out K
run train --data two.csv --test none --layers 4 --epochs 1 --threads 1 --normalize standard \
    --quiet --out L
copy_of K f-norm && cp L/model.safetensors f-norm/
refused f-norm "f-norm/model.safetensors: the model's input standardization: standard; config.json's: none (\"normalize\") (not this run's model)"
copy_of F f-own && accepted f-own "the run's own model"

# ---- 1c. report: the files of a run against each other -----------------------------------------
# The rate of each epoch is the one config.json's schedule gives it, an accuracy is a count of
# its split's samples, summary.json's steps and samples are what config.json's sizes make over
# metrics.jsonl's epochs, and train_seconds is the epochs' seconds summed. First every run nabla
# writes that bears on them must read.

# legit NAME ARGS...: nabla train --out NAME ARGS exits 0 (WANT_RC: 1 for a run that diverges)
# and nabla report NAME reads it.
legit() {
    local name=$1 want=${WANT_RC:-0}
    shift
    rm -rf "$name"
    run train --data moons --samples 100 --layers 4 --threads 1 --quiet --out "$name" "$@"
    check "train $name: exit $want (stderr: $(head -c 300 "$WORK/stderr"))" [ "$RC" -eq "$want" ]
    run report "$name"
    check "report $name ($*): exit 0 (stderr: $(head -c 300 "$WORK/stderr"))" [ "$RC" -eq 0 ]
}
for decay in none inverse exp inverse-sqrt interval step cosine; do
    legit "d-$decay" --epochs 4 --lr-decay "$decay" --decay-rate 0.5 --decay-interval 2 --lr 0.01
    legit "w-$decay" --epochs 5 --lr-decay "$decay" --decay-rate 0.5 --decay-interval 2 --lr 0.01 \
        --warmup-epochs 2 --dev-fraction 0.3
done
legit cos-horizon --epochs 5 --lr-decay cosine --decay-epochs 3 --warmup-epochs 1
# Extensions with --resume --epochs: cosine held past its horizon, the others as they are.
for decay in cosine exp step; do
    legit "x-$decay" --epochs 3 --lr-decay "$decay" --decay-rate 0.5 --warmup-epochs 1
    run train --resume "x-$decay" --epochs 6 --quiet
    check "x-$decay extended: exit 0 (stderr: $(head -c 300 "$WORK/stderr"))" [ "$RC" -eq 0 ]
    run report "x-$decay"
    check "report x-$decay extended: exit 0 (stderr: $(head -c 300 "$WORK/stderr"))" [ "$RC" -eq 0 ]
done
# 80 training samples: batches of 32 are 3 steps an epoch, the last of 16.
legit steps-mid --epochs 4 --dev-fraction 0.2 --batch-size 32 --max-steps 5
legit steps-end --epochs 4 --dev-fraction 0.2 --batch-size 32 --max-steps 6
legit steps-more --epochs 2 --dev-fraction 0.2 --batch-size 32 --max-steps 50
legit b-full --epochs 3 --batch-size full --dev-fraction 0.1
legit b-one --epochs 2 --batch-size 1
legit b-seven --epochs 3 --batch-size 7 --dev-fraction 0.15
legit b-huge --epochs 2 --batch-size 1000
legit bn --epochs 3 --batchnorm --batch-size 16 --dev-fraction 0.25
legit sgd --epochs 3 --optimizer sgd --lr 0.5 --batch-size 10
# Diverged: at an epoch's first step (the whole batch) and within an epoch.
WANT_RC=1 legit nan-first --epochs 3 --lr 1e30 --batch-size full --optimizer sgd
WANT_RC=1 legit nan-mid --epochs 3 --lr 1e6 --batch-size 8 --optimizer sgd
"$PY" -c '
import random
random.seed(5)
for name, n in (("c-train.csv", 90), ("c-test.csv", 33)):
    with open(name, "w") as f:
        for i in range(n):
            y = random.randrange(3)
            f.write("%.3f,%.3f,%d\n" % (random.gauss(2 * y, 1), random.gauss(-y, 1), y))
'
rm -rf csv-test csv-none
run train --data c-train.csv --test c-test.csv --dev-fraction 0.2 --layers 4 --epochs 3 \
    --batch-size 16 --threads 1 --quiet --out csv-test
check "train csv-test: exit 0 (stderr: $(head -c 300 "$WORK/stderr"))" [ "$RC" -eq 0 ]
run report csv-test
check "report csv-test: exit 0 (stderr: $(head -c 300 "$WORK/stderr"))" [ "$RC" -eq 0 ]
run train --data c-train.csv --test none --layers 4 --epochs 2 --threads 1 --quiet --out csv-none
run report csv-none
check "report csv-none: exit 0 (stderr: $(head -c 300 "$WORK/stderr"))" [ "$RC" -eq 0 ]
# Stopped by SIGINT part way through its second epoch, resumed. An epoch of 1350 steps, each
# 10th checkpointed (an epoch makes about 450 renames): strace sends the SIGINT at the 680th
# rename, in the middle of epoch 2 whatever the machine's speed.
rm -rf int
ASAN_OPTIONS=$TRACED_ASAN strace -f -qq -o /dev/null -e trace=rename \
    -e inject=rename:signal=SIGINT:when=680 \
    "$NABLA" train --data moons --samples 3000 --batch-size 2 --epochs 2 --layers 4 --threads 1 \
    --lr-decay inverse --decay-rate 0.5 --checkpoint-every 10 --dev-fraction 0.1 --quiet \
    --out int >/dev/null 2>"$WORK/stderr"
STOPPED=$?
check "int: stopped by SIGINT (exit $STOPPED, 130 expected: $(head -c 300 "$WORK/stderr"))" [ "$STOPPED" -eq 130 ]
check "int: in its second epoch" [ "$(wc -l <int/metrics.jsonl)" -eq 1 ]
run train --resume int --quiet
check "int resumed: exit 0 (stderr: $(head -c 300 "$WORK/stderr"))" [ "$RC" -eq 0 ]
run report int
check "report int (stopped and resumed): exit 0 (stderr: $(head -c 300 "$WORK/stderr"))" [ "$RC" -eq 0 ]

# The contradictions, each on a fresh copy of a run: one line naming the file and line.
# copy_run FROM NAME: a fresh copy of run FROM, with an older report that must survive.
copy_run() { rm -rf "$2" && cp -r "$1" "$2" && echo "an older report" >"$2/report.html"; }
legit g --epochs 3 --dev-fraction 0.1
copy_run g lr-const && jsonl_set lr-const/metrics.jsonl 2 lr 0.5
refused lr-const 'lr-const/metrics.jsonl:2: "lr" is 0.5, but config.json'"'"'s schedule ("lr" 0.001, "lr_decay" "none", "warmup_epochs" 0) gives epoch 2 the rate 0.001'
copy_run g lr-config && json_set lr-config/config.json lr 0.002
refused lr-config 'lr-config/metrics.jsonl:1: "lr" is 0.001, but config.json'"'"'s schedule ("lr" 0.002'
copy_run w-cosine lr-warm && json_set lr-warm/config.json warmup_epochs 1
refused lr-warm 'lr-warm/metrics.jsonl:1: "lr" is 0.005, but config.json'"'"'s schedule ("lr" 0.01, "lr_decay" "cosine", "warmup_epochs" 1) gives epoch 1 the rate 0.01'
copy_run x-cosine lr-horizon && json_set lr-horizon/config.json decay_epochs 6
refused lr-horizon 'lr-horizon/metrics.jsonl:3: "lr" is'
copy_run d-step lr-interval && json_set lr-interval/config.json decay_interval 1
refused lr-interval 'lr-interval/metrics.jsonl:2: "lr" is 0.01, but'
copy_run d-exp lr-kind && json_set lr-kind/config.json lr_decay '"inverse"'
refused lr-kind 'lr-kind/metrics.jsonl:2: "lr" is 0.005, but config.json'"'"'s schedule ("lr" 0.01, "lr_decay" "inverse", "warmup_epochs" 0) gives epoch 2 the rate 0.0066666664'
copy lr-steps && jsonl_set lr-steps/steps.jsonl 1 lr 0.1
refused lr-steps 'lr-steps/steps.jsonl:1: "lr" is 0.1, but config.json'"'"'s schedule ("lr" 0.001, "lr_decay" "none", "warmup_epochs" 0) gives epoch 1 the rate 0.001'
copy_run g lr-bad && json_set lr-bad/config.json lr_decay '"exp"' && json_set lr-bad/config.json decay_rate 0
refused lr-bad "lr-bad/config.json:$(line_of lr-bad/config.json lr_decay): \"lr_decay\" \"exp\" is not a schedule nabla trains with: exp decay: rate must be in (0, 1], got 0"
copy_run g acc-dev && jsonl_set acc-dev/metrics.jsonl 1 dev_accuracy 0.5612
refused acc-dev 'acc-dev/metrics.jsonl:1: "dev_accuracy" is 0.5612, but it was evaluated on 10 samples (config.json'"'"'s "dev_samples"): no count out of 10 is 0.5612'
copy_run csv-test acc-test && jsonl_set acc-test/metrics.jsonl 3 test_accuracy 0.5
refused acc-test 'acc-test/metrics.jsonl:3: "test_accuracy" is 0.5, but it was evaluated on 33 samples'
copy_run g acc-train && jsonl_set acc-train/metrics.jsonl 1 train_accuracy 0.123
refused acc-train 'acc-train/metrics.jsonl:1: "train_accuracy" is 0.123, but it was evaluated on 90 samples (config.json'"'"'s "train_samples", a whole epoch)'
copy_run steps-mid acc-last && jsonl_set acc-last/metrics.jsonl 2 train_accuracy 0.3 &&
    json_set acc-last/summary.json train_accuracy 0.3
refused acc-last 'acc-last/metrics.jsonl:2: "train_accuracy" is 0.3, but it was evaluated on 64 samples (the last epoch'"'"'s part of summary.json'"'"'s "samples")'
copy_run csv-test acc-size && json_set acc-size/config.json test_samples 30 &&
    json_set acc-size/summary.json test_samples 30
refused acc-size 'acc-size/metrics.jsonl:1: "test_accuracy" is'
copy_run g cnt-steps && json_set cnt-steps/summary.json steps 4500 && json_set cnt-steps/summary.json samples 270000
refused cnt-steps "cnt-steps/summary.json:$(line_of cnt-steps/summary.json steps): \"steps\" is 4500, but its epochs of whole batches (config.json's sizes) make 6 (3 epochs of 2 steps of 64 samples)"
copy_run g cnt-samples && json_set cnt-samples/summary.json samples 99
refused cnt-samples "cnt-samples/summary.json:$(line_of cnt-samples/summary.json samples): \"samples\" is 99, but 6 steps in batches of 64 of config.json's 90 training samples train on 270"
copy_run g cnt-batch && json_set cnt-batch/config.json batch_size 7
refused cnt-batch "cnt-batch/summary.json:$(line_of cnt-batch/summary.json steps): \"steps\" is 6, but its epochs of whole batches (config.json's sizes) make 39 (3 epochs of 13 steps of 7 samples)"
copy_run steps-mid cnt-max && json_set cnt-max/config.json max_steps 4
refused cnt-max "cnt-max/summary.json:$(line_of cnt-max/summary.json steps): \"steps\" is 5, but config.json's \"max_steps\" is 4"
copy_run steps-mid cnt-nomax && json_set cnt-nomax/config.json max_steps null
refused cnt-nomax "cnt-nomax/summary.json:$(line_of cnt-nomax/summary.json steps): \"steps\" is 5, but its epochs of whole batches (config.json's sizes) make 6"
copy_run nan-mid cnt-nan && json_set cnt-nan/summary.json diverged_step 1
refused cnt-nan "cnt-nan/summary.json:$(line_of cnt-nan/summary.json steps): \"steps\" is"
copy_run g sec-total && json_set sec-total/summary.json train_seconds 1000
refused sec-total "sec-total/summary.json:$(line_of sec-total/summary.json train_seconds): \"train_seconds\" is 1000, but metrics.jsonl's epochs took"
copy_run int sec-resumed && json_set sec-resumed/summary.json train_seconds 0
refused sec-resumed "sec-resumed/summary.json:$(line_of sec-resumed/summary.json train_seconds): \"train_seconds\" is 0, but metrics.jsonl's epochs took"

# ---- 2. eval ---------------------------------------------------------------------------------
# nabla eval reads the model file (its architecture, normalization and tensors, all checked)
# and the data set; nothing else of the run directory. A batch-norm running variance below 0
# cannot be.
run train --data moons --samples 200 --epochs 1 --layers 8 --batchnorm --threads 1 --quiet --out bn
check "train bn" [ "$RC" -eq 0 ]
"$PY" - bn/model.safetensors negvar.safetensors <<'EOF'
import json, struct, sys
b = bytearray(open(sys.argv[1], "rb").read())
n = struct.unpack("<Q", b[:8])[0]
start = 8 + n + json.loads(b[8:8 + n])["1.running_var"]["data_offsets"][0]
b[start + 4:start + 8] = struct.pack("<f", -0.25)
open(sys.argv[2], "wb").write(b)
EOF
expect_exit 1 "eval of a model with a negative running variance" eval --model negvar.safetensors --data moons
check "negative variance: one line naming the tensor (got: $(cat "$WORK/stderr"))" \
    one_line_error "nabla: negvar.safetensors: tensor '1.running_var' element 1 is -0.25: a variance cannot be negative"
rm -rf evdir && cp -r base evdir && jsonl_set evdir/metrics.jsonl 2 epoch 9
run eval --model evdir/model.safetensors --data moons --samples 300 --json
check "eval reads the model alone: a damaged metrics.jsonl beside it does not matter" [ "$RC" -eq 0 ]

# st_meta IN OUT KEY VALUE: a copy of model IN with metadata KEY set to the string VALUE.
st_meta() {
    "$PY" - "$@" <<'EOF'
import json, struct, sys
src, dst, key, value = sys.argv[1:5]
b = open(src, "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
h["__metadata__"][key] = value
text = json.dumps(h, separators=(",", ":")).encode()
text += b" " * (-len(text) % 8)
open(dst, "wb").write(struct.pack("<Q", len(text)) + text + b[8 + n:])
EOF
}
# st_weights IN OUT VALUE: a copy of model IN with every element of its dense weights VALUE.
st_weights() {
    "$PY" - "$@" <<'EOF'
import json, struct, sys
src, dst, value = sys.argv[1], sys.argv[2], float(sys.argv[3])
b = bytearray(open(src, "rb").read())
n = struct.unpack("<Q", b[:8])[0]
for name, t in json.loads(b[8:8 + n]).items():
    if name.endswith(".weight"):
        begin, end = t["data_offsets"]
        for k in range(8 + n + begin, 8 + n + end, 4):
            b[k:k + 4] = struct.pack("<f", value)
open(dst, "wb").write(b)
EOF
}
# st_header IN OUT OLD NEW: a copy of model IN whose header text has OLD replaced by NEW (the
# header length adjusted, no padding added); OLD "END": NEW after the JSON, instead of its
# padding.
st_header() {
    "$PY" - "$@" <<'EOF'
import struct, sys
src, dst, old, new = sys.argv[1:5]
b = open(src, "rb").read()
n = struct.unpack("<Q", b[:8])[0]
text = b[8:8 + n].decode()
if old == "END":
    text = (text.rstrip(" ") + new).encode()
else:
    assert old in text, (old, text)
    text = text.replace(old, new, 1).encode()
open(dst, "wb").write(struct.pack("<Q", len(text)) + text + b[8 + n:])
EOF
}
# eval_refused WHAT MESSAGE ARGS...: nabla eval ARGS exits 1 with one line holding MESSAGE and
# prints nothing (no loss, no JSON).
eval_refused() {
    local what=$1 message=$2
    shift 2
    expect_exit 1 "eval: $what" eval "$@"
    check "eval: $what: one line with '$message' (got: $(head -c 400 "$WORK/stderr"))" \
        bash -c '[ "$(wc -l <"$1")" -eq 1 ] && grep -qF -- "$2" "$1"' _ "$WORK/stderr" "$message"
    check "eval: $what: nothing on stdout" [ ! -s "$WORK/stdout" ]
}
# A standardization that makes infinities: a std below the smallest normal float is refused on
# load; a model whose outputs are not finite is an error, never "loss -nan".
run train --data two.csv --test none --layers 4 --epochs 1 --threads 1 --normalize standard \
    --quiet --out std
check "train std" [ "$RC" -eq 0 ]
for bad in "[1e-45,1e-45]:0 is not a positive finite number of at least 1.17549435e-38, the smallest normal float (1e-45)" \
           "[1,1e-39]:1 is not a positive finite number of at least 1.17549435e-38" \
           "[0,1]:0 is not a positive finite number" "[1,-2]:1 is not a positive finite number"; do
    st_meta std/model.safetensors std-bad.safetensors normalize_std "${bad%%:*}"
    eval_refused "normalize_std ${bad%%:*}" \
        "nabla: std-bad.safetensors: metadata 'normalize_std' value ${bad#*:}" \
        --model std-bad.safetensors --data two.csv
done
st_meta std/model.safetensors std-huge.safetensors normalize_mean "[1e38,1e38]"
st_meta std-huge.safetensors std-huge.safetensors normalize_std "[1e-30,1e-30]"
for json in "" --json; do
    eval_refused "a standardization that overflows $json" \
        "nabla: std-huge.safetensors: the model's outputs on two.csv are not finite (the loss is NaN)" \
        --model std-huge.safetensors --data two.csv $json
done
for value in 3e38 1e25; do
    st_weights base/model.safetensors huge.safetensors "$value"
    for json in "" --json; do
        eval_refused "weights of $value $json" \
            "nabla: huge.safetensors: the model's outputs on moons are not finite" \
            --model huge.safetensors --data moons --samples 300 $json
    done
done
run eval --model base/model.safetensors --data moons --samples 300 --json
check "eval of the run's own model: a finite loss" pytrue "json.load(open('$WORK/stdout'))['loss'] > 0"
# A class the model was not trained on: named by its line and column in the CSV file, read
# like the model's table (its classes), in a split too.
{ echo "x,y,label"; echo "0.1,0.2,0"; echo "0.9,0.8,1"; echo "0.2,0.1,7"; } >label7.csv
eval_refused "label 7, a header" "nabla: label7.csv:4:9: class '7' is not one of the training data's 2 (0, 1)" \
    --model K/model.safetensors --data label7.csv
tail -n 3 label7.csv >label7-plain.csv
eval_refused "label 7, no header" "nabla: label7-plain.csv:3:9: class '7' is not one of the training data's 2 (0, 1)" \
    --model K/model.safetensors --data label7-plain.csv
eval_refused "label 7 in --test" "nabla: label7.csv:4:9: class '7' is not one of the training data's 2 (0, 1)" \
    --model K/model.safetensors --data two.csv --test label7.csv
eval_refused "label 7, --split train" "nabla: label7.csv:4:9: class '7' is not one of the training data's 2 (0, 1)" \
    --model K/model.safetensors --data label7.csv --split train
data_refused_train() {   # MESSAGE ARGS...
    rm -rf refused-run
    expect_exit 1 "train: $1" train --layers 4 --epochs 1 --threads 1 --out refused-run "${@:2}"
    check "train: one line with '$1' (got: $(head -c 300 "$WORK/stderr"))" \
        bash -c '[ "$(wc -l <"$1")" -eq 1 ] && grep -qF -- "$2" "$1"' _ "$WORK/stderr" "$1"
}
data_refused_train "nabla: label7.csv:4:9: class '7' is not one of the training data's 2 (0, 1)" \
    --data two.csv --test label7.csv
# Numbers are decimal: strtod would read 0x10 as 16.
{ echo "0.1,0.2,0"; echo "0x10,0.8,1"; } >hex.csv
eval_refused "a hexadecimal number" "nabla: hex.csv:2:1: field 1 '0x10' is a hexadecimal number; CSV numbers are decimal" \
    --model K/model.safetensors --data hex.csv
{ echo "0.1,0.2,0"; echo "0.9, -0X1P3,1"; } >hex2.csv
data_refused_train "nabla: hex2.csv:2:6: field 2 '-0X1P3' is a hexadecimal number" --data hex2.csv --test none
{ echo "0.1,0.2,0"; echo "0.9,Infinity,1"; } >inf.csv
data_refused_train "nabla: inf.csv:2:5: field 2 is infinite" --data inf.csv --test none
# safetensors headers as the format has them: a JSON object from the first byte, only spaces
# after it, no name twice, whole numbers in digits; nabla's metadata numbers as nabla writes
# them.
M=base/model.safetensors
header_refused() {   # WHAT OLD NEW MESSAGE
    st_header "$M" hdr.safetensors "$2" "$3"
    eval_refused "$1" "nabla: hdr.safetensors: $4" --model hdr.safetensors --data moons
}
header_refused "a header beginning with a blank" '{"__metadata__"' ' {"__metadata__"' \
    "the header is not a JSON object beginning at its first byte with '{'"
header_refused "a header padded with a newline" END $'\n' \
    "the header has byte 0x0a after its JSON object, where only spaces may pad it"
header_refused "a header padded with a tab" END $'  \t' "the header has byte 0x09 after its JSON object"
header_refused "a header followed by text" END ' x' "the header has 'x' after its JSON object"
header_refused "a shape of 8.0" '"shape":[8,2]' '"shape":[8.0,2]' "the header writes a number as '8.0'"
header_refused "a shape of 08" '"shape":[8,2]' '"shape":[08,2]' "the header writes a number as '08'"
header_refused "an offset of 64e0" '"data_offsets":[0,64]' '"data_offsets":[0,64e0]' \
    "the header writes a number as '64e0'"
header_refused "a dtype twice" '"0.weight":{"dtype":"F32"' '"0.weight":{"dtype":"F32","dtype":"I64"' \
    "tensor '0.weight': 'dtype' appears twice"
header_refused "a metadata key twice" '"format":"nabla"' '"format":"nabla","classes":"3"' \
    "duplicate metadata key 'classes'"
for bad in "model:linear(8),relu,linear(8),relu,linear(3)" "model:linear(8),relu,linaer" \
           "input_shape:02" "input_shape:2x1" "input_shape: 2" "classes:+2"; do
    st_meta "$M" meta.safetensors "${bad%%:*}" "${bad#*:}"
    eval_refused "metadata ${bad%%:*} '${bad#*:}'" \
        "nabla: meta.safetensors: metadata '${bad%%:*}'" --model meta.safetensors --data moons
done
# A model file written before the text form: its widths form's metadata, read as strictly.
"$PY" - "$M" legacy.safetensors <<'EOF'
import json, struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
m = h["__metadata__"]
m.pop("input_shape")
m.update(inputs="2", layers="8,8", activation="relu", leaky_slope="0.01", batchnorm="0")
assert m.pop("model") == "linear(8),relu,linear(8),relu,linear", m
text = json.dumps(h, separators=(",", ":")).encode()
text += b" " * (-len(text) % 8)
open(sys.argv[2], "wb").write(struct.pack("<Q", len(text)) + text + b[8 + n:])
EOF
run eval --model legacy.safetensors --data moons
check "eval: a legacy model file loads (stderr: $(head -c 200 "$WORK/stderr"))" [ "$RC" -eq 0 ]
for bad in "layers: 8,8" "layers:+8,8" "layers:08,8" "layers:8, 8" "inputs:02" \
           "inputs:+2" "leaky_slope: 0.01" "leaky_slope:+0.01" "leaky_slope:0x1p-7"; do
    st_meta legacy.safetensors meta.safetensors "${bad%%:*}" "${bad#*:}"
    eval_refused "metadata ${bad%%:*} '${bad#*:}'" \
        "nabla: meta.safetensors: metadata '${bad%%:*}' is '${bad#*:}'" --model meta.safetensors --data moons
done

# ---- 3. CSV: the header rule, and bytes that are not CSV text -----------------------------------
rows() { printf '0.1,0.2,0\n0.9,0.8,1\n0.2,0.1,0\n0.8,0.9,1\n0.15,0.25,0\n0.85,0.75,1\n'; }
{ echo "x,y,label"; rows; } >header.csv
rows >plain.csv
{ echo '"x","y","label"'; rows; } >quoted.csv
{ echo "x,y,label"; rows; } | sed 's/$/\r/' >crlf.csv
rows | sed 's/$/\r/' >crlf-plain.csv
{ printf '\xef\xbb\xbfx,y,label\n'; rows; } >bom.csv
{ printf '\xef\xbb\xbf'; rows; } >bom-plain.csv
# csv_ok FILE HEADER(1|0): train reads it, and its data line says which line 1 was.
csv_ok() {
    local file=$1 want
    [ "$2" = 1 ] && want="line 1 is a header (no number in it), not a sample" ||
        want="line 1 is a sample (it holds numbers), not a header"
    run train --data "$file" --test none --layers 4 --epochs 1 --threads 1 --out "run-$file"
    check "train --data $file: exit 0 (stderr: $(head -c 300 "$WORK/stderr"))" [ "$RC" -eq 0 ]
    check "train --data $file: says '$want' (got: $(head -n 1 "$WORK/stdout"))" \
        grep -qxF "data $file: 6 samples, 2 features; $want" "$WORK/stdout"
    check "train --data $file: config.json's data_header" \
        pytrue "json.load(open('run-$file/config.json'))['data_header'] == bool($2)"
}
csv_ok header.csv 1
csv_ok plain.csv 0
csv_ok quoted.csv 1
csv_ok crlf.csv 1
csv_ok crlf-plain.csv 0
csv_ok bom.csv 1
csv_ok bom-plain.csv 0
run train --data header.csv --test plain.csv --layers 4 --epochs 1 --threads 1 --quiet --out quiet
check "--quiet: only the result line, no data line" [ "$(lines "$WORK/stdout")" -eq 1 ]
run train --data header.csv --test plain.csv --layers 4 --epochs 1 --threads 1 --out with-test
check "--test: its own line (got: $(cat "$WORK/stdout"))" \
    grep -qxF "test plain.csv: 6 samples, 2 features; line 1 is a sample (it holds numbers), not a header" \
    "$WORK/stdout"
check "--test: config.json's test_header" \
    pytrue "json.load(open('with-test/config.json'))['test_header'] is False"
run eval --model with-test/model.safetensors --data header.csv --test quoted.csv
check "eval --test: says line 1 is a header (got: $(cat "$WORK/stdout"))" \
    grep -qxF "test quoted.csv: 2 features; line 1 is a header (no number in it), not a sample" \
    "$WORK/stdout"
check "eval: the result line follows" grep -q "^loss [0-9.]* accuracy [0-9.]* (6 samples)$" "$WORK/stdout"
run eval --model with-test/model.safetensors --data plain.csv --json
check "eval --json: one JSON object, no data line" [ "$(lines "$WORK/stdout")" -eq 1 ]

# data_refused WHAT MESSAGE ARGS...: nabla ARGS exits 1 with one line containing MESSAGE and
# writes no run directory.
data_refused() {
    local what=$1 message=$2
    shift 2
    rm -rf refused-run
    expect_exit 1 "$what" "$@"
    check "$what: one line with '$message' (got: $(head -c 400 "$WORK/stderr"))" \
        bash -c '[ "$(wc -l <"$1")" -eq 1 ] && grep -qF -- "$2" "$1"' _ "$WORK/stderr" "$message"
    check "$what: no run directory" absent refused-run
}
TRAIN=(train --layers 4 --epochs 1 --threads 1 --out refused-run)
{ echo "0.1,0.2x,1"; rows; } >mixed.csv
data_refused "one bad number on line 1" \
    "nabla: mixed.csv:1:5: field 2 '0.2x' is not a number, but other fields of its column are (a column is numbers, or words: categories) (line 1 was not taken for a header: field 1 '0.1' is a number, and a header has none)" \
    "${TRAIN[@]}" --data mixed.csv --test none
{ echo "0,1,label"; rows; } >numbered.csv
data_refused "a header of numbers and a name (pandas' column numbers)" \
    "nabla: numbered.csv:1:5: the target 'label' is not a number, but other targets are numbers (classes are all numbers or all words) (line 1 was not taken for a header" \
    "${TRAIN[@]}" --data numbered.csv --test none
{ echo "x,y,label"; rows; echo "0.7q,0.3,1"; } >later.csv
data_refused "a bad number on line 8" "nabla: later.csv:8:1: field 1 '0.7q' is not a number, but other fields of column 'x' are" \
    "${TRAIN[@]}" --data later.csv --test none
check "a bad number on line 8: nothing about headers" bash -c '! grep -q header "$1"' _ "$WORK/stderr"
data_refused "--test with one bad number on line 1" \
    "nabla: mixed.csv:1:5: field 2 '0.2x' is not a number (column 'y' holds numbers in the training data) (line 1 was not taken for a header" \
    "${TRAIN[@]}" --data header.csv --test mixed.csv
expect_exit 1 "eval --test with one bad number on line 1" eval --model with-test/model.safetensors \
    --data header.csv --test mixed.csv
check "eval: the same message" grep -qF "mixed.csv:1:5: field 2 '0.2x' is not a number" "$WORK/stderr"

# UTF-16 and UTF-32, from iconv: with a byte order mark (UTF-16, UTF-32) and without (LE, BE).
for enc in UTF-16 UTF-16LE UTF-16BE UTF-32; do
    iconv -f UTF-8 -t "$enc" header.csv >"$enc.csv"
done
data_refused "UTF-16 with a BOM" \
    "nabla: UTF-16.csv: UTF-16 text (it starts with a UTF-16 byte order mark); nabla reads CSV as UTF-8 (or ASCII): convert it with iconv -f UTF-16 -t UTF-8" \
    "${TRAIN[@]}" --data UTF-16.csv --test none
data_refused "UTF-16LE without a BOM" \
    "nabla: UTF-16LE.csv: UTF-16 text (little-endian, without a byte order mark); nabla reads CSV as UTF-8 (or ASCII): convert it with iconv -f UTF-16LE -t UTF-8" \
    "${TRAIN[@]}" --data UTF-16LE.csv --test none
data_refused "UTF-16BE without a BOM" \
    "nabla: UTF-16BE.csv: UTF-16 text (big-endian, without a byte order mark); nabla reads CSV as UTF-8 (or ASCII): convert it with iconv -f UTF-16BE -t UTF-8" \
    "${TRAIN[@]}" --data UTF-16BE.csv --test none
data_refused "UTF-32" "nabla: UTF-32.csv: UTF-32 text" "${TRAIN[@]}" --data UTF-32.csv --test none
data_refused "--test in UTF-16" "nabla: UTF-16LE.csv: UTF-16 text (little-endian" \
    "${TRAIN[@]}" --data header.csv --test UTF-16LE.csv
iconv -f UTF-8 -t UTF-16 header.csv | tail -c +3 >UTF-16-no-bom.csv   # what remains: LE
data_refused "UTF-16 with its BOM cut off" "UTF-16 text (little-endian, without a byte order mark)" \
    "${TRAIN[@]}" --data UTF-16-no-bom.csv --test none
expect_exit 1 "eval on UTF-16" eval --model with-test/model.safetensors --data UTF-16BE.csv
check "eval on UTF-16: says so" grep -qF "UTF-16BE.csv: UTF-16 text (big-endian" "$WORK/stderr"
# NUL bytes: at the start, in the header, in a data line, at the very end.
printf '\0x,y,label\n0.1,0.2,0\n' >nul-start.csv
printf 'x,y\0,label\n0.1,0.2,0\n' >nul-header.csv
printf 'x,y,label\n0.1,0.2,0\n0.3,0.\0004,1\n' >nul-row.csv
printf 'x,y,label\n0.1,0.2,0\n0.3,0.4,1\n\0' >nul-end.csv
for case in "start 1:1" "header 1:4" "row 3:7" "end 4:1"; do
    set -- $case
    data_refused "a NUL byte ($1)" \
        "nabla: nul-$1.csv:$2: a NUL byte: this looks like a binary file, not CSV text" \
        "${TRAIN[@]}" --data "nul-$1.csv" --test none
done
# Other formats where a CSV file was expected.
IDX=/usr/share/datasets/fashion-mnist
if [ -f "$IDX/t10k-labels-idx1-ubyte.gz" ]; then
    # gzip'd, it is inflated first, and then named for what it is
    data_refused "a gzip file" "t10k-labels-idx1-ubyte.gz: an IDX file (the MNIST format), not CSV text" \
        "${TRAIN[@]}" --data "$IDX/t10k-labels-idx1-ubyte.gz" --test none
    gunzip -c "$IDX/t10k-labels-idx1-ubyte.gz" >labels.idx
    data_refused "an IDX file" "labels.idx: an IDX file (the MNIST format), not CSV text" \
        "${TRAIN[@]}" --data labels.idx --test none
else
    fail "the Fashion-MNIST files are needed for the gzip and IDX cases (dataset-fashion-mnist)"
fi
data_refused "a safetensors file" \
    "base/model.safetensors: a safetensors file (a model or checkpoint), not CSV text" \
    "${TRAIN[@]}" --data base/model.safetensors --test none

# ---- 4. --resume when the newest checkpoint cannot be read ------------------------------------
# ck: 3 epochs, a checkpoint at each end: checkpoint.safetensors (epoch 3) and
# checkpoint.prev.safetensors (epoch 2). Resuming from either ends with ck's model, bit for bit.
CK=(train --data moons --samples 300 --layers 8 --epochs 3 --threads 1 --quiet)
run "${CK[@]}" --out ck
check "train ck" [ "$RC" -eq 0 ]
chmod 755 "$WORK"   # user nobody, below, goes through it
# variant NAME: a copy of ck without its results.
variant() { rm -rf "$1" && cp -r ck "$1" && rm "$1/model.safetensors" "$1/summary.json"; }
# falls_back NAME REASON [COMMAND PREFIX...]: --resume NAME says the newest checkpoint's path and
# REASON (the start of it), then that it resumes from checkpoint.prev, and ends with ck's model.
falls_back() {
    local name=$1 reason=$2 dir
    shift 2
    dir=$(cd "$name" && pwd -P)
    "$@" "$NABLA" train --resume "$name" --quiet >"$WORK/stdout" 2>"$WORK/stderr"
    RC=$?
    check "$name: --resume exits 0 (stderr: $(head -c 400 "$WORK/stderr"))" [ "$RC" -eq 0 ]
    local first
    first=$(head -n 1 "$WORK/stderr")
    check "$name: says why $dir/checkpoint.safetensors was passed over (got: $first)" \
        [ "${first#"nabla: $dir/checkpoint.safetensors: $reason"}" != "$first" ]
    check "$name: says it resumes from the older one (got: $(sed -n 2p "$WORK/stderr"))" \
        grep -qxF "nabla: resuming from the older checkpoint $dir/checkpoint.prev.safetensors instead" \
        <(sed -n 2p "$WORK/stderr")
    check "$name: nothing else on stderr" [ "$(lines "$WORK/stderr")" -eq 2 ]
    check "$name: ends with the uninterrupted run's model" cmp -s "$name/model.safetensors" ck/model.safetensors
}
variant empty && : >empty/checkpoint.safetensors
falls_back empty "too short for a safetensors file (0 bytes, at least 8 are needed)"
variant cut && truncate -s 1000 cut/checkpoint.safetensors
falls_back cut "the header length"
variant garbage && head -c "$(stat -c %s ck/checkpoint.safetensors)" /dev/urandom \
    >garbage/checkpoint.safetensors
falls_back garbage ""
variant missing && rm missing/checkpoint.safetensors
falls_back missing "missing"
variant zeros && head -c "$(stat -c %s ck/checkpoint.safetensors)" /dev/zero >zeros/checkpoint.safetensors
falls_back zeros ""
# Unreadable: as root every file is readable, so user nobody resumes the run.
variant unreadable && chmod -R a+rwX unreadable && chmod 000 unreadable/checkpoint.safetensors
falls_back unreadable "Permission denied" setpriv --reuid=nobody --regid=nogroup --clear-groups
check "unreadable: the resumed run was nobody's" [ "$(stat -c %U unreadable/model.safetensors)" = nobody ]
# A damaged checkpoint.next (a save's first half) falls back to checkpoint.safetensors.
variant next && echo "half a save" >next/checkpoint.next.safetensors
run train --resume next --quiet
check "a damaged checkpoint.next: exit 0" [ "$RC" -eq 0 ]
check "a damaged checkpoint.next: named, and checkpoint.safetensors used (got: $(cat "$WORK/stderr"))" \
    grep -q "checkpoint.next.safetensors: .*resuming from the older checkpoint .*/next/checkpoint.safetensors instead" \
    <(tr '\n' ' ' <"$WORK/stderr")
check "a damaged checkpoint.next: ck's model" cmp -s next/model.safetensors ck/model.safetensors

# Something other than a regular file at a checkpoint's name: the resumed run would rename or
# remove it (a symbolic link, even one to nothing), or could not write its checkpoints there, so
# it does not start; nothing is touched.
blocked() {   # NAME WHAT
    local dir
    dir=$(cd "$1" && pwd -P)
    before=$(ls -l "$1" | md5sum)
    expect_exit 1 "--resume $1" train --resume "$1" --quiet
    check "$1: one line naming it and the intact older one (got: $(cat "$WORK/stderr"))" \
        one_line_error "nabla: cannot resume: $dir/checkpoint.safetensors: is $2, not a checkpoint file; nabla keeps its checkpoints as regular files, renamed and removed as the run goes, so it leaves this alone: move it away ($dir/checkpoint.prev.safetensors is intact)"
    check "$1: nothing touched" [ "$(ls -l "$1" | md5sum)" = "$before" ]
}
variant dir-in-place && rm dir-in-place/checkpoint.safetensors && mkdir dir-in-place/checkpoint.safetensors
blocked dir-in-place "a directory"
variant fifo-in-place && rm fifo-in-place/checkpoint.safetensors && mkfifo fifo-in-place/checkpoint.safetensors
blocked fifo-in-place "a FIFO"
variant dangling && rm dangling/checkpoint.safetensors && ln -s nowhere dangling/checkpoint.safetensors
blocked dangling "a symbolic link"
variant linked && mv linked/checkpoint.safetensors linked-elsewhere.safetensors &&
    ln -s ../linked-elsewhere.safetensors linked/checkpoint.safetensors
blocked linked "a symbolic link"
check "linked: the link's target is untouched" cmp -s linked-elsewhere.safetensors ck/checkpoint.safetensors
rm -r dir-in-place/checkpoint.safetensors
falls_back dir-in-place "missing"

# Both unreadable: exit 1, naming both.
both() {   # NAME REASON-OF-NEWEST REASON-OF-PREV
    local dir
    dir=$(cd "$1" && pwd -P)
    expect_exit 1 "--resume $1" train --resume "$1" --quiet
    check "$1: one line naming both (got: $(cat "$WORK/stderr"))" \
        one_line_error "nabla: cannot resume: $dir has no usable checkpoint: $dir/checkpoint.safetensors: $2; $dir/checkpoint.prev.safetensors: $3"
    check "$1: no model" absent "$1/model.safetensors"
}
variant both-empty && : >both-empty/checkpoint.safetensors && : >both-empty/checkpoint.prev.safetensors
both both-empty "too short for a safetensors file (0 bytes, at least 8 are needed)" \
    "too short for a safetensors file (0 bytes, at least 8 are needed)"
variant both-missing && rm both-missing/checkpoint.safetensors && echo x >both-missing/checkpoint.prev.safetensors
both both-missing "missing" "too short for a safetensors file (2 bytes, at least 8 are needed)"
variant both-zeros && head -c 5000 /dev/zero >both-zeros/checkpoint.safetensors &&
    head -c 5000 /dev/zero >both-zeros/checkpoint.prev.safetensors
both both-zeros "the header length is 0" "the header length is 0"

finish

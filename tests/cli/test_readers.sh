#!/bin/bash
# Readers check what they read for sense, not only for format:
#   1. nabla report on run directories damaged in every file (metrics.jsonl, steps.jsonl,
#      trace.jsonl, summary.json, config.json), each kind of nonsense: exit 1, one line naming
#      the file and line, no report written; runs in progress and legitimate odd values pass.
#   2. nabla eval: what it reads besides the run (the model file, the data set).
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
config_refused epochs 0 "is 0, expected a whole number from 1"
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
copy lr-zero && jsonl_set lr-zero/metrics.jsonl 4 lr 0
accepted lr-zero "a learning rate decayed to 0 (a float underflows)"
copy nulls && jsonl_set nulls/metrics.jsonl 2 train_loss null && jsonl_set nulls/metrics.jsonl 2 \
    train_accuracy null && jsonl_set nulls/trace.jsonl 2 unit_p50 null
accepted nulls "null losses and percentiles (a diverging step)"
copy inf-loss && json_set inf-loss/summary.json test_loss null
accepted inf-loss "a summary's test loss that overflowed (null), with test samples"
copy edges && jsonl_set edges/metrics.jsonl 1 train_accuracy 0 && jsonl_set edges/metrics.jsonl 2 \
    test_accuracy 1 && jsonl_set edges/metrics.jsonl 3 train_loss 0
accepted edges "accuracies of exactly 0 and 1, a loss of 0"
# A run that starts again in a directory, or resumes, has no summary.json until its end.
copy again && echo '{"epochs": 99}' >again/summary.json
run train --resume again --epochs 6 --quiet
check "resume with more epochs: exit 0 (stderr: $(head -c 300 "$WORK/stderr"))" [ "$RC" -eq 0 ]
check "the resumed run's summary says 6 epochs" pytrue "json.load(open('again/summary.json'))['epochs'] == 6"
accepted again "a resumed run, extended"

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
    "nabla: mixed.csv:1: field 2 '0.2x' is not a number (line 1 was not taken for a header: field 1 '0.1' is a number, and a header has none)" \
    "${TRAIN[@]}" --data mixed.csv --test none
{ echo "0,1,label"; rows; } >numbered.csv
data_refused "a header of numbers and a name (pandas' column numbers)" \
    "nabla: numbered.csv:1: label 'label' is not an integer (line 1 was not taken for a header" \
    "${TRAIN[@]}" --data numbered.csv --test none
{ echo "x,y,label"; rows; echo "0.7q,0.3,1"; } >later.csv
data_refused "a bad number on line 8" "nabla: later.csv:8: field 1 '0.7q' is not a number" \
    "${TRAIN[@]}" --data later.csv --test none
check "a bad number on line 8: nothing about headers" bash -c '! grep -q header "$1"' _ "$WORK/stderr"
data_refused "--test with one bad number on line 1" \
    "nabla: mixed.csv:1: field 2 '0.2x' is not a number (line 1 was not taken for a header" \
    "${TRAIN[@]}" --data header.csv --test mixed.csv
expect_exit 1 "eval --test with one bad number on line 1" eval --model with-test/model.safetensors \
    --data header.csv --test mixed.csv
check "eval: the same message" grep -qF "mixed.csv:1: field 2 '0.2x' is not a number (line 1 was not taken for a header" "$WORK/stderr"

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
    data_refused "a gzip file" "gzip-compressed data, not CSV text" \
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

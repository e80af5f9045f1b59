#!/bin/bash
# Runtime failures: bad or missing files, shape mismatches. Each exits 1 with one line
# "nabla: <message>" on stderr and creates nothing: no --out directory, no --save-weights file.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# ---- inputs ----
printf 'x1,x2,label\n0,0,0\n1,1,1\n0,1,0\n1,0,1\n' >good.csv
printf 'x1,x2,label\n0,0,0\n1,1,1\n5,6\n' >ragged.csv
printf '0,0,0\n1,1,cat\n' >badlabel.csv
printf '0,0,0\n1,1,1.5\n' >fraclabel.csv
printf '0,0,0\n1,nan,1\n' >nan.csv
printf '0,0,0\n1,abc,1\n' >badnumber.csv
printf '' >empty.csv
printf '0,0,0,0\n1,1,1,1\n' >wide.csv
printf '0,0,0\n1,1,7\n' >biglabel.csv

# Tiny IDX sets: a good one, one with a wrong magic number, one cut short, one empty.
"$PY" - <<'EOF'
import os, struct
def idx(d, magic=0x803, cut=0):
    os.makedirs(d)
    for split, n in (("train", 12), ("t10k", 6)):
        img = struct.pack(">IIII", magic, n, 2, 2) + bytes(range(n * 4))
        lab = struct.pack(">II", 0x801, n) + bytes(i % 3 for i in range(n))
        open(f"{d}/{split}-images-idx3-ubyte", "wb").write(img[:len(img) - cut])
        open(f"{d}/{split}-labels-idx1-ubyte", "wb").write(lab)
idx("idx_good")
idx("idx_magic", magic=0x903)
idx("idx_cut", cut=3)
os.makedirs("idx_empty")
EOF

# A model to load: trained on moons with layers 8 (2 -> 8 -> 2).
run train --data moons --samples 100 --layers 8 --epochs 1 --out model8 --quiet
check "a small model for the tests below trains (stderr: $(cat "$WORK/stderr"))" [ "$RC" -eq 0 ]
printf 'not a safetensors file' >garbage.safetensors
head -c 40 model8/model.safetensors >cut.safetensors
: >zero.safetensors

# runtime_error MESSAGE_PART ARGS...: exit 1, one line "nabla: ...MESSAGE_PART...", and nothing
# new in the working directory: no out directory, no saved weights.
runtime_error() {
    local part=$1
    shift
    local before after
    before=$(ls -A "$WORK")
    # Defaults first, so that the test's own --out or --save-weights wins.
    if [ "$1" = train ]; then
        set -- train --out "$WORK/out" --save-weights "$WORK/saved.safetensors" --epochs 1 "${@:2}"
    fi
    expect_exit 1 "nabla $*" "$@"
    check "nabla $*: one line 'nabla: ...' (got: $(head -c 300 "$WORK/stderr"))" \
        one_line_error "nabla: "
    check "nabla $*: message mentions '$part' (got: $(head -c 300 "$WORK/stderr"))" \
        grep -qF -- "$part" "$WORK/stderr"
    after=$(ls -A "$WORK")
    check "nabla $*: creates nothing" [ "$before" = "$after" ]
}

# Missing files.
runtime_error "no-such.csv" train --data no-such.csv
runtime_error "no-such-dir" train --data no-such-dir/
runtime_error "no-such-test.csv" train --data good.csv --test no-such-test.csv
runtime_error "no-such.safetensors" train --data moons --layers 8 --init-weights no-such.safetensors

# Malformed CSV, with file and line where there is one.
runtime_error "ragged.csv:4" train --data ragged.csv
runtime_error "badlabel.csv:2" train --data badlabel.csv
runtime_error "fraclabel.csv:2" train --data fraclabel.csv
runtime_error "nan.csv" train --data nan.csv
runtime_error "badnumber.csv:2" train --data badnumber.csv
runtime_error "empty.csv" train --data empty.csv
runtime_error "wide.csv" train --data good.csv --test wide.csv
runtime_error "biglabel.csv" train --data good.csv --test biglabel.csv
runtime_error "nan.csv" train --data good.csv --test nan.csv

# Broken IDX directories.
runtime_error "magic" train --data idx_magic
runtime_error "idx_cut/train-images-idx3-ubyte" train --data idx_cut
runtime_error "idx_empty" train --data idx_empty

# --init-weights: malformed files and the wrong shapes.
runtime_error "garbage.safetensors" train --data moons --layers 8 --init-weights garbage.safetensors
runtime_error "cut.safetensors" train --data moons --layers 8 --init-weights cut.safetensors
runtime_error "zero.safetensors" train --data moons --layers 8 --init-weights zero.safetensors
runtime_error "0.weight" train --data moons --layers 16 --init-weights model8/model.safetensors
runtime_error "model8/model.safetensors" train --data moons --layers 8 --batchnorm \
    --init-weights model8/model.safetensors
# The right shapes load and train.
run train --data moons --samples 100 --layers 8 --epochs 1 --out init-ok --quiet \
    --init-weights model8/model.safetensors
check "--init-weights with the right shapes works (stderr: $(cat "$WORK/stderr"))" [ "$RC" -eq 0 ]

# An --out path that is a file: nothing is created either.
: >a-file
runtime_error "a-file" train --data moons --layers 8 --out a-file/run
rm -f a-file
# An --out whose parents can be made but not the last part (a name over 255 bytes): the
# parents made on the way are taken back.
runtime_error "File name too long" train --data moons --layers 8 \
    --out "new1/new2/$(printf 'a%.0s' {1..300})/run"
# --save-weights into a missing directory is found before training.
runtime_error "no-dir" train --data moons --layers 8 --save-weights no-dir/w.safetensors

# --save-weights onto a directory could only fail at the very end, after the run directory
# was written: it is refused up front.
mkdir a-dir
runtime_error "a-dir: is a directory" train --data moons --layers 8 --save-weights a-dir
rmdir a-dir

# A graph that cannot fit in memory (2 -> 10^6 -> 10^6 -> 2 has 10^12 weights): refused with
# its size before anything is allocated.
runtime_error "out of memory: training needs" train --data moons \
    --layers 1000000,1000000

# FIFOs, devices and directories where a file is expected: refused at once. (A FIFO without a
# writer blocks a plain open forever; the wrapper turns a hang into a failure.)
printf '#!/bin/sh\nexec timeout 30 "%s" "$@"\n' "$NABLA" >nabla-timeout
chmod +x nabla-timeout
mkfifo fifo.safetensors
mkdir idx_fifo && mkfifo idx_fifo/train-images-idx3-ubyte && \
    cp idx_good/train-labels-idx1-ubyte idx_fifo/
REAL_NABLA=$NABLA
NABLA=$WORK/nabla-timeout
runtime_error "fifo.safetensors: not a regular file" eval --model fifo.safetensors --data moons
runtime_error "fifo.safetensors: not a regular file" train --data moons --layers 8 \
    --init-weights fifo.safetensors
# (A CSV file may be a FIFO or a pipe, read to its end: test_csv_data.sh. A device is not.)
runtime_error "/dev/zero: a character device, not a file or a pipe" train --data good.csv \
    --test /dev/zero
runtime_error "/dev/zero: a character device, not a file or a pipe" eval \
    --model model8/model.safetensors --test /dev/zero
runtime_error "idx_fifo/train-images-idx3-ubyte: not a regular file" train --data idx_fifo
runtime_error "/dev/zero: not a regular file" eval --model /dev/zero --data moons
runtime_error "idx_good: is a directory" eval --model model8/model.safetensors --data good.csv \
    --test idx_good
NABLA=$REAL_NABLA

# ---- eval ----
runtime_error "no-such.safetensors" eval --model no-such.safetensors --data moons
runtime_error "garbage.safetensors" eval --model garbage.safetensors --data moons
runtime_error "cut.safetensors" eval --model cut.safetensors --data moons
runtime_error "zero.safetensors" eval --model zero.safetensors --data moons
runtime_error "no-such.csv" eval --model model8/model.safetensors --data no-such.csv
runtime_error "wide.csv" eval --model model8/model.safetensors --data wide.csv
runtime_error "biglabel.csv" eval --model model8/model.safetensors --data biglabel.csv
runtime_error "nan.csv" eval --model model8/model.safetensors --data nan.csv
runtime_error "ragged.csv:4" eval --model model8/model.safetensors --data ragged.csv
runtime_error "magic" eval --model model8/model.safetensors --data idx_magic
runtime_error "idx_empty" eval --model model8/model.safetensors --data idx_empty
# The moons model takes 2 inputs, the IDX set has 4 pixels.
runtime_error "features" eval --model model8/model.safetensors --data idx_good

# A batch larger than the test set is the whole test set: no graph for 2^31 - 1 rows.
run eval --model model8/model.safetensors --data moons --samples 100 --json
want=$(cat "$WORK/stdout")
run eval --model model8/model.safetensors --data moons --samples 100 --json \
    --batch-size 2147483647
check "eval --batch-size 2147483647 works (stderr: $(head -c 300 "$WORK/stderr"))" [ "$RC" -eq 0 ]
check "eval --batch-size 2147483647 gives the result of the default batch size" \
    [ "$(cat "$WORK/stdout")" = "$want" ]

finish

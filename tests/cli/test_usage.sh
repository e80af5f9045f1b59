#!/bin/bash
# Help texts, and every kind of bad usage: exit 2, one line on stderr naming the command, and no
# file or directory created.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# ---- help and version: exit 0, text on stdout ----
for args in "--help" "-h" "help" "help train" "help eval" "train --help" "train -h" \
            "eval --help" "--version"; do
    # shellcheck disable=SC2086
    expect_exit 0 "nabla $args" $args
    check "nabla $args prints on stdout" [ -s "$WORK/stdout" ]
    check "nabla $args prints nothing on stderr" [ ! -s "$WORK/stderr" ]
done
run --version
check "--version names the version" grep -Eq '^nabla [0-9]+\.[0-9]+\.[0-9]+$' "$WORK/stdout"

# Every train option is listed with its default.
run train --help
for opt in data test layers activation batchnorm optimizer lr beta beta2 eps weight-decay \
           bias-correction batch-size epochs max-steps no-shuffle lr-decay decay-rate \
           decay-interval warmup-epochs seed threads dev-fraction normalize samples noise \
           leaky-slope init-weights save-weights out quiet target header delimiter missing \
           allow-many-classes test-fraction; do
    check "train --help lists --$opt" grep -q -- "--$opt\b" "$WORK/stdout"
done
for default in "[fashion-mnist]" "[256,128]" "[relu]" "[adam]" "[0.001]" "[0.9]" "[0.999]" \
               "[1e-8]" "[64]" "[10]" "[1000]" "[0.2]" "[0.01]" "[none]" "[runs/YYYYmmdd-HHMMSS]"; do
    check "train --help shows the default $default" grep -qF -- "$default" "$WORK/stdout"
done
run eval --help
for opt in model data test json batch-size samples noise seed threads split dev-fraction target \
           header delimiter missing allow-many-classes test-fraction; do
    check "eval --help lists --$opt" grep -q -- "--$opt\b" "$WORK/stdout"
done
# The full manual covers both commands.
run --help
check "--help covers train" grep -q -- "--weight-decay" "$WORK/stdout"
check "--help covers eval" grep -q -- "--json" "$WORK/stdout"

# ---- no arguments, unknown commands ----
expect_exit 2 "no arguments" 
check "no arguments: usage on stderr" grep -q "usage: nabla" "$WORK/stderr"
check "no arguments: nothing on stdout" [ ! -s "$WORK/stdout" ]
expect_exit 2 "unknown command" frobnicate
check "unknown command: one line" one_line_error "nabla: unknown command 'frobnicate'"
expect_exit 2 "help for an unknown command" help frobnicate

# ---- train: bad values ----
# usage_error EXPECTED_MESSAGE_PREFIX ARGS...: exit 2, one line, nothing created in the current
# (empty) directory, not even the --out directory.
usage_error() {
    local prefix=$1
    shift
    rm -rf "$WORK/u" && mkdir "$WORK/u" && cd "$WORK/u" || return
    if [ "$1" = train ]; then set -- "$@" --out "$WORK/u/out"; fi
    expect_exit 2 "nabla $*" "$@"
    check "nabla $*: one line starting '$prefix' (got: $(head -c 200 "$WORK/stderr"))" \
        one_line_error "$prefix"
    check "nabla $*: creates nothing" [ -z "$(ls -A "$WORK/u")" ]
    cd "$WORK" || exit 1
}

usage_error "nabla train: --lr must be > 0, got -1" train --data moons --lr -1
usage_error "nabla train: --lr must be > 0, got 0" train --data moons --lr 0
usage_error "nabla train: --lr expects a number, got 'abc'" train --data moons --lr abc
usage_error "nabla train: --lr expects a number" train --data moons --lr 1x
usage_error "nabla train: --lr expects a number" train --data moons --lr ""
usage_error "nabla train: --lr expects a number" train --data moons --lr " 1"
usage_error "nabla train: --lr must be finite" train --data moons --lr nan
usage_error "nabla train: --lr must be finite" train --data moons --lr inf
usage_error "nabla train: --lr must be finite" train --data moons --lr 1e999
usage_error "nabla train: --beta must be in [0, 1), got 1" train --data moons --beta 1
usage_error "nabla train: --beta must be in [0, 1)" train --data moons --beta -0.1
usage_error "nabla train: --beta2 must be in [0, 1)" train --data moons --beta2 1.5
usage_error "nabla train: --eps must be > 0" train --data moons --eps 0
usage_error "nabla train: --eps must be > 0" train --data moons --eps -1e-8
usage_error "nabla train: --weight-decay must be >= 0" train --data moons --weight-decay -0.1
usage_error "nabla train: --layers" train --data moons --layers 0
usage_error "nabla train: --layers" train --data moons --layers 16,-3
usage_error "nabla train: --layers" train --data moons --layers abc
usage_error "nabla train: --layers" train --data moons --layers 16,,8
usage_error "nabla train: --batch-size must be > 0" train --data moons --batch-size 0
usage_error "nabla train: --batch-size must be > 0" train --data moons --batch-size -5
usage_error "nabla train: --batch-size expects an integer" train --data moons --batch-size fullx
usage_error "nabla train: --batch-size expects an integer" train --data moons --batch-size 1.5
usage_error "nabla train: --epochs must be >= 0" train --data moons --epochs -1   # 0 is allowed
usage_error "nabla train: --epochs must be >= 0" train --data moons --epochs -100
usage_error "nabla train: --epochs expects an integer" train --data moons --epochs 2.5
usage_error "nabla train: --epochs is out of range" train --data moons --epochs 99999999999
usage_error "nabla train: --samples must be > 0" train --data moons --samples 0
usage_error "nabla train: --samples must be at most 10000000, got 2147483647" train --data moons \
    --samples 2147483647
usage_error "nabla eval: --samples must be at most 10000000, got 10000001" eval \
    --model m.safetensors --data moons --samples 10000001
# Values are checked as the 32-bit floats the library gets, not as the doubles typed: these
# passed as doubles and failed only once the run directory was written.
usage_error "nabla train: --beta2 must be in [0, 1), got 0.999999999 (1 as a 32-bit float)" \
    train --data moons --beta2 0.999999999
usage_error "nabla train: --eps must be > 0, got 1e-50 (0 as a 32-bit float)" train \
    --data moons --eps 1e-50
usage_error "nabla train: --weight-decay is too large for a 32-bit float, got '1e39'" train \
    --data moons --weight-decay 1e39
usage_error "nabla eval: --noise is too large for a 32-bit float, got '1e300'" eval \
    --model m.safetensors --noise 1e300
# Empty file names would pass every early check and fail only when the results are written.
usage_error "nabla train: --save-weights needs a file name, got ''" train --data moons \
    --save-weights ""
usage_error "nabla train: --out needs a file name, got ''" train --data moons --out ""
usage_error "nabla train: --data needs a file name, got ''" train --data ""
usage_error "nabla train: --init-weights needs a file name, got ''" train --data moons \
    --init-weights ""
usage_error "nabla eval: --model needs a file name, got ''" eval --model "" --data moons
usage_error "nabla eval: --test needs a file name, got ''" eval --model m.safetensors --test ""
usage_error "nabla train: --out is longer than 4095 bytes" train --data moons \
    --out "$(printf 'd/%.0s' {1..2100})run"
# Line breaks and escape sequences in arguments are quoted escaped: still one line.
usage_error "nabla train: unknown --activation 're\\nlu\\x1b[2J'" train --data moons \
    --activation $'re\nlu\e[2J'
usage_error "nabla train: --lr expects a number, got '1\\n2'" train --data moons --lr $'1\n2'
usage_error "nabla: unknown command 'tr\\nain'" $'tr\nain'
usage_error "nabla train: --max-steps must be > 0" train --data moons --max-steps 0
usage_error "nabla train: --threads must be > 0" train --data moons --threads 0
usage_error "nabla train: --decay-interval must be > 0" train --data moons --decay-interval 0
usage_error "nabla train: --warmup-epochs must be >= 0" train --data moons --warmup-epochs -1
usage_error "nabla train: --decay-rate must be >= 0" train --data moons --decay-rate -1
usage_error "nabla train: --dev-fraction must be in [0, 1)" train --data moons --dev-fraction 1
usage_error "nabla train: --dev-fraction must be in [0, 1)" train --data moons --dev-fraction -0.1
usage_error "nabla train: --noise must be >= 0" train --data moons --noise -1
usage_error "nabla train: --leaky-slope expects a number" train --data moons --leaky-slope x
usage_error "nabla train: --seed expects a non-negative integer" train --data moons --seed -1
usage_error "nabla train: --seed expects a non-negative integer" train --data moons --seed abc
usage_error "nabla train: unknown --activation 'swish'" train --data moons --activation swish
usage_error "nabla train: unknown --optimizer 'lbfgs'" train --data moons --optimizer lbfgs
usage_error "nabla train: unknown --lr-decay 'linear'" train --data moons --lr-decay linear
usage_error "nabla train: unknown --normalize 'minmax'" train --data moons --normalize minmax
usage_error "nabla train: unknown option '--bogus'" train --data moons --bogus
usage_error "nabla train: unknown option '-x'" train --data moons -x
usage_error "nabla train: unexpected argument 'extra'" train --data moons extra
# Schedules that make no sense, and batch norm on single samples.
usage_error "nabla train: --lr-decay exp: exp decay: rate must be in (0, 1]" \
    train --data moons --lr-decay exp --decay-rate 1.5
usage_error "nabla train: --lr-decay step: step decay: rate must be in (0, 1]" \
    train --data moons --lr-decay step --decay-rate 0
usage_error "nabla train: --batchnorm needs batches of at least 2 samples" \
    train --data moons --batchnorm --batch-size 1
# A value-taking option at the very end has no value ("--out" comes first here on purpose).
rm -rf "$WORK/u" && mkdir "$WORK/u" && cd "$WORK/u" || exit 1
expect_exit 2 "--lr without a value" train --data moons --out "$WORK/u/out" --lr
check "--lr without a value: one line" one_line_error "nabla train: option '--lr' needs a value"
check "--lr without a value: creates nothing" [ -z "$(ls -A "$WORK/u")" ]
cd "$WORK" || exit 1

# Option combinations that depend on the kind of data.
mkdir -p "$WORK/idx"   # a directory counts as an IDX set; usage is refused before it is read
printf '1,2,0\n3,4,1\n' >"$WORK/tiny.csv"
usage_error "nabla train: --test needs a CSV training set" train --data moons --test "$WORK/tiny.csv"
usage_error "nabla train: --test needs a CSV training set" train --data "$WORK/idx" \
    --test "$WORK/tiny.csv"
usage_error "nabla train: --normalize standard works on CSV and synthetic data" \
    train --data "$WORK/idx" --normalize standard

# ---- eval: bad usage ----
usage_error "nabla eval: --model F.safetensors is required" eval --data moons
usage_error "nabla eval: --batch-size must be > 0" eval --model m.safetensors --batch-size 0
usage_error "nabla eval: --samples must be > 0" eval --model m.safetensors --samples -3
usage_error "nabla eval: unknown option '--bogus'" eval --model m.safetensors --bogus
usage_error "nabla eval: --test needs a CSV --data" eval --model m.safetensors --data moons \
    --test "$WORK/tiny.csv"
usage_error "nabla eval: --split must be test, train or dev, got 'val'" eval \
    --model m.safetensors --split val
usage_error "nabla eval: --split dev needs the --dev-fraction the model was trained with" eval \
    --model m.safetensors --split dev
usage_error "nabla eval: --dev-fraction must be in [0, 1), got 1" eval --model m.safetensors \
    --split dev --dev-fraction 1
usage_error "nabla eval: --test names a test set, but --split train evaluates the training data" \
    eval --model m.safetensors --data "$WORK/tiny.csv" --test "$WORK/tiny.csv" --split train

finish

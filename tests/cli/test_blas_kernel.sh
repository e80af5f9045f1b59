#!/bin/bash
# The OpenBLAS kernel check: when OpenBLAS falls back to generic SSE kernels on a CPU with AVX2
# or AVX-512, nabla restarts itself with OPENBLAS_CORETYPE naming the right ones; otherwise it
# keeps OpenBLAS's choice, and a kernel the user names in OPENBLAS_CORETYPE is used as it is.
# config.json records the kernel a run used.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

kernel_of() { "$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["blas_kernel"])' "$1"; }
short_run() { run train --data moons --samples 200 --layers 8 --epochs 1 --quiet --out "$1"; }

# OpenBLAS's own choice, asked from the same library without nabla.
own=$(env -u OPENBLAS_CORETYPE "$PY" -c '
import ctypes
lib = ctypes.CDLL("libopenblas.so.0")
lib.openblas_get_corename.restype = ctypes.c_char_p
print(lib.openblas_get_corename().decode())')
check "OpenBLAS tells its kernel" [ -n "$own" ]
env -u OPENBLAS_CORETYPE "$NABLA" train --data moons --samples 200 --layers 8 --epochs 1 \
    --quiet --out auto >/dev/null 2>&1
check "a run without OPENBLAS_CORETYPE succeeds" [ -s auto/config.json ]
auto=$(kernel_of auto/config.json)

flags=$(grep -m1 '^flags' /proc/cpuinfo)
has() { [[ " $flags " == *" $1 "* ]]; }
case $own in
    Prescott|Core2|Penryn|Dunnington|Nehalem|Atom)
        if has avx512f && has avx512bw && has avx512dq && has avx512vl; then want=SkylakeX
        elif has avx2 && has fma; then want=Haswell
        elif has avx; then want=Sandybridge
        else want=$own; fi ;;
    *) want=$own ;;
esac
check "the kernel is $want (OpenBLAS alone picks $own, nabla ran $auto)" [ "$auto" = "$want" ]

OPENBLAS_CORETYPE=Haswell short_run forced
check "a kernel the user names is used" [ "$(kernel_of forced/config.json)" = Haswell ]
finish

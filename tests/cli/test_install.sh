#!/bin/bash
# make install into a temporary prefix, then build a program against it twice: with
# pkg-config and with CMake's find_package. Both programs must run.
set -u
nabla=$1
build=$(cd "$(dirname "$nabla")" && pwd)
root=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
check() { if "$@" >"$tmp/out" 2>&1; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $*"; cat "$tmp/out"; fi; }

check cmake --install "$build" --prefix "$tmp/prefix"
check test -x "$tmp/prefix/bin/nabla"
check test -f "$tmp/prefix/include/nabla.h"
libdir=$(cd "$tmp/prefix" && ls -d lib* | head -1)
export PKG_CONFIG_PATH="$tmp/prefix/$libdir/pkgconfig"
export LD_LIBRARY_PATH="$tmp/prefix/$libdir"
check pkg-config --exists nabla
check cc -std=c11 -o "$tmp/moons" "$root/examples/train_moons.c" $(pkg-config --cflags --libs nabla)
check "$tmp/moons"
check cc -std=c11 -o "$tmp/moons_static" "$root/examples/train_moons.c" \
    $(pkg-config --cflags nabla) "$tmp/prefix/$libdir/libnabla.a" $(pkg-config --libs --static nabla | sed 's/-lnabla//')
check "$tmp/moons_static"
check cmake -S "$root/tests/install" -B "$tmp/consumer" -DCMAKE_PREFIX_PATH="$tmp/prefix"
check cmake --build "$tmp/consumer"
check "$tmp/consumer/consumer"
check "$tmp/prefix/bin/nabla" --version
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]

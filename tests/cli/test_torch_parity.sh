#!/bin/bash
# Step-for-step parity of `nabla train` with PyTorch on every optimizer, with and without
# weight decay and batch norm (see ../torch_parity.py). Gets the nabla binary as $1 (CTest runs
# it from tests/cli/) and exits with the script's status: 0 passed, 1 a case failed, 2 bad
# usage, 77 numpy or torch missing.
set -u
if [ $# -ne 1 ]; then
    echo "usage: bash test_torch_parity.sh /path/to/nabla" >&2
    exit 2
fi
# The Debian interpreter, which has python3-torch; the python3 first on PATH may not.
/usr/bin/python3 "$(dirname "$0")/../torch_parity.py" --nabla "$1"
exit $?

#!/bin/sh
# valgrind (memcheck) on `uvmctl run -- true` against a real VM: no leaks, no errors.
# Usage: valgrind-run.sh UVMCTL BOOTFILES
set -u
uvmctl=$1
boot=$2
if ! command -v valgrind >/dev/null; then
    echo "SKIP: valgrind is not installed (scripts/setup.sh installs it)"
    exit 77
fi
export UVM_RUNTIME_DIR="/tmp/uvm-valgrind-$$"
log="/tmp/uvm-valgrind-$$.log"
valgrind --leak-check=full --show-leak-kinds=all --errors-for-leak-kinds=all \
    --error-exitcode=99 --trace-children=no --log-file="$log" \
    "$uvmctl" run --boot-files "$boot" -- true
rc=$?
cat "$log"
rm -rf "$log" "$UVM_RUNTIME_DIR"
if [ "$rc" -ne 0 ]; then
    echo "FAIL: uvmctl under valgrind exited $rc"
    exit 1
fi
echo "OK: no leaks, no errors"

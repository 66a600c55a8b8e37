#!/bin/sh
# valgrind (memcheck) on a command that drives real VMs: no leaks, no errors.
# Usage: valgrind-run.sh COMMAND [ARG...]   e.g. valgrind-run.sh uvmctl run --boot-files DIR -- true
set -u
if ! command -v valgrind >/dev/null; then
    echo "SKIP: valgrind is not installed (scripts/setup.sh installs it)"
    exit 77
fi
export UVM_RUNTIME_DIR="/tmp/uvm-valgrind-$$"
log="/tmp/uvm-valgrind-$$.log"
valgrind --leak-check=full --show-leak-kinds=all --errors-for-leak-kinds=all \
    --error-exitcode=99 --trace-children=no --log-file="$log" "$@"
rc=$?
cat "$log"
rm -rf "$log" "$UVM_RUNTIME_DIR"
if [ "$rc" -eq 77 ]; then
    exit 77
fi
if [ "$rc" -ne 0 ]; then
    echo "FAIL: $1 under valgrind exited $rc"
    exit 1
fi
echo "OK: no leaks, no errors"

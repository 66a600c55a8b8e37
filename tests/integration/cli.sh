#!/bin/sh
# uvmctl as users meet it: exit codes, stdio, dry-run output. Usage: cli.sh UVMCTL BOOTFILES
set -u
uvmctl=$1
export UVM_BOOT_FILES_PATH=$2
export UVM_RUNTIME_DIR="/tmp/uvm-cli-$$"
fails=0
check() { # name, expected, actual
    if [ "$2" = "$3" ]; then echo "ok   $1"; else echo "FAIL $1: expected [$2], got [$3]"; fails=$((fails + 1)); fi
}

out=$("$uvmctl" run --memory 256 -- sh -c 'echo out; echo err >&2; exit 3' 2>/tmp/uvm-cli-err-$$)
check "exit status passes through" 3 $?
check "stdout streamed" out "$out"
check "stderr streamed" err "$(grep -v '^uvmctl' /tmp/uvm-cli-err-$$)"

out=$(printf 'hello\nworld\n' | "$uvmctl" run -i --memory 256 -- tr a-z A-Z)
check "stdin with -i" "HELLO
WORLD" "$out"

"$uvmctl" run --memory 256 -- /no/such/command >/dev/null 2>&1
check "missing command exits 127" 127 $?

"$uvmctl" run --memory 256 -- sh -c 'kill -9 $$' >/dev/null 2>&1
check "signal death exits 128+9" 137 $?

"$uvmctl" run --memory 256 --boot-files /nonexistent -- true 2>/tmp/uvm-cli-err-$$
check "missing boot files exits 125" 125 $?
check "and says why" "uvmctl: kernel '/nonexistent/kernel' not found" "$(cat /tmp/uvm-cli-err-$$)"

"$uvmctl" run --bogus-option -- true >/dev/null 2>&1
check "usage error exits 2" 2 $?

dry=$("$uvmctl" create --dry-run --memory 512 --scsi 2 --kernel-args loglevel=7)
check "dry-run prints the document" 1 "$(printf '%s' "$dry" | grep -c '"SizeInMB": 512')"
check "dry-run prints the QEMU command line" 1 "$(printf '%s' "$dry" | grep -c '^qemu-system-x86_64 .*virtio-scsi-pci,id=scsi1')"
check "dry-run starts nothing" "" "$(ls "$UVM_RUNTIME_DIR" 2>/dev/null)"

rm -rf "$UVM_RUNTIME_DIR" /tmp/uvm-cli-err-$$
if [ "$fails" -ne 0 ]; then
    echo "$fails check(s) failed"
    exit 1
fi
echo "all CLI checks passed"

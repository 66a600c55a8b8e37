#!/bin/sh
# uvmctl as users meet it: exit codes, stdio, hot-add options, dry-run output.
# Usage: cli.sh UVMCTL BOOTFILES (as root for the --nic check: it creates a host tap)
set -u
uvmctl=$1
export UVM_BOOT_FILES_PATH=$2
export UVM_RUNTIME_DIR="/tmp/uvm-cli-$$"
work="/tmp/uvm-cli-work-$$"
err="/tmp/uvm-cli-err-$$"
tap="uvmctltap$(($$ % 100000))" # not uvmt*: test-netns counts those as the library's
tap_made=
cleanup() {
    rm -rf "$UVM_RUNTIME_DIR" "$work" "$err"
    if [ -n "$tap_made" ]; then ip link del "$tap"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
fails=0
check() { # name, expected, actual
    if [ "$2" = "$3" ]; then echo "ok   $1"; else echo "FAIL $1: expected [$2], got [$3]"; fails=$((fails + 1)); fi
}

out=$("$uvmctl" run --memory 256 -- sh -c 'echo out; echo err >&2; exit 3' 2>"$err")
check "exit status passes through" 3 $?
check "stdout streamed" out "$out"
check "stderr streamed" err "$(grep -v '^uvmctl' "$err")"

out=$(printf 'hello\nworld\n' | "$uvmctl" run -i --memory 256 -- tr a-z A-Z)
check "stdin with -i" "HELLO
WORLD" "$out"

"$uvmctl" run --memory 256 -- /no/such/command >/dev/null 2>&1
check "missing command exits 127" 127 $?

"$uvmctl" run --memory 256 -- sh -c 'kill -9 $$' >/dev/null 2>&1
check "signal death exits 128+9" 137 $?

"$uvmctl" run --memory 256 --boot-files /nonexistent -- true 2>"$err"
check "missing boot files exits 125" 125 $?
check "and says why" "uvmctl: kernel '/nonexistent/kernel' not found" "$(cat "$err")"

"$uvmctl" run --bogus-option -- true >/dev/null 2>&1
check "usage error exits 2" 2 $?

# Hot-add options: one VM with a layer (first, so at 0:0), a read-write disk and a vpmem image.
mkdir -p "$work/layer" "$work/pmem"
echo layer-data >"$work/layer/hello"
echo pmem-data >"$work/pmem/hello"
mkfs.ext4 -q -b 4096 -d "$work/layer" "$work/layer.img" 16M >/dev/null
mkfs.ext4 -q -b 4096 -d "$work/pmem" "$work/pmem.img" 16M >/dev/null
mkfs.ext4 -q -b 4096 "$work/disk.img" 16M >/dev/null
out=$("$uvmctl" run -v --memory 256 --scsi-layer "$work/layer.img" --disk "$work/disk.img:/mnt/d" \
    --vpmem "$work/pmem.img" -- \
    sh -c 'cat /tmp/S0/0/hello /tmp/p0/hello && echo written-by-guest >/mnt/d/out' 2>"$err")
rc=$?
check "hot-adds: exit status" 0 $rc
if [ $rc -ne 0 ]; then cat "$err"; fi
check "--scsi-layer at /tmp/S0/0, --vpmem at /tmp/p0" "layer-data
pmem-data" "$out"
check "--disk: the host sees the file written in the guest" written-by-guest \
    "$(debugfs -R 'cat /out' "$work/disk.img" 2>/dev/null)"
check "-v: where the disk landed" 1 \
    "$(grep -c "^uvmctl: disk $work/disk.img: SCSI 0:1, mounted at /mnt/d\$" "$err")"
check "-v: a time for each hot-add and the detach" 4 \
    "$(grep -cE '^  (scsi layer|disk|vpmem|detach disk) +[0-9.]+  /' "$err")"

"$uvmctl" run --memory 256 --disk "$work/missing.img:/mnt/m" -- true 2>"$err"
check "missing --disk file exits 125" 125 $?
check "and names the file" 1 "$(grep -c "^uvmctl: .*'$work/missing.img'" "$err")"

"$uvmctl" run --nic ip=10.200.50.2,tap=nosuchtap -- true 2>"$err"
check "bad --nic spec exits 2" 2 $?
check "and says why" 1 "$(grep -c "invalid --nic 'ip=10.200.50.2,tap=nosuchtap': .*PREFIX" "$err")"

if [ "$(id -u)" -ne 0 ]; then
    echo "skip --nic: creating a host tap needs root"
elif ip tuntap add dev "$tap" mode tap; then
    tap_made=1
    out=$("$uvmctl" run --memory 256 --nic "ip=10.200.50.2/24,mac=52:54:00:c1:1c:01,tap=$tap" -- \
        sh -c 'cat /sys/class/net/eth0/address; ip -o addr; ip -o link show eth0' 2>"$err")
    rc=$?
    check "--nic: exit status" 0 $rc
    if [ $rc -ne 0 ]; then cat "$err"; fi
    check "--nic: COMMAND runs in the namespace with the address" 1 \
        "$(printf '%s\n' "$out" | grep -c 'eth0 *inet 10.200.50.2/24')"
    check "--nic: and the MAC" 1 "$(printf '%s\n' "$out" | grep -c 'link/ether 52:54:00:c1:1c:01')"
else
    echo "FAIL --nic: cannot create host tap $tap"
    fails=$((fails + 1))
fi

# --share: a host directory at a guest path, read-only when asked.
mkdir -p "$work/share"
echo shared-data >"$work/share/x"
out=$("$uvmctl" run --memory 256 --share "$work/share:/mnt/s:ro" -- \
    sh -c 'cat /mnt/s/x; touch /mnt/s/y 2>/dev/null || echo refused' 2>"$err")
check "--share: read in the guest, read-only" "shared-data
refused" "$out"

# --bundle: an OCI bundle (busybox root file system, crun spec's config.json) as a container.
if command -v crun >/dev/null; then
    b="$work/bundle"
    mkdir -p "$b/rootfs/bin" "$b/rootfs/proc" "$b/rootfs/dev" "$b/rootfs/sys" "$b/rootfs/tmp"
    cp /bin/busybox "$b/rootfs/bin/"
    for a in $("$b/rootfs/bin/busybox" --list); do
        [ "$a" = busybox ] || ln -s busybox "$b/rootfs/bin/$a"
    done
    (cd "$b" && crun spec)
    out=$("$uvmctl" run --memory 256 --bundle "$b" -- sh -c 'hostname; ps -o comm; exit 4' \
        2>"$err")
    check "--bundle: the container's exit status" 4 $?
    check "--bundle: COMMAND in the container" "crun
COMMAND
sh
ps" "$out"
    out=$(printf 'in\n' | "$uvmctl" run -i --memory 256 --bundle "$b" -- cat 2>"$err")
    check "--bundle -i: stdin reaches the container" in "$out"
    if command -v script >/dev/null; then # a host pty: util-linux's script
        script -qec "stty rows 21 cols 77; $uvmctl run -t --memory 256 --bundle $b -- \
            sh -c 'tty; stty size; exit 5'" /dev/null >"$work/tty.out"
        check "--bundle -t: the container's exit status through a terminal" 5 $?
        # script types a NUL when its stdin (not a terminal here) ends: the guest echoes "^@"
        out=$(tr -d '\r' <"$work/tty.out" | sed 's/^\^@//')
        check "--bundle -t: on a terminal of our size" "/dev/pts/0
21 77" "$out"
    fi
    "$uvmctl" run --memory 256 --bundle "$b" -- /no/such 2>"$err"
    check "--bundle: missing executable exits 127" 127 $?
    check "--bundle: with crun's text" 1 "$(grep -c 'crun create: .*/no/such' "$err")"
    "$uvmctl" run --bundle "$work/nobundle" -- true 2>"$err"
    check "--bundle: no bundle exits 125" 125 $?
else
    echo "FAIL --bundle: crun is needed on the host (for crun spec)"
    fails=$((fails + 1))
fi

dry=$("$uvmctl" create --dry-run --memory 512 --scsi 2 --kernel-args loglevel=7)
check "dry-run prints the document" 1 "$(printf '%s' "$dry" | grep -c '"SizeInMB": 512')"
check "dry-run prints the QEMU command line" 1 "$(printf '%s' "$dry" | grep -c '^qemu-system-x86_64 .*virtio-scsi-pci,id=scsi1')"
check "dry-run starts nothing" "" "$(ls "$UVM_RUNTIME_DIR" 2>/dev/null)"

if [ "$fails" -ne 0 ]; then
    echo "$fails check(s) failed"
    exit 1
fi
echo "all CLI checks passed"

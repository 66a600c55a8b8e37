#!/bin/bash
# bench/ctr: `ctr run --rm local/busybox:latest bN true` under a private containerd 1.6, Debian's
# runc against uvm-runtime, and `uvmctl run -- true` (the issue's yardstick: uvm-runtime should
# cost at most it + 0.5 s), interleaved (runc, uvm-runtime, uvmctl, runc, ...) so that machine
# noise hits all alike; median and p95 of the wall times; the holder's phases (VM boot, share,
# create, start->exit, teardown) from UVM_RUNTIME_TIMINGS; the memory of an idle container's
# host processes (`sleep` in a container: VmRSS and Pss of each). Prints figures; asserts
# nothing.
# Usage: bench/ctr.sh UVM_RUNTIME UVMCTL BOOTFILES [RUNS]
set -u
RT=$(readlink -f "$1")
UVMCTL=$(readlink -f "$2")
export UVM_BOOT_FILES_PATH=$(readlink -f "$3")
runs=${4:-10}
for cmd in containerd ctr runc busybox python3; do
    if ! command -v $cmd >/dev/null; then
        echo "SKIP: $cmd is not installed (make setup installs containerd and runc)"
        exit 77
    fi
done
T=$(mktemp -d /tmp/uvm-bctr.XXXXXX)
export UVM_RUNTIME_DIR=$T/uvm
export UVM_RUNTIME_TIMINGS=$T/timings
. "$(dirname "$0")/../tests/integration/containerd-lib.sh"
trap ctrd_stop EXIT
trap 'exit 130' INT TERM HUP
ctrd_start || exit 1

ms() { echo $(($(date +%s%N) / 1000000)); }
one() { # label, command...
    local label=$1 t0 rc
    shift
    t0=$(ms)
    "$@" >/dev/null 2>"$T/err"
    rc=$?
    echo "$label $(($(ms) - t0)) $rc" >>"$T/walls"
    [ $rc -eq 0 ] || { echo "$label failed ($rc):"; cat "$T/err"; }
}
# one warm-up each (page cache, first containerd snapshot), not counted
c run --rm $CTRD_IMG w1 true >/dev/null
c run --rm --runc-binary "$RT" $CTRD_IMG w2 true >/dev/null
: >"$UVM_RUNTIME_TIMINGS"
for i in $(seq 1 "$runs"); do
    one runc c run --rm $CTRD_IMG "b$i" true
    one uvm-runtime c run --rm --runc-binary "$RT" $CTRD_IMG "u$i" true
    one "uvmctl-run" "$UVMCTL" run -- true
done

# An idle container of each kind: its host processes' memory.
mem() { # label, pids...
    local label=$1 p name rss pss
    shift
    for p in "$@"; do
        name=$(cat "/proc/$p/comm" 2>/dev/null) || continue
        rss=$(awk '/^VmRSS/ {print $2}' "/proc/$p/status")
        pss=$(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup")
        echo "$label $name $p $rss $pss" >>"$T/mem"
    done
}
shim_of() { pgrep -f "containerd-shim-runc-v2 -namespace default -id $1 "; }
c run -d $CTRD_IMG idle-runc sleep 1000 >/dev/null
c run -d --runc-binary "$RT" $CTRD_IMG idle-uvm sleep 1000 >/dev/null
sleep 3 # settle: the guest has booted, the container runs
mem runc "$(shim_of idle-runc)" "$(c task ls | awk '$1 == "idle-runc" {print $2}')"
mem uvm-runtime "$(shim_of idle-uvm)" $(pgrep -x uvm-rt-holder) $(pgrep -x uvm-rt-stub) \
    $(pgrep -f 'qemu-system.* -name guest=idle-uvm-') $(pgrep -f "virtiofsd --socket-path=$UVM_RUNTIME_DIR/")

python3 - "$T/walls" "$UVM_RUNTIME_TIMINGS" "$T/mem" "$runs" <<'PY'
import json, statistics, sys
walls, timings, mem, runs = sys.argv[1:]
def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p * (len(v) - 1))))]
rows = [l.split() for l in open(walls)]
print(f"ctr run --rm local/busybox:latest bN true: {runs} interleaved runs each (ms)")
print(f"{'':22} {'median':>8} {'p95':>8} {'failed':>7}")
med = {}
for label in ("runc", "uvm-runtime", "uvmctl-run"):
    v = [int(ms) for l, ms, rc in rows if l == label]
    bad = sum(1 for l, ms, rc in rows if l == label and rc != "0")
    med[label] = statistics.median(v)
    name = "uvmctl run -- true" if label == "uvmctl-run" else label
    print(f"{name:22} {med[label]:8.0f} {pct(v, 0.95):8.0f} {bad:7}")
d = med["uvm-runtime"] - med["uvmctl-run"]
print(f"uvm-runtime - uvmctl run: {d:+.0f} ms (target: at most +500 ms)")
t = [json.loads(l) for l in open(timings) if l.strip()]
print(f"\nthe holder's phases over {len(t)} containers (ms)")
print(f"{'':22} {'median':>8} {'p95':>8}")
for k, name in (("boot_ms", "VM boot"), ("share_ms", "share rootfs"),
                ("create_ms", "create (crun)"), ("start_exit_ms", "start -> exit"),
                ("teardown_ms", "teardown")):
    v = [x[k] for x in t]
    if v:
        print(f"{name:22} {statistics.median(v):8.1f} {pct(v, 0.95):8.1f}")
print("\nan idle container's host processes (KiB)")
print(f"{'':12} {'process':16} {'VmRSS':>8} {'Pss':>8}")
tot = {}
for label, name, pid, rss, pss in (l.split() for l in open(mem)):
    print(f"{label:12} {name:16} {int(rss):8} {int(pss):8}")
    a = tot.setdefault(label, [0, 0])
    a[0] += int(rss); a[1] += int(pss)
for label, (rss, pss) in tot.items():
    print(f"{label:12} {'total':16} {rss:8} {pss:8}")
PY

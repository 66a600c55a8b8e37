#!/bin/sh
# bench/compare.sh: two builds of libuvm side by side, interleaved (A, B, A, B, ...), so that
# machine noise hits both alike. Each run is `uvmctl run -v` with a SCSI disk and a VPMem image
# hot-added before `true`; prints the median and p90 of each phase for A and B and the ratio
# B / A of the medians. Prints figures; asserts nothing.
#
# Usage: bench/compare.sh BUILD_A BUILD_B [RUNS]   e.g. bench/compare.sh ../old/build build 15
#   Each BUILD is a meson build folder with src/cli/uvmctl and tools/bootfiles.
set -eu
a=$1
b=$2
runs=${3:-15}
tmp=$(mktemp -d /tmp/uvm-compare-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
truncate -s 64M "$tmp/disk.img"
mkfs.ext4 -qF "$tmp/disk.img"
truncate -s 64M "$tmp/layer.img"
mkfs.ext4 -qF "$tmp/layer.img"
export UVM_RUNTIME_DIR="$tmp/run"

run_one() { # build label
    "$1/src/cli/uvmctl" run -v --boot-files "$1/tools/bootfiles" \
        --disk "$tmp/disk.img:/data" --vpmem "$tmp/layer.img" -- true 2>&1 |
        awk -v l="$2" '$1 == "agent" && $2 == "ready" {print l, "boot", $3}
                       $1 == "disk" {print l, "add-scsi", $2}
                       $1 == "vpmem" {print l, "add-vpmem", $2}
                       $1 == "detach" {print l, "remove-scsi", $3}
                       $1 == "total" {print l, "total", $2}' >>"$tmp/figures"
}

i=0
while [ "$i" -lt "$runs" ]; do
    run_one "$a" A
    run_one "$b" B
    i=$((i + 1))
done

python3 - "$tmp/figures" "$runs" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
def fig(label, phase):
    return sorted(float(v) for l, p, v in rows if l == label and p == phase)
print(f"interleaved runs: {sys.argv[2]} each (ms; median / p90)")
print(f"{'phase':12} {'A median':>9} {'A p90':>8} {'B median':>9} {'B p90':>8} {'B/A':>6}")
for phase in ("boot", "add-scsi", "add-vpmem", "remove-scsi", "total"):
    fa, fb = fig("A", phase), fig("B", phase)
    if not fa or not fb:
        continue
    ma, mb = statistics.median(fa), statistics.median(fb)
    pa, pb = fa[int(0.9 * (len(fa) - 1))], fb[int(0.9 * (len(fb) - 1))]
    print(f"{phase:12} {ma:9.1f} {pa:8.1f} {mb:9.1f} {pb:8.1f} {mb / ma:6.3f}")
PY

#!/bin/sh
# bench/compare-hotplug.sh: bench/hotplug against two builds of libuvm.so, side by side and
# interleaved (A, B, A, B, ...), so that machine noise hits both alike. The same bench binary
# runs with LD_LIBRARY_PATH=LIBDIR_A, then with the build's own library (B). Prints, for each
# figure bench/hotplug prints, the median over the rounds of each side's median and the ratio
# B / A. Prints figures; asserts nothing.
#
# Usage: bench/compare-hotplug.sh LIBDIR_A [BUILD_B] [ROUNDS] [N]
#   e.g. bench/compare-hotplug.sh ../pre/build/src/lib build 3 30
set -eu
liba=$1
b=${2:-build}
rounds=${3:-3}
n=${4:-30}
tmp=$(mktemp -d /tmp/uvm-compare-hotplug-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
export UVM_BOOT_FILES_PATH="${UVM_BOOT_FILES_PATH:-$b/tools/bootfiles}"
export UVM_RUNTIME_DIR="$tmp/run"

run_one() { # label [libdir]
    if [ -n "${2:-}" ]; then
        LD_LIBRARY_PATH="$2" "$b/bench/bench-hotplug" "$n"
    else
        "$b/bench/bench-hotplug" "$n"
    fi | awk -v l="$1" '/median +[0-9]/ {
        line = $0; sub(/^ +/, "", line); i = index(line, " median ");
        what = substr(line, 1, i - 1); gsub(/ +$/, "", what); gsub(/ /, "_", what);
        for (k = 1; k <= NF; k++) if ($k == "median") print l, what, $(k + 1) }' >>"$tmp/figures"
}

r=0
while [ "$r" -lt "$rounds" ]; do
    run_one A "$liba"
    run_one B
    r=$((r + 1))
done
python3 - "$tmp/figures" <<'PY'
import statistics, sys
figs = {}
for line in open(sys.argv[1]):
    side, what, v = line.split()
    figs.setdefault(what, {}).setdefault(side, []).append(float(v))
print(f"{'figure (median of per-run medians, ms)':52} {'A':>9} {'B':>9} {'B/A':>7}")
for what, s in figs.items():
    a, b = statistics.median(s.get("A", [0])), statistics.median(s.get("B", [0]))
    print(f"{what.replace('_', ' '):52} {a:9.2f} {b:9.2f} {b / a if a else 0:7.3f}")
PY

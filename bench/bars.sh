#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# bench/bars.sh: what a user waits for, side by side in one run, as bars:
#   bare    a bare QEMU boot of Debian's cloud kernel to /init (q35, QEMU's default firmware,
#           256 MiB, 2 vCPUs, the build's initrd whose /init reports on QEMU's debugcon at once:
#           `-poweroff-at-start`): the reference
#   cold    `uvmctl run -- true` with the default VM (the build's default boot files)
#   clone   `uvmctl run --template DIR -- true`, DIR saved once from the default VM
#            (`uvmctl template create`, on /dev/shm)
# Interleaved (bare, cold, clone, bare, ...) so that machine noise hits all alike; medians and
# ratios to the bare boot (issue 15 targets under TCG: cold <= 0.40x, clone <= 0.12x). Wall
# time of each command, from fork to exit. Prints figures; asserts nothing.
#
# Usage: bench/bars.sh BUILD [RUNS]     e.g. bench/bars.sh build 9
#   Debian's cloud kernel package must be in <source>/.cache/debs
#   (FLAVOUR=cloud scripts/fetch-kernel.sh).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "$1" && pwd)
runs=${2:-9}
deb=$(find "$top/.cache/debs" -maxdepth 1 -name 'linux-image-[0-9]*-cloud-amd64_*.deb' |
      sort -V | tail -n 1)
[ -n "$deb" ] || { echo "bars: no cloud kernel .deb (FLAVOUR=cloud scripts/fetch-kernel.sh)" >&2
                   exit 1; }
tmp=$(mktemp -d /tmp/uvm-bars-XXXXXX)
tpl=$(mktemp -d /dev/shm/uvm-bars-XXXXXX)
trap 'rm -rf "$tmp" "$tpl"' EXIT
dpkg-deb -x "$deb" "$tmp/deb"
cp "$(find "$tmp/deb/boot" -name 'vmlinuz-*' | head -n 1)" "$tmp/vmlinuz"
rm -rf "$tmp/deb"
export UVM_RUNTIME_DIR="$tmp/run"
export UVM_BOOT_FILES_PATH="$build/tools/bootfiles"
uvmctl="$build/src/cli/uvmctl"
rmdir "$tpl"
"$uvmctl" template create "$tpl" 2>/dev/null

python3 - "$tmp/vmlinuz" "$UVM_BOOT_FILES_PATH/initrd.img" "$uvmctl" "$tpl" "$runs" \
    "$(basename "$deb")" <<'PY'
import os, statistics, subprocess, sys, time
vmlinuz, initrd, uvmctl, tpl, runs, deb = sys.argv[1:7]
runs = int(runs)

def bare():
    argv = ["qemu-system-x86_64", "-machine", "q35", "-accel", "tcg", "-m", "256", "-smp", "2",
            "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
            "-kernel", vmlinuz, "-initrd", initrd,
            "-append", "console=ttyS0 quiet panic=-1 -- -poweroff-at-start",
            "-debugcon", "stdio"]
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         stdin=subprocess.DEVNULL)
    while True:
        c = p.stdout.read(1)
        if not c or c == b"I":
            break
    t = time.monotonic() - t0
    p.kill()
    p.wait()
    if c != b"I":
        sys.exit("bars: the bare boot never reached /init")
    return t

def uvmctl_true(*extra):
    t0 = time.monotonic()
    r = subprocess.run([uvmctl, "run", *extra, "--", "true"], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    t = time.monotonic() - t0
    if r.returncode != 0:
        sys.exit("bars: uvmctl run failed: " + r.stderr.decode(errors="replace"))
    return t

fig = {"bare": [], "cold": [], "clone": []}
for _ in range(runs):
    fig["bare"].append(bare())
    fig["cold"].append(uvmctl_true())
    fig["clone"].append(uvmctl_true("--template", tpl))
med = {k: statistics.median(v) for k, v in fig.items()}
labels = {
    "bare": "bare QEMU, Debian cloud kernel, to /init",
    "cold": "uvmctl run -- true (default VM)",
    "clone": "uvmctl run --template DIR -- true",
}
targets = {"cold": 0.40, "clone": 0.12}
print(f"{runs} runs each, interleaved; medians (reference kernel: {deb})")
scale = 50 / med["bare"]
for k in ("bare", "cold", "clone"):
    ratio = med[k] / med["bare"]
    bar = "#" * max(1, round(med[k] * scale))
    tgt = f" (target <= {targets[k]:.2f}x)" if k in targets else ""
    print(f"  {labels[k]:42} {med[k] * 1000:8.0f} ms {ratio:6.3f}x{tgt}")
    print(f"  {'':42} {bar}")
PY

#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# `make demo`: boot a UVM and run a command in it, with timings.
#
# On a fresh machine the tailored guest kernel (the default) is not built yet, and building it
# takes 10-15 minutes on two cores. Rather than make a newcomer wait that long for a first
# sight of a VM, this script then builds only what a demo needs (uvmctl, the agent, the boot
# files of Debian's kernel, which is only unpacked), starts the full build (the tailored kernel
# included) in the background, runs the demo on Debian's kernel while it builds, saying so, and
# then follows the build's progress lines until it is done. The tailored kernel stays the
# default: the next `make demo` (and the tests) use it.
#
# Usage: scripts/demo.sh BUILD   (a configured meson build folder)
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "$1" && pwd)
cmd='uname -a; cat /proc/cmdline'

demo() { # boot-files folder
    "$build/src/cli/uvmctl" run -v --boot-files "$1" -- sh -c "$cmd"
}

# The build folder's kernel options, for kernel/build.sh --check.
opts=$(meson introspect --buildoptions "$build" | python3 -c '
import json, sys
o = {x["name"]: x["value"] for x in json.load(sys.stdin)}
print(o.get("guest_kernel", ""), o.get("kernel_source", ""), o.get("kernel_cache", "") or "-")')
set -- $opts
kernel=$1 source=$2 cache=$3
cache_args=
[ "$cache" = - ] || cache_args="--cache $cache"
[ "$cache" != none ] || cache_args="--cache ''"

if [ "$kernel" != tailored ] ||
    eval "\"$top/kernel/build.sh\" --check --out \"$build/tools/kernel\" --source \"$source\" \
          $cache_args"; then
    ninja -C "$build"
    demo "$build/tools/bootfiles"
    exit
fi

echo "demo: the tailored guest kernel is not built yet (a first build takes 10-15 minutes on"
echo "demo: two cores). It builds in the background now; meanwhile this first demo boots"
echo "demo: Debian's kernel. The tailored kernel stays the default once built."
ninja -C "$build" src/cli/uvmctl tools/bootfiles-debian/kernel
log=$build/meson-logs/background-build.log
ninja -C "$build" > "$log" 2>&1 &
bg=$!
echo "demo: full build running in the background (pid $bg, log $log)"
status=0
demo "$build/tools/bootfiles-debian" || status=$?

echo "demo: waiting for the background build (its progress lines follow)"
tail -n +1 -f "$log" --pid "$bg" | grep --line-buffered -e '^build-kernel:' -e '^FAILED:' -e ' error: ' || true
if wait "$bg"; then
    echo "demo: built; 'make demo' now boots the tailored kernel ($build/tools/bootfiles)"
else
    echo "demo: the background build failed: see $log" >&2
    status=1
fi
exit "$status"

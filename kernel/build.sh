#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Build libuvm's tailored guest kernel from Debian's linux-source-6.1 package: `make tinyconfig`,
# then kernel/uvm.config merged on top (every line of it is checked against the final .config),
# out of tree. Writes OUTDIR/vmlinux (the uncompressed ELF with the PVH note; QEMU -kernel boots
# it directly) and OUTDIR/kernel.release.
#
# The result is cached under CACHEDIR/<key>/, key = sha256 of (source package version, the
# fragment, this script, the compiler's version): a fresh build folder (CI) copies it instead of
# building, and a second run in the same folder does nothing. The 4 most recently used entries
# are kept.
#
# While it unpacks, configures and builds, a progress line every PROGRESS_S seconds (default 20;
# kernel/progress.sh, which is not part of the key): the time elapsed and, while make runs, the
# objects built of about how many (the last build's count in WORKDIR, else EXPECTED_OBJECTS: a
# full build of kernel/uvm.config makes ~1500).
#
# Usage: build.sh --out OUTDIR [--source TARBALL] [--config FRAGMENT] [--work WORKDIR]
#                 [--cache CACHEDIR] [--jobs N] [--check]
#   --source  default /usr/src/linux-source-6.1.tar.xz (package linux-source-6.1)
#   --config  default kernel/uvm.config next to this script
#   --work    where the source is unpacked and the objects are built (default OUTDIR/work);
#             an unpacked tree is reused while the source package is unchanged
#   --cache   default ${XDG_CACHE_HOME:-$HOME/.cache}/libuvm/kernel; "" disables the cache
#   --jobs    make -j (default: the number of CPUs); make runs under nice -n 10
#   --check   build nothing: exit 0 when OUTDIR is up to date or the cache has this kernel,
#             1 when it would have to be built (scripts/demo.sh asks before a first demo)
set -eu
umask 022

here=$(cd "$(dirname "$0")" && pwd)
SOURCE=/usr/src/linux-source-6.1.tar.xz
CONFIG=$here/uvm.config
OUT= WORK=
CACHE=${XDG_CACHE_HOME:-${HOME:-/nonexistent}/.cache}/libuvm/kernel
JOBS=$(nproc 2>/dev/null || echo 2)
KEEP=4
CHECK=
EXPECTED_OBJECTS=1500
. "$here/progress.sh"

die() {
    echo "build-kernel: $*" >&2
    exit 1
}

usage() {
    echo "usage: build.sh --out OUTDIR [--source TARBALL] [--config FRAGMENT] [--work WORKDIR]" >&2
    echo "                [--cache CACHEDIR] [--jobs N]" >&2
    exit 2
}

while [ $# -gt 0 ]; do
    case "$1" in
    --out) OUT=${2:?}; shift 2 ;;
    --source) SOURCE=${2:?}; shift 2 ;;
    --config) CONFIG=${2:?}; shift 2 ;;
    --work) WORK=${2:?}; shift 2 ;;
    --cache) CACHE=$2; shift 2 ;;
    --jobs) JOBS=${2:?}; shift 2 ;;
    --check) CHECK=1; shift ;;
    -h|--help) usage ;;
    *) echo "build-kernel: unknown argument '$1'" >&2; usage ;;
    esac
done
[ -n "$OUT" ] || usage
[ -f "$SOURCE" ] ||
    die "kernel source '$SOURCE' not found (install linux-source-6.1: scripts/setup.sh)"
[ -f "$CONFIG" ] || die "config fragment '$CONFIG' not found"
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
WORK=${WORK:-$OUT/work}

# What the kernel is built from. The package version when dpkg owns the tarball (cheap, and the
# same on every machine); else the tarball's content.
source_id() {
    pkg=$(dpkg-query -S "$SOURCE" 2>/dev/null | sed -n '1s/:.*//p') || pkg=
    if [ -n "$pkg" ]; then
        echo "$pkg $(dpkg-query -W -f='${Version}' "$pkg")"
    else
        echo "$(basename "$SOURCE") $(sha256sum < "$SOURCE" | cut -d' ' -f1)"
    fi
}
SRC_ID=$(source_id)
CC_ID=$(${CC:-gcc} --version 2>/dev/null | head -n 1) || CC_ID=unknown
KEY=$({
    echo "source: $SRC_ID"
    echo "compiler: $CC_ID"
    echo "fragment:"; cat "$CONFIG"
    echo "script:"; cat "$0"
} | sha256sum | cut -c1-16)

# Copy (or hard-link) a finished kernel from folder $1 into OUT.
install_from() {
    for f in vmlinux kernel.release config; do
        ln -f "$1/$f" "$OUT/$f.tmp" 2>/dev/null || cp "$1/$f" "$OUT/$f.tmp"
        mv -f "$OUT/$f.tmp" "$OUT/$f"
    done
    echo "$KEY" > "$OUT/kernel.key"
}

if [ -n "$CHECK" ]; then
    { [ -f "$OUT/kernel.key" ] && [ "$(cat "$OUT/kernel.key")" = "$KEY" ] && [ -f "$OUT/vmlinux" ]; } ||
        { [ -n "$CACHE" ] && [ -f "$CACHE/$KEY/vmlinux" ]; }
    exit
fi
if [ -f "$OUT/kernel.key" ] && [ "$(cat "$OUT/kernel.key")" = "$KEY" ] && [ -f "$OUT/vmlinux" ]; then
    echo "build-kernel: $(cat "$OUT/kernel.release") up to date ($KEY), nothing to do"
    exit 0
fi
ENTRY=
if [ -n "$CACHE" ]; then
    mkdir -p "$CACHE"
    ENTRY=$CACHE/$KEY
    # One builder per key at a time (two build folders configured at once); the loser copies.
    exec 9> "$CACHE/$KEY.lock"
    flock 9
    if [ -f "$ENTRY/vmlinux" ]; then
        touch "$ENTRY"
        install_from "$ENTRY"
        echo "build-kernel: $(cat "$OUT/kernel.release") from the cache $ENTRY (no build)"
        exit 0
    fi
fi

start=$(date +%s)
# 1. The source tree, unpacked once per source package.
SRC=$WORK/src
OBJ=$WORK/obj
mkdir -p "$WORK"
if [ ! -f "$WORK/src.stamp" ] || [ "$(cat "$WORK/src.stamp")" != "$SRC_ID" ]; then
    echo "build-kernel: unpacking $SOURCE"
    rm -rf "$SRC" "$OBJ" "$WORK/src.stamp"
    mkdir -p "$SRC"
    progress_run "unpacking the source" tar -xf "$SOURCE" -C "$SRC" --strip-components=1 ||
        die "unpacking '$SOURCE' failed"
    echo "$SRC_ID" > "$WORK/src.stamp"
fi

# 2. The configuration: tinyconfig, the fragment over it, olddefconfig for the rest.
mk() {
    nice -n 10 make -s -C "$SRC" O="$OBJ" ARCH=x86_64 "$@"
}
mkdir -p "$OBJ"
log=$WORK/config.log
configure() {
    {
        mk tinyconfig &&
            "$SRC/scripts/kconfig/merge_config.sh" -m -O "$OBJ" "$OBJ/.config" "$CONFIG" &&
            mk olddefconfig
    } > "$log" 2>&1
}
echo "build-kernel: configuring (tinyconfig + $(basename "$CONFIG"))"
progress_run "configuring" configure || { cat "$log" >&2; die "configuration failed (log above)"; }
# Every CONFIG_X=v and "# CONFIG_X is not set" of the fragment must be in the result.
missing=$(sed -n -e 's/^\(CONFIG_[A-Za-z0-9_]*=.*\)$/\1/p' \
    -e 's/^# \(CONFIG_[A-Za-z0-9_]*\) is not set$/\1=n/p' "$CONFIG" |
    while IFS= read -r want; do
        name=${want%%=*}
        got=$(sed -n -e "s/^\($name=.*\)$/\1/p" -e "s/^# \($name\) is not set$/\1=n/p" \
            "$OBJ/.config")
        [ "$want" = "${got:-$name=n}" ] || echo "  $want (got ${got:-$name=n})"
    done)
[ -z "$missing" ] || die "the fragment did not apply (a dependency is missing):
$missing"

# 3. Build, saying how far it is (a first build takes 10-15 minutes on two cores: silence would
#    look like a hang).
objects() {
    find "$OBJ" -name '*.o' 2>/dev/null | wc -l
}
total=$EXPECTED_OBJECTS
[ -f "$WORK/objects.count" ] && total=$(cat "$WORK/objects.count")
progress_detail() {
    n=$(objects)
    pct=$((n * 100 / total))
    [ "$pct" -le 99 ] || pct=99
    echo ": $n of about $total objects built ($pct %)"
}
echo "build-kernel: building with make -j$JOBS in $OBJ (about $total objects; a first" \
    "build takes 10-15 minutes on 2 cores)"
progress_run "building" mk -j"$JOBS" vmlinux || die "make failed (its messages are above)"
objects > "$WORK/objects.count"
end=$(date +%s)

# 4. Publish: into the cache (atomically), then into OUT.
STAGE=$WORK/result
rm -rf "$STAGE"
mkdir -p "$STAGE"
cp "$OBJ/vmlinux" "$STAGE/vmlinux"
mk kernelrelease > "$STAGE/kernel.release"
cp "$OBJ/.config" "$STAGE/config"
if [ -n "$ENTRY" ]; then
    rm -rf "$ENTRY.tmp"
    cp -r "$STAGE" "$ENTRY.tmp"
    mv "$ENTRY.tmp" "$ENTRY"
    # Keep the most recently used entries.
    ls -1dt "$CACHE"/*/ 2>/dev/null | tail -n +$((KEEP + 1)) | while IFS= read -r old; do
        rm -rf "$old" "${old%/}.lock"
    done
fi
install_from "$STAGE"
echo "build-kernel: built $(cat "$OUT/kernel.release") in $((end - start)) s" \
    "($(stat -c %s "$OUT/vmlinux") bytes vmlinux, key $KEY)"

#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Build the utility VM's boot files, without network, from one of two kernels:
#   --kernel VMLINUX   the tailored kernel (kernel/build.sh): everything built in, no modules
#   --deb DEB_OR_DIR   Debian's linux-image-<ver>-amd64 package (the fallback): modules
# Outputs:
#   OUTDIR/kernel      the uncompressed vmlinux (ELF with the Xen PVH note: QEMU boots it
#                      directly, skipping the bzImage decompressor)
#   OUTDIR/initrd.img  cpio newc: /init = gcs, busybox; with --deb also the kernel modules the
#                      agent loads (/etc/modules.boot before the bridge, /etc/modules.late after)
#   OUTDIR/rootfs.vhd  the same tree as a read-only root file system for VPMem device 0
#                      (kernel command line "root=/dev/pmem0 init=/init"): an uncompressed EROFS
#                      image (DAX-capable), zero-padded so that image + footer is a multiple of
#                      2 MiB, then a fixed-disk VHD footer (current size = the data part)
#   OUTDIR/vhd-initrd.img  (--deb only) a hard link to initrd.img: the initrd a VHD boot needs
#                      because the pmem drivers are modules (the initramfs loads them, mounts
#                      /dev/pmem0 and switches root). The tailored kernel mounts it by itself.
# With --crun-debs, rootfs.vhd (not the initrd: every VM boot would load it) also holds crun, the
# guest's OCI runtime, and its shared-library closure, from the Debian packages in DEBDIR
# (scripts/fetch-crun.sh): /usr/bin/crun, /lib/x86_64-linux-gnu/<soname>, the loader in /lib64.
# The outputs are reproducible: sorted names, fixed mtimes and UUIDs, root:root owners.
#
# Usage: mkbootfiles.sh (--kernel VMLINUX | --deb DEB_OR_DIR) --gcs PATH_TO_GCS --out OUTDIR
#                       [--work WORKDIR] [--busybox PATH] [--compression lz4|gzip|none]
#                       [--crun-debs DEBDIR]
#   --crun-debs  a folder holding crun_*.deb and its libraries' packages (the newest version of
#            each package is used); without crun_*.deb in it, rootfs.vhd has no crun (a warning)
#   --deb    linux-image-<ver>-amd64 .deb, or a folder holding one (the newest is used)
#   --work   scratch folder; the unpacked kernel is kept there and reused while the .deb is
#            unchanged (default: a temporary folder, removed at exit)
set -eu
umask 022

BOOT_MODULES="virtio_pci virtio_console"
LATE_MODULES="virtio_scsi sd_mod virtio_blk virtio_pmem nd_pmem nd_btt libnvdimm 9p 9pnet_virtio
9pnet_fd virtio_net overlay erofs ext4 crc32c_generic fuse virtiofs veth vmw_vsock_virtio_transport
af_packet"
# What the initramfs loads (after BOOT_MODULES) to mount the root file system from VPMem: the
# list /etc/modules.pmem (dependencies first, leaving out the boot list's modules).
PMEM_MODULES="libnvdimm nd_pmem nd_btt virtio_pmem erofs"
# Fixed UUIDs (EROFS superblock, VHD footer) keep rootfs.vhd reproducible.
ROOTFS_UUID=0c5e7a1d-2f3b-4c6d-9e8f-75766d726f6f
VHD_ALIGN=$((2 * 1024 * 1024))
# Measured under TCG (q35, 2 vCPUs, 12 interleaved boots, medians, QEMU spawn -> negotiate):
# none 9.9 MB 2.50 s, gzip 3.2 MB 2.44 s, lz4 3.8 MB 2.40 s (guest time to /init 1.98 / 1.94 /
# 1.88 s): lz4 is the fastest (cheap to decompress, a third of the bytes to load).
COMPRESSION=
BUSYBOX=/bin/busybox
EPOCH=${SOURCE_DATE_EPOCH:-0}

die() {
    echo "mkbootfiles: $*" >&2
    exit 1
}

usage() {
    echo "usage: mkbootfiles.sh (--kernel VMLINUX | --deb DEB_OR_DIR) --gcs PATH_TO_GCS --out OUTDIR" >&2
    echo "                      [--work WORKDIR] [--busybox PATH] [--compression lz4|gzip|none]" >&2
    echo "                      [--crun-debs DEBDIR]" >&2
    exit 2
}

DEB= KERNEL= GCS= OUT= WORK= CRUN_DEBS=
while [ $# -gt 0 ]; do
    case "$1" in
    --deb) DEB=${2:?}; shift 2 ;;
    --kernel) KERNEL=${2:?}; shift 2 ;;
    --gcs) GCS=${2:?}; shift 2 ;;
    --out) OUT=${2:?}; shift 2 ;;
    --work) WORK=${2:?}; shift 2 ;;
    --busybox) BUSYBOX=${2:?}; shift 2 ;;
    --compression) COMPRESSION=${2:?}; shift 2 ;;
    --crun-debs) CRUN_DEBS=${2:?}; shift 2 ;;
    -h|--help) usage ;;
    *) echo "mkbootfiles: unknown argument '$1'" >&2; usage ;;
    esac
done
[ -n "$DEB$KERNEL" ] && [ -z "$DEB" -o -z "$KERNEL" ] && [ -n "$GCS" ] && [ -n "$OUT" ] || usage
[ -x "$GCS" ] || die "gcs binary '$GCS' not found or not executable"
[ -x "$BUSYBOX" ] || die "busybox '$BUSYBOX' not found (install busybox-static)"
case "$COMPRESSION" in ''|lz4|gzip|none) ;; *) die "unknown compression '$COMPRESSION'" ;; esac
tools="cpio python3 mkfs.erofs"
[ -z "$DEB" ] || tools="$tools dpkg-deb depmod xz"
[ -z "$CRUN_DEBS" ] || tools="$tools dpkg-deb readelf"
for tool in $tools; do
    command -v "$tool" >/dev/null || die "'$tool' is required"
done
if [ -z "$COMPRESSION" ]; then
    COMPRESSION=lz4
    command -v lz4 >/dev/null || {
        COMPRESSION=gzip
        echo "mkbootfiles: lz4 not found (package lz4), compressing with gzip" >&2
    }
fi
[ "$COMPRESSION" != lz4 ] || command -v lz4 >/dev/null || die "'lz4' is required"

# A folder: the newest generic linux-image-<ver>-amd64 package in it.
if [ -n "$KERNEL" ]; then
    [ -f "$KERNEL" ] || die "kernel '$KERNEL' not found (kernel/build.sh builds it)"
    [ "$(head -c 4 "$KERNEL")" = "$(printf '\177ELF')" ] || die "'$KERNEL' is not an ELF vmlinux"
elif [ -d "$DEB" ]; then
    dir=$DEB
    DEB=$(find "$dir" -maxdepth 1 -name 'linux-image-[0-9]*-amd64_*.deb' \
        ! -name '*-cloud-amd64_*' ! -name '*-rt-amd64_*' ! -name '*-dbg_*' | sort -V | tail -n 1)
    [ -n "$DEB" ] || die "no linux-image-<ver>-amd64 .deb in '$dir' (run scripts/fetch-kernel.sh)"
fi
[ -n "$KERNEL" ] || [ -f "$DEB" ] || die "kernel package '$DEB' not found"

if [ -z "$WORK" ]; then
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/mkbootfiles.XXXXXX")
    trap 'rm -rf "$WORK"' EXIT
fi
mkdir -p "$WORK" "$OUT"
WORK=$(cd "$WORK" && pwd)
OUT=$(cd "$OUT" && pwd)

if [ -n "$KERNEL" ]; then
    # The tailored kernel: everything built in, so no modules and no module lists (the agent
    # treats a missing list as empty).
    KVER=$(cat "$(dirname "$KERNEL")/kernel.release" 2>/dev/null || echo tailored)
    MODDIR=
    cp "$KERNEL" "$OUT/kernel.tmp"
    mv "$OUT/kernel.tmp" "$OUT/kernel"
    : > "$WORK/modules.boot"
    : > "$WORK/modules.late"
    : > "$WORK/modules.pmem"
else # (not indented: the here-documents below)
# 1. Unpack the kernel package and index its modules (kept while the .deb is unchanged).
ROOT=$WORK/kernel-root
stamp="$(cd "$(dirname "$DEB")" && pwd)/$(basename "$DEB") $(stat -c '%s %Y' "$DEB")"
if [ ! -f "$WORK/kernel.stamp" ] || [ "$(cat "$WORK/kernel.stamp")" != "$stamp" ]; then
    rm -rf "$ROOT" "$WORK/kernel.stamp"
    dpkg-deb -x "$DEB" "$ROOT"
    set -- "$ROOT"/lib/modules/*
    [ $# -eq 1 ] && [ -d "$1" ] || die "expected one /lib/modules/<version> in '$DEB'"
    depmod -b "$ROOT" "$(basename "$1")"
    echo "$stamp" > "$WORK/kernel.stamp"
fi
set -- "$ROOT"/lib/modules/*
KVER=$(basename "$1")
MODDIR=$ROOT/lib/modules/$KVER
VMLINUZ=$ROOT/boot/vmlinuz-$KVER
[ -f "$VMLINUZ" ] || die "no /boot/vmlinuz-$KVER in '$DEB'"

# 2. The uncompressed vmlinux: the first XZ stream of the bzImage that decompresses to an ELF.
python3 - "$VMLINUZ" "$OUT/kernel.tmp" <<'EOF'
import subprocess, sys
data = open(sys.argv[1], 'rb').read()
magic, pos = b'\xfd7zXZ\x00', 0
while True:
    pos = data.find(magic, pos)
    if pos < 0:
        sys.exit("mkbootfiles: no XZ stream holding an ELF kernel in " + sys.argv[1])
    # --single-stream: ignore what follows the stream (the rest of the bzImage)
    r = subprocess.run(['xz', '-dc', '--single-stream'], input=data[pos:],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    if r.returncode == 0 and r.stdout[:4] == b'\x7fELF':
        open(sys.argv[2], 'wb').write(r.stdout)
        break
    pos += 1
EOF
mv "$OUT/kernel.tmp" "$OUT/kernel"

# 3. Module lists: dependency closure from modules.dep, dependencies first; modules built into
#    the kernel are skipped; the late list leaves out what the boot list loads.
python3 - "$MODDIR" "$WORK/modules.boot" "$WORK/modules.late" "$WORK/modules.pmem" \
    "$BOOT_MODULES" "$LATE_MODULES" "$PMEM_MODULES" <<'EOF'
import os, sys
moddir, boot_out, late_out, pmem_out, boot, late, pmem = sys.argv[1:8]
def norm(name):
    return name.replace('-', '_')
deps, by_name = {}, {}
with open(os.path.join(moddir, 'modules.dep')) as f:
    for line in f:
        path, _, rest = line.strip().partition(':')
        deps[path] = rest.split()
        by_name[norm(os.path.basename(path)[:-3])] = path
builtin = set()
with open(os.path.join(moddir, 'modules.builtin')) as f:
    for line in f:
        builtin.add(norm(os.path.basename(line.strip())[:-3]))
def closure(names, done):
    out = []
    def visit(path, stack):
        if path in done:
            return
        if path in stack:
            sys.exit("mkbootfiles: dependency loop at " + path)
        for d in deps[path]:
            visit(d, stack + [path])
        done.add(path)
        out.append(path)
    for name in names.split():
        n = norm(name)
        if n in by_name:
            visit(by_name[n], [])
        elif n in builtin:
            print("mkbootfiles: %s is built into the kernel" % name, file=sys.stderr)
        else:
            sys.exit("mkbootfiles: module %s not found" % name)
    return out
done = set()
for names, path in ((boot, boot_out), (late, late_out)):
    with open(path, 'w') as f:
        f.writelines(m + '\n' for m in closure(names, done))
# The pmem list is a subset of boot + late (checked): it copies no module of its own.
done = set(closure(boot, set()))
loaded = done | set(open(late_out).read().split())
with open(pmem_out, 'w') as f:
    for m in closure(pmem, done):
        if m not in loaded:
            sys.exit("mkbootfiles: %s (for the pmem root) is in neither module list" % m)
        f.write(m + '\n')
EOF

fi

# 4. The initrd tree.
STAGE=$WORK/initrd
rm -rf "$STAGE"
mkdir -p "$STAGE"
# newroot: where the initramfs mounts rootfs.vhd; every mount point must exist in the image.
for d in bin sbin usr/bin usr/sbin proc sys dev tmp run etc root mnt newroot; do
    mkdir -p "$STAGE/$d"
done
[ -n "$KERNEL" ] || mkdir -p "$STAGE/lib/modules/$KVER"
install -m 0755 "$GCS" "$STAGE/init"
install -m 0755 "$BUSYBOX" "$STAGE/bin/busybox"
# One process for the ~270 applet links and the module copies (process spawning is slow).
"$BUSYBOX" --list-full | python3 -c '
import os, shutil, sys
stage, moddir, dest, boot, late = sys.argv[1:6]
for applet in sys.stdin.read().split():
    if applet == "bin/busybox":
        continue
    link = os.path.join(stage, applet)
    os.makedirs(os.path.dirname(link), exist_ok=True)
    if os.path.lexists(link):
        os.unlink(link)
    os.symlink("/bin/busybox", link)
if not os.path.isdir(dest):
    sys.exit(0)  # the tailored kernel: no modules
mods = open(boot).read().split() + open(late).read().split()
for ko in mods:
    os.makedirs(os.path.dirname(os.path.join(dest, ko)), exist_ok=True)
    shutil.copyfile(os.path.join(moddir, ko), os.path.join(dest, ko))
    os.chmod(os.path.join(dest, ko), 0o644)
for f in ("modules.builtin", "modules.builtin.modinfo"):
    shutil.copyfile(os.path.join(moddir, f), os.path.join(dest, f))
with open(os.path.join(dest, "modules.order"), "w") as f:
    f.writelines(m + "\n" for m in mods)
' "$STAGE" "$MODDIR" "$STAGE/lib/modules/$KVER" "$WORK/modules.boot" "$WORK/modules.late"
if [ -z "$KERNEL" ]; then
    depmod -b "$STAGE" "$KVER" # modules.dep/alias of what is there, for busybox modprobe
    install -m 0644 "$WORK/modules.boot" "$STAGE/etc/modules.boot"
    install -m 0644 "$WORK/modules.late" "$STAGE/etc/modules.late"
    install -m 0644 "$WORK/modules.pmem" "$STAGE/etc/modules.pmem"
fi
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$STAGE/etc/passwd"
: > "$STAGE/etc/resolv.conf" # bind-mount target for a network namespace's resolv.conf
mkdir -p "$STAGE/etc/netns"   # the agent mounts a tmpfs here on a read-only root
printf 'root:x:0:\n' > "$STAGE/etc/group"
chmod 0700 "$STAGE/root"
chmod 1777 "$STAGE/tmp"
find "$STAGE" -exec touch -h -d "@$EPOCH" {} +

# 5. The archive ("." first: it sets the mode of the root folder).
(
    cd "$STAGE"
    find . | sed 's|^\./||' | LC_ALL=C sort |
        cpio --quiet -o -H newc -R 0:0 --reproducible
) > "$WORK/initrd.cpio"
case "$COMPRESSION" in
lz4) lz4 -l -9 -q -f "$WORK/initrd.cpio" "$OUT/initrd.img.tmp" ;;
gzip) gzip -n -9 -c "$WORK/initrd.cpio" > "$OUT/initrd.img.tmp" ;;
none) cp "$WORK/initrd.cpio" "$OUT/initrd.img.tmp" ;;
esac
rm -f "$WORK/initrd.cpio"
mv "$OUT/initrd.img.tmp" "$OUT/initrd.img"

# 6. crun and its library closure, for rootfs.vhd only (added after the initrd was archived).
# The newest .deb of every package in CRUN_DEBS but the kernels is unpacked into one tree (kept
# while the packages are unchanged); crun's NEEDED entries (readelf -d) are looked up there,
# recursively, and copied (symlinks resolved inside the tree) to /lib/x86_64-linux-gnu; the
# loader named by crun's PT_INTERP goes to that path.
CRUN_NOTE=
add_crun() {
    debs=$(find "$CRUN_DEBS" -maxdepth 1 -name '*.deb' ! -name 'linux-image-*' | sort -V |
        awk -F/ '{ split($NF, a, "_"); last[a[1]] = $0 } END { for (p in last) print last[p] }' |
        LC_ALL=C sort)
    if ! echo "$debs" | grep -q '/crun_[^/]*$'; then
        echo "mkbootfiles: warning: no crun_*.deb in '$CRUN_DEBS' (run scripts/fetch-crun.sh):" \
            "rootfs.vhd has no crun, containers cannot run" >&2
        CRUN_NOTE=", no crun"
        return 0
    fi
    root=$WORK/crun-root
    stamp=$(for d in $debs; do echo "$d $(stat -c '%s %Y' "$d")"; done)
    if [ ! -f "$WORK/crun.stamp" ] || [ "$(cat "$WORK/crun.stamp")" != "$stamp" ]; then
        rm -rf "$root" "$WORK/crun.stamp"
        mkdir -p "$root"
        for d in $debs; do
            dpkg-deb -x "$d" "$root"
        done
        echo "$stamp" > "$WORK/crun.stamp"
    fi
    [ -f "$root/usr/bin/crun" ] || die "no usr/bin/crun in the crun package"
    libdir=$STAGE/lib/x86_64-linux-gnu
    mkdir -p "$STAGE/usr/bin" "$libdir" "$STAGE/lib64"
    install -m 0755 "$root/usr/bin/crun" "$STAGE/usr/bin/crun"
    interp=$(readelf -l "$root/usr/bin/crun" | sed -n 's/.*program interpreter: \(.*\)\]$/\1/p')
    [ -n "$interp" ] || die "crun has no program interpreter"
    # A soname's file in the unpacked tree, symlinks resolved within the tree.
    find_lib() {
        for dir in lib/x86_64-linux-gnu usr/lib/x86_64-linux-gnu lib usr/lib; do
            f=$dir/$1
            n=0
            while [ -L "$root/$f" ] && [ $n -lt 8 ]; do
                t=$(readlink "$root/$f")
                case "$t" in /*) f=${t#/} ;; *) f=$(dirname "$f")/$t ;; esac
                n=$((n + 1))
            done
            [ -f "$root/$f" ] && [ ! -L "$root/$f" ] && { echo "$root/$f"; return 0; }
        done
        return 1
    }
    loader=$(find_lib "$(basename "$interp")") || die "the loader $interp is in no package"
    mkdir -p "$STAGE$(dirname "$interp")"
    install -m 0755 "$loader" "$STAGE$interp"
    queue="$root/usr/bin/crun" done_libs=" $(basename "$interp") "
    while [ -n "$queue" ]; do
        set -- $queue
        file=$1
        shift
        queue="$*"
        for so in $(readelf -d "$file" | sed -n 's/.*(NEEDED).*\[\(.*\)\]$/\1/p'); do
            case "$done_libs" in *" $so "*) continue ;; esac
            done_libs="$done_libs$so "
            lib=$(find_lib "$so") ||
                die "crun needs $so, which no package in '$CRUN_DEBS' has (scripts/fetch-crun.sh)"
            install -m 0755 "$lib" "$libdir/$so"
            queue="$queue $lib"
        done
    done
    CRUN_NOTE=", crun $(dpkg-deb -f "$(echo "$debs" | grep '/crun_[^/]*$')" Version) +$(($(echo \
        "$done_libs" | wc -w) - 1)) libraries and the loader"
    find "$STAGE" -exec touch -h -d "@$EPOCH" {} +
}
[ -z "$CRUN_DEBS" ] || add_crun

# 7. rootfs.vhd: EROFS (uncompressed: DAX maps the file data in place) + zero padding + footer.
rm -f "$OUT/rootfs.vhd.tmp"
mkfs.erofs --quiet -T "$EPOCH" --all-root -U "$ROOTFS_UUID" "$OUT/rootfs.vhd.tmp" "$STAGE" ||
    die "mkfs.erofs failed"
python3 - "$OUT/rootfs.vhd.tmp" "$VHD_ALIGN" "$ROOTFS_UUID" <<'EOF'
import os, struct, sys, uuid
path, align, fs_uuid = sys.argv[1], int(sys.argv[2]), sys.argv[3]
img = os.path.getsize(path)
size = (img + 512 + align - 1) // align * align - 512  # the data part: image + zeros
# Disk geometry: the algorithm of the VHD specification (appendix "CHS calculation").
sectors = min(size // 512, 65535 * 16 * 255)
if sectors >= 65535 * 16 * 63:
    spt, heads = 255, 16
    cth = sectors // spt
else:
    spt = 17
    cth = sectors // spt
    heads = max((cth + 1023) // 1024, 4)
    if cth >= heads * 1024 or heads > 16:
        spt, heads = 31, 16
        cth = sectors // spt
    if cth >= heads * 1024:
        spt, heads = 63, 16
        cth = sectors // spt
cyls = cth // heads
# Big-endian: cookie, features, version, data offset (none: fixed disk), timestamp, creator
# application, version and host OS, original and current size, geometry, disk type (2: fixed),
# checksum (below), UUID, saved state. Creator "win " (Hyper-V): QEMU's vpc driver takes the
# current size only from creators it knows ("win ", "qem2", "d2v ", ...), from the geometry
# (rounded down: 6 KiB short here) for any other.
footer = bytearray(struct.pack('>8sIIQI4sI4sQQHBBII16sB', b'conectix', 2, 0x00010000,
                               0xFFFFFFFFFFFFFFFF, 0, b'win ', 0x00010000, b'Wi2k', size, size,
                               cyls, heads, spt, 2, 0,
                               uuid.uuid5(uuid.UUID(fs_uuid), 'rootfs.vhd').bytes, 0))
footer += bytes(512 - len(footer))
struct.pack_into('>I', footer, 64, ~sum(footer) & 0xFFFFFFFF)
with open(path, 'r+b') as f:
    f.truncate(size)
    f.seek(size)
    f.write(footer)
EOF
mv "$OUT/rootfs.vhd.tmp" "$OUT/rootfs.vhd"
rm -f "$OUT/vhd-initrd.img"
[ -n "$KERNEL" ] || ln "$OUT/initrd.img" "$OUT/vhd-initrd.img"
echo "mkbootfiles: kernel $KVER, $(wc -l < "$WORK/modules.boot") boot + $(wc -l < "$WORK/modules.late") late modules, initrd $(stat -c %s "$OUT/initrd.img") bytes ($COMPRESSION), rootfs.vhd $(stat -c %s "$OUT/rootfs.vhd") bytes$CRUN_NOTE"

#!/usr/bin/env bash
# Prepare a Debian 12 machine for building and testing libuvm. Idempotent: installs (as root, or
# through sudo) only the packages that are missing (among them linux-source-6.1, the source of
# the tailored guest kernel), then fetches Debian's guest kernel package (the fallback kernel)
# and the packages of the guest's crun (rootfs.vhd).
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
    qemu-system-x86 qemu-utils                  # the hypervisor, qemu-img
    busybox-static e2fsprogs erofs-utils kmod cpio xz-utils lz4   # guest boot files
    linux-source-6.1 make flex bison bc libelf-dev   # the tailored guest kernel (kernel/)
    meson ninja-build pkg-config gcc libc6-dev  # build
    libjansson-dev libcmocka-dev                # libraries, unit tests
    clang libclang-rt-14-dev                    # fuzz targets (libFuzzer, tests/fuzz)
    valgrind python3                            # tests, .ci/run
    iproute2 socat                              # host taps (networking), network tests
    crun                                        # `crun spec` (the containers' test spec)
    tmux                                        # uvmctl run -t under a terminal (tests)
    containerd runc                             # uvm-runtime's tests and bench/ctr (containerd 1.6)
    chromium                                    # renders uvmctl's --timeline SVG (test)
)

if ! command -v dpkg-query >/dev/null; then
    echo "setup.sh: dpkg-query not found: this script supports Debian 12 only" >&2
    exit 1
fi

# Installed means status "ii"; a package dpkg has never seen is not listed at all.
declare -A installed=()
while read -r name status; do
    [[ $status == ii ]] && installed[$name]=1
done < <(dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' "${packages[@]}" 2>/dev/null || true)

missing=()
for p in "${packages[@]}"; do
    [[ -n ${installed[$p]:-} ]] || missing+=("$p")
done

if ((${#missing[@]})); then
    echo "setup.sh: installing ${missing[*]}"
    sudo=()
    if [[ $(id -u) -ne 0 ]]; then
        if ! command -v sudo >/dev/null; then
            echo "setup.sh: not root and sudo is not installed; run as root" >&2
            exit 1
        fi
        sudo=(sudo)
    fi
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y --no-install-recommends "${missing[@]}"
else
    echo "setup.sh: all ${#packages[@]} packages are installed"
fi

# The guest kernel (Debian's linux-image .deb, into .cache/debs), as the calling user.
if [[ ! -x scripts/fetch-kernel.sh ]]; then
    echo "setup.sh: scripts/fetch-kernel.sh is missing or not executable" >&2
    exit 1
fi
scripts/fetch-kernel.sh
# Debian's cloud kernel: only the reference boot of bench/bars.sh (never in the boot files).
FLAVOUR=cloud scripts/fetch-kernel.sh
# crun and its libraries for the guest's rootfs.vhd (Debian packages, into .cache/debs).
scripts/fetch-crun.sh

#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Download the generic Debian kernel package that the boot-file builder (tools/mkbootfiles.sh)
# unpacks: the linux-image-<ver>-amd64 that the linux-image-amd64 metapackage currently depends
# on, into <source>/.cache/debs (or $1). Nothing to do when it is already there. Called by the
# setup script, never by the build (the build has no network).
# FLAVOUR=cloud: Debian's cloud kernel instead (linux-image-cloud-amd64), the reference of
# bench/bars.sh; the boot files never use it.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
dest=${1:-$top/.cache/debs}

command -v apt-cache >/dev/null && command -v apt-get >/dev/null ||
    { echo "fetch-kernel: apt-get/apt-cache not found (Debian/Ubuntu host needed)" >&2; exit 1; }

flavour=${FLAVOUR:+$FLAVOUR-}
pkg=$(apt-cache depends "linux-image-${flavour}amd64" 2>/dev/null |
      sed -n "s/^ *Depends: \(linux-image-[0-9][^ ]*-${flavour}amd64\)\$/\1/p" | head -n 1)
[ -n "$pkg" ] || {
    echo "fetch-kernel: cannot tell which kernel linux-image-${flavour}amd64 depends on" \
        "(apt-get update?)" >&2
    exit 1
}

mkdir -p "$dest"
if ls "$dest/${pkg}_"*.deb >/dev/null 2>&1; then
    echo "fetch-kernel: $(ls "$dest/${pkg}_"*.deb | tail -n 1) already present"
    exit 0
fi
echo "fetch-kernel: downloading $pkg into $dest"
(cd "$dest" && apt-get download "$pkg")
ls "$dest/${pkg}_"*.deb

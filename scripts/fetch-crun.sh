#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Download the Debian packages that put crun (the guest's OCI runtime, docs/containers.md) into
# rootfs.vhd: crun and every package its shared-library closure comes from, into
# <source>/.cache/debs (or $1). tools/mkbootfiles.sh unpacks them and copies crun plus the
# libraries that `readelf -d` says it needs; a library it cannot find names its soname. Packages
# already there (any version) are not fetched again. Called by the setup script, never by the
# build (the build has no network).
set -eu

# crun 1.8.1's NEEDED closure on Debian 12: libsystemd0 brings libgcrypt20 (-> libgpg-error0),
# liblzma5, libzstd1, liblz4-1 and libcap2; libc6 has the loader.
PACKAGES="crun libyajl2 libseccomp2 libcap2 libsystemd0 libgcrypt20 libgpg-error0 liblzma5
libzstd1 liblz4-1 libc6"

top=$(cd "$(dirname "$0")/.." && pwd)
dest=${1:-$top/.cache/debs}

command -v apt-get >/dev/null ||
    { echo "fetch-crun: apt-get not found (Debian host needed)" >&2; exit 1; }
mkdir -p "$dest"
missing=
for pkg in $PACKAGES; do
    ls "$dest/${pkg}_"*.deb >/dev/null 2>&1 || missing="$missing $pkg"
done
if [ -z "$missing" ]; then
    echo "fetch-crun: all packages already present in $dest"
    exit 0
fi
echo "fetch-crun: downloading$missing into $dest"
# shellcheck disable=SC2086 # word splitting of the list is intended
(cd "$dest" && apt-get download $missing)

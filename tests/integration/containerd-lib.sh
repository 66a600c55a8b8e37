# shellcheck shell=bash
# A private containerd 1.6 for uvm-runtime's tests and bench/ctr (containerd-oci.md §1): its own
# root, state and sockets under $T, no systemd, no CRI; and local/busybox:latest, an OCI image
# made from busybox-static and imported (no registry). Sourced; the caller sets T (a fresh
# directory with a short path: containerd's socket paths live under it).
#   ctrd_rootfs DIR      a busybox root file system in DIR
#   ctrd_start           start containerd, import the image; 1 on failure (log printed)
#   ctrd_stop            remove every task and container, stop containerd, detach mounts under
#                        $T, remove $T and what containerd left under /run/containerd
#   c ARGS               ctr against it
CTRD_IMG=local/busybox:latest
ctrd_pid=
ctrd_run_entries() { # what is in /run/containerd/{fifo,s}, as fifo/N s/SHA
    local d f
    for d in fifo s; do
        for f in $(ls -A "/run/containerd/$d" 2>/dev/null); do echo "$d/$f"; done
    done
}
ctrd_run_before=$(ctrd_run_entries)
ctrd_run_existed=$([ -d /run/containerd ] && echo 1)

c() { ctr --address "$T/c.sock" "$@"; }

ctrd_umount_below() { # lazily detach every mount at or below $1, deepest first
    awk -v p="$1" '$5 == p || index($5, p "/") == 1 {print $5}' /proc/self/mountinfo |
        sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
}

ctrd_rootfs() {
    local r=$1 a
    mkdir -p "$r"/{bin,proc,dev,sys,tmp,etc,root,run}
    cp "$(command -v busybox)" "$r/bin/busybox"
    for a in $("$r/bin/busybox" --list); do [ "$a" = busybox ] || ln -s busybox "$r/bin/$a"; done
    chmod 1777 "$r/tmp"
    echo 'root:x:0:0:root:/root:/bin/sh' >"$r/etc/passwd"
    echo 'root:x:0:' >"$r/etc/group"
}

# The OCI layout of an image with one uncompressed layer (the directory $1), as a tar ($2).
ctrd_image_tar() {
    python3 - "$1" "$2" "$CTRD_IMG" <<'PY'
import hashlib, io, json, os, sys, tarfile
root, out, name = sys.argv[1:]
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
    for e in sorted(os.listdir(root)):
        t.add(os.path.join(root, e), arcname=e)
layer = buf.getvalue()
def blob(b): return "sha256:" + hashlib.sha256(b).hexdigest()
config = json.dumps({"architecture": "amd64", "os": "linux",
    "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
               "Cmd": ["/bin/sh"]},
    "rootfs": {"type": "layers", "diff_ids": [blob(layer)]}}).encode()
manifest = json.dumps({"schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
               "digest": blob(config), "size": len(config)},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": blob(layer), "size": len(layer)}]}).encode()
index = json.dumps({"schemaVersion": 2, "manifests": [{
    "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": blob(manifest),
    "size": len(manifest), "annotations": {"io.containerd.image.name": name}}]}).encode()
with tarfile.open(out, "w") as t:
    def add(path, data):
        i = tarfile.TarInfo(path); i.size = len(data); t.addfile(i, io.BytesIO(data))
    add("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
    add("index.json", index)
    for b in (layer, config, manifest):
        add("blobs/sha256/" + hashlib.sha256(b).hexdigest(), b)
PY
}

ctrd_start() {
    local n=150
    mkdir -p "$T"/{root,state}
    cat >"$T/cfg.toml" <<EOF
version = 2
root = "$T/root"
state = "$T/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$T/c.sock"
[ttrpc]
  address = "$T/c.sock.ttrpc"
EOF
    ( # a clean fd table: inherited descriptors would reach every runtime call
        for fd in /proc/self/fd/*; do
            fd=${fd##*/}
            [ "$fd" -gt 2 ] 2>/dev/null && eval "exec $fd>&-" 2>/dev/null
        done
        exec setsid containerd --config "$T/cfg.toml" </dev/null >"$T/containerd.log" 2>&1
    ) &
    ctrd_pid=$!
    until c version >/dev/null 2>&1; do
        if ((n-- == 0)) || ! kill -0 "$ctrd_pid" 2>/dev/null; then
            echo "containerd did not start:"
            cat "$T/containerd.log"
            return 1
        fi
        sleep 0.2
    done
    ctrd_rootfs "$T/image-root"
    ctrd_image_tar "$T/image-root" "$T/busybox-oci.tar"
    c image import "$T/busybox-oci.tar" >/dev/null || { echo "image import failed"; return 1; }
}

ctrd_stop() {
    local ids id f
    if [ -n "$ctrd_pid" ]; then
        ids=$(c task ls -q 2>/dev/null)
        for id in $ids; do c task kill -s SIGKILL "$id" >/dev/null 2>&1; done
        for id in $ids; do c task delete -f "$id" >/dev/null 2>&1; done
        for id in $(c container ls -q 2>/dev/null); do c container rm "$id" >/dev/null 2>&1; done
        kill "$ctrd_pid" 2>/dev/null
        wait "$ctrd_pid" 2>/dev/null
    fi
    ctrd_umount_below "$T"
    rm -rf "$T"
    # what containerd 1.6 leaves under /run/containerd even with a private root and state
    for f in $(ctrd_run_entries); do
        case " $(echo $ctrd_run_before) " in *" $f "*) ;; *) rm -rf "/run/containerd/$f" ;; esac
    done
    if [ -z "$ctrd_run_existed" ]; then rm -rf /run/containerd; fi
}

#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# tools/timeline-check.sh UVMCTL BOOT_FILES: `uvmctl run --timeline` end to end, for a cold
# VM and for a clone:
#   - the JSON has the phases in order (create, QEMU spawned, QMP ready, firmware, guest kernel,
#     /init, command, teardown; a clone: the template's restore instead of firmware and kernel),
#     each ending after it starts, and its boot phases are the library's timings
#     (library_timings_us) placed at start_ms, to the microsecond;
#   - the SVG renders in a browser: headless Chromium takes a screenshot, and the picture has
#     the bars' colours (a broken SVG shows an error page or nothing).
# Exits 77 (skip) without Chromium. Needs root (VMs), python3.
set -eu
uvmctl=$1
export UVM_BOOT_FILES_PATH=$2
command -v chromium >/dev/null || { echo "SKIP: chromium is not installed"; exit 77; }
tmp=$(mktemp -d /tmp/uvm-timeline-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
export UVM_RUNTIME_DIR="$tmp/run"

"$uvmctl" run --timeline "$tmp/cold.json" -- true
"$uvmctl" run -v --timeline "$tmp/verbose.json" -- true 2>/dev/null
"$uvmctl" run --timeline "$tmp/cold.svg" -- sh -c 'echo hello >/dev/null'
"$uvmctl" template create "$tmp/tpl"
"$uvmctl" run --template "$tmp/tpl" --timeline "$tmp/clone.json" -- true
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1400,300 \
    --screenshot="$tmp/cold.png" "file://$tmp/cold.svg" >/dev/null 2>&1

python3 - "$tmp" <<'PY'
import json, struct, sys, zlib
tmp = sys.argv[1]

def check(name, want):
    t = json.load(open(f"{tmp}/{name}.json"))
    names = [p["name"] for p in t["phases"]]
    pos = 0
    for w in want:  # in this order, each once
        hits = [i for i, n in enumerate(names) if n.startswith(w)]
        assert len(hits) == 1, f"{name}: phase '{w}' in {names}"
        assert hits[0] >= pos, f"{name}: phase '{w}' out of order in {names}"
        pos = hits[0]
    for p in t["phases"]:
        assert 0 <= p["start_ms"] <= p["end_ms"] <= t["total_ms"] + 1e-6, f"{name}: {p}"
    lib, s = t["library_timings_us"], t["start_ms"]
    at = lambda key: s + lib[key] / 1000.0
    ph = {p["name"]: p for p in t["phases"]}
    def near(a, b, what):
        assert abs(a - b) < 0.002, f"{name}: {what}: {a} != {b}"
    near(ph["QEMU spawned (jailed)"]["end_ms"], at("spawn"), "spawn")
    near(ph["QEMU up, QMP ready"]["end_ms"], at("qmp_ready"), "qmp_ready")
    if t["clone"]:
        near(ph["template state loaded, vCPUs running"]["end_ms"], at("restore"), "restore")
        last = "agent: negotiate + resume (clock, entropy, hostname)"
    else:
        near(ph["guest kernel (guest clock)"]["start_ms"], at("kernel_start"), "kernel_start")
        near(ph["guest kernel (guest clock)"]["end_ms"], at("guest_init"), "guest_init")
        last = "/init (agent) -> agent ready"
    near(ph[last]["end_ms"], at("agent_ready"), "agent_ready")
    print(f"{name}: {len(names)} phases in order, boot phases = library timings; "
          f"total {t['total_ms']:.0f} ms")

check("cold", ["create", "QEMU spawned", "QEMU up", "QEMU init + firmware", "guest kernel",
               "/init", "command: true", "teardown"])
check("clone", ["create", "QEMU spawned", "QEMU up", "template state loaded", "agent:",
                "command: true", "teardown"])

# -v: the guest kernel's milestones from its log, on its clock: inside the kernel's phase.
t = json.load(open(f"{tmp}/verbose.json"))
marks = [p for p in t["phases"] if p["kind"] == "printk"]
lib, s = t["library_timings_us"], t["start_ms"]
assert len(marks) >= 3, f"verbose: kernel milestones {marks}"
for p in marks:
    assert s + lib["kernel_start"] / 1e3 <= p["start_ms"] <= s + lib["agent_ready"] / 1e3, p
print(f"verbose: {len(marks)} kernel milestones inside the guest's boot")

# The screenshot: decode the PNG (8-bit RGB or RGBA, filter types 0-4) and look for the bars.
data = open(f"{tmp}/cold.png", "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "no PNG"
pos, idat, hdr = 8, b"", None
while pos < len(data):
    n, kind = struct.unpack(">I4s", data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + n]
    if kind == b"IHDR":
        hdr = struct.unpack(">IIBBBBB", body)
    elif kind == b"IDAT":
        idat += body
    pos += 12 + n
w, h, depth, ctype = hdr[0], hdr[1], hdr[2], hdr[3]
assert depth == 8 and ctype in (2, 6), f"PNG type {ctype}/{depth}"
bpp = 3 if ctype == 2 else 4
raw, stride = zlib.decompress(idat), w * bpp
rows, prev = [], bytearray(stride)
for y in range(h):
    f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
    for i in range(stride):
        a = line[i - bpp] if i >= bpp else 0
        b, c = prev[i], prev[i - bpp] if i >= bpp else 0
        if f == 1: line[i] = (line[i] + a) & 255
        elif f == 2: line[i] = (line[i] + b) & 255
        elif f == 3: line[i] = (line[i] + (a + b) // 2) & 255
        elif f == 4:
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    rows.append(line)
    prev = line
colours = {"boot": (0x4a, 0x7f, 0xc1), "guest": (0x59, 0xa1, 0x4f), "command": (0xb6, 0x5f, 0xa5)}
found = {k: 0 for k in colours}
for line in rows:
    for x in range(0, stride, bpp):
        px = tuple(line[x:x + 3])
        for k, c in colours.items():
            if all(abs(px[j] - c[j]) <= 3 for j in range(3)):
                found[k] += 1
assert all(n > 20 for n in found.values()), f"bars not rendered: {found}"
print(f"cold.svg rendered by Chromium ({w}x{h}): bar pixels {found}")
PY
echo "timeline-check: ok"

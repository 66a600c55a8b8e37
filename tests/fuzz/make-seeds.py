#!/usr/bin/env python3
# Writes the seed inputs of the fuzz targets (corpus/<target>/seed-*). The corpora also hold
# inputs that once found a bug (regress-*, kept by hand): this script never touches those.
# Usage: tests/fuzz/make-seeds.py   (from anywhere; rewrites every seed-* file)
import hashlib
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))

REQ = {"exec": 0x10100501, "wait": 0x10100601, "signal": 0x10100701, "props": 0x10100901,
       "modify": 0x10100a01, "negotiate": 0x10100b01}
LOG, DATA, ACK = 0x30100201, 0x40100101, 0x40100201


def resp(t):
    return (t & 0x0fffffff) | 0x20000000


def frame(t, ident, payload=b""):
    if isinstance(payload, str):
        payload = payload.encode()
    return struct.pack("<IIQ", t, 16 + len(payload), ident) + payload


def j(obj):
    return json.dumps(obj, separators=(",", ":"))


def write(target, seeds):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    for f in os.listdir(d):
        if f.startswith("seed-"):
            os.unlink(os.path.join(d, f))
    for s in seeds:
        if isinstance(s, str):
            s = s.encode()
        name = "seed-" + hashlib.sha1(s).hexdigest()[:16]
        with open(os.path.join(d, name), "wb") as f:
            f.write(s)


# sanitize: flags, 2 bytes of room, text
texts = [b"plain ascii", "caf\u00e9 \u65e5\u672c \U0001f600".encode(), b"\x1b[31mred\x1b[0m",
         b"\xc2\x9b2J csi", "a\u202eevil\u202c b\u2028c\u2066".encode(), b"\xc0\xaf\xe0\x80\xaf",
         b"\xed\xa0\x80\xf4\x90\x80\x80", b"line1\r\nline2\n\tx", b"nul\x00byte\x7f", b"\xe2\x82",
         b"\xf0\x9f\x98", b"\xff\xfe\x80\xbf"]
write("sanitize", [bytes([f, r & 255, r >> 8]) + t for t in texts for f, r in ((0, 4095), (1, 5))])

# agent-frames: a selector byte, then frames
frames = [frame(resp(REQ["exec"]), 1, j({"Result": 0, "ProcessId": 7})),
          frame(LOG, 0, j({"level": "info", "msg": "hi"})), frame(DATA, 5, b"out"),
          frame(DATA, 5), frame(ACK, 4), frame(REQ["modify"], 9, "{}")]
write("agent-frames", [bytes([0x10]) + b"".join(frames), bytes([0x80]) + b"".join(frames),
                       bytes([1]) + frames[0][:20], bytes([3]) + struct.pack("<IIQ", ACK, 17, 4),
                       bytes([2]) + struct.pack("<IIQ", DATA, 16 + 65537, 5),
                       bytes([7]) + struct.pack("<IIQ", 0x99999999, 16, 1),
                       bytes([5]) + struct.pack("<IIQ", DATA, 15, 1)])

# agent-host: flags, call types, stdin chunks, clock step, then the guest's bytes
neg = j({"Result": 0, "Version": 4, "Capabilities": {"GuestDefinedCapabilities": {}}})
host = [
    bytes([0x02, 0, 0, 0]) + frame(resp(REQ["exec"]), 1, j({"Result": 0, "ProcessId": 3})),
    bytes([0x06, 0x24, 0, 0]) + frame(resp(REQ["wait"]), 2, j({"Result": 0, "ExitCode": 1}))
    + frame(resp(REQ["exec"]), 1, j({"Result": -2147467259, "ErrorMessage": "no \x1b[2J such"})),
    bytes([0x02, 3, 0, 0]) + frame(resp(REQ["negotiate"]), 1, neg) + frame(resp(REQ["negotiate"]), 2, neg),
    bytes([0x02, 0, 0, 0]) + frame(resp(REQ["wait"]), 1, "[]") + frame(resp(REQ["exec"]), 1, "{"),
    bytes([0x08, 0, 2, 0]) + frame(DATA, 5, b"hello") + frame(DATA, 6, b"err") + frame(ACK, 4)
    + frame(ACK, 4) + frame(DATA, 5) + frame(DATA, 6),
    bytes([0x38, 0, 3, 0]) + b"".join(frame(DATA, 5, bytes([65 + i]) * 300) for i in range(6)),
    bytes([0x48, 0, 1, 0]) + frame(DATA, 5, b"x") + frame(DATA, 9, b"unknown") + frame(ACK, 77),
    bytes([0x81, 0, 0, 5]) + b"".join(frame(LOG, 0, j({"level": "error", "msg": "m%d\x1b" % i}))
                                      for i in range(130)),
    bytes([0x00, 0, 0, 0]) + frame(LOG, 0, '{"level":7}') + frame(REQ["exec"], 1, "{}")
    + frame(0x12345678, 1),
    bytes([0x00, 0, 0, 0]) + struct.pack("<IIQ", DATA, 1 << 21, 5),
    bytes([0x08, 0, 0, 0]) + frame(DATA, 5, b"a") + frame(DATA, 5) + frame(DATA, 5, b"late")
    + frame(DATA, 4, b"stdin is ours"),
    bytes([0x5a, 1, 3, 0]) + frame(DATA, 6, b"e" * 70000)[:30000],
]
write("agent-host", host)

# agent-answers: which (0 negotiate, 1 exec, 2 wait, 3 container list, 4 all), then the payload
ans = [bytes([0]) + neg.encode(),
       bytes([0]) + j({"Result": 0, "Version": 4, "GuestTimes": {"InitStartUs": 10, "ReadyUs": 90}}).encode(),
       bytes([1]) + j({"Result": 0, "ProcessId": 42}).encode(),
       bytes([2]) + j({"Result": 0, "ExitCode": 255}).encode(),
       bytes([2]) + j({"Result": 0, "ExitCode": -1}).encode(),
       bytes([4]) + j({"Result": 1, "ErrorMessage": "bad\u0085"}).encode(),
       bytes([0x13]) + j({"Result": 0}).encode(), bytes([0x21]) + j({"Result": 0, "ProcessId": 1}).encode(),
       bytes([3]) + j({"Result": 0, "Properties": {"ContainerList": [{"Id": "c1", "State": "running", "InitProcessId": 42}, {"Id": "c-2", "State": "being created", "InitProcessId": 0}]}}).encode(),
       bytes([3]) + j({"Result": 0, "Properties": {"ContainerList": [{"Id": "c1\u001b[2J", "State": "running\u009b", "InitProcessId": 1}]}}).encode()]
write("agent-answers", ans)

# qmp: op count, ops, then the peer's bytes
greet = b'{"QMP":{"version":{"qemu":{"major":7,"minor":2,"micro":0}},"capabilities":[]}}\r\n'
ok = lambda n: ('{"return":{},"id":"uvm-%d"}\r\n' % n).encode()
ev = lambda d: ('{"event":"DEVICE_DELETED","data":%s,"timestamp":{"seconds":1,"microseconds":2}}\r\n' % j(d)).encode()
qmp = [
    bytes([0, 5]) + greet + ok(1) + b'{"return":{"status":"running"},"id":"uvm-2"}\r\n',
    bytes([1, 0, 1]) + greet + ok(1) + ev({"device": "dev0"}) + ok(2) + ev({"path": "/machine/peripheral/dev0/virtio-backend"}) + ev({"device": "dev0", "path": "/machine/peripheral/dev0"}),
    bytes([0, 7]) + greet + ok(1) + ok(2) + ev({"device": "dev0"}),
    bytes([0, 2]) + greet + ok(1) + b'{"return":{"fdset-id":7},"id":"uvm-2"}\r\n{"error":{"class":"GenericError","desc":"no"},"id":"uvm-3"}\r\n' + ok(4),
    bytes([1, 3, 6]) + greet + ok(1) + b'{"event":"SHUTDOWN","data":{"guest":true}}\r\n',
    bytes([0, 4]) + greet + b'{"return":{}}\r\n{"error":{"class":"GenericError","desc":"x"}}\r\n',
    bytes([0, 5]) + greet + ok(1) + b'{"return":{},"id":"uvm-9"}\r\nnot json\r\n',
    bytes([0, 5]) + b'{"nope":1}\r\n',
    bytes([0, 5]) + greet + ok(1) + b"x" * 3000,
    bytes([0, 5]) + greet + ok(1) + b'{"event":"SHUTDOWN"}\r\n' * 300 + ok(2),
    bytes([1, 5, 0]) + greet + ok(1) + ev({"path": "/machine/peripheral/dev0/virtio-backend"})
    + ev({"path": "/machine/peripheral/dev01"}) + ok(2) + ok(3),
    bytes([0, 5]) + greet + ok(1) + b"[1]\r\n",
    bytes([1, 12, 12]) + greet + ok(1) + b'{"return":{"fdset-id":3,"fd":25},"id":"uvm-2"}\r\n'
    + b'{"return":{"fdset-id":4},"id":"uvm-3"}\r\n' + ok(4),
]
write("qmp", qmp)

# guest-request: type (0 exec, 1 modify, 2 create container, 3 resize console, 4 wait,
# 5 negotiate, 6 signal, 7 properties, 8 quiesce, 9 resume), then the payload
def modify(rt, settings, rq="Add"):
    return bytes([1]) + j({"Request": {"ResourceType": rt, "RequestType": rq, "Settings": settings}}).encode()

greq = [
    bytes([0]) + j({"Settings": {"ProcessParameters": {"CommandArgs": ["sh", "-c", "echo hi"], "Environment": {"PATH": "/bin", "A": "1"}, "WorkingDirectory": "/tmp", "CreateStdInPipe": True, "CreateStdOutPipe": True, "NetworkNamespace": "ns1"}, "StdioHandle": 3}, "ActivityId": "a", "ContainerId": "c"}).encode(),
    bytes([0]) + j({"Settings": {"ProcessParameters": {"CommandArgs": ["x"], "Environment": {"A=B": "1"}}}}).encode(),
    modify("Network", {"NamespaceId": "ns1", "ID": "ep", "MacAddress": "52-54-00-AB-CD-EF", "IfName": "eth0", "IPAddress": "10.0.0.2", "PrefixLength": 24, "GatewayAddress": "10.0.0.1", "DNSServerList": "1.1.1.1, 8.8.8.8"}),
    modify("Network", {"NamespaceId": "ns1", "MacAddress": "52:54:00:ab:cd:ef", "IfName": "eth0", "IPAddress": "fd00::2", "PrefixLength": 64, "GatewayAddress": "fd00::1", "DNSServerList": "fd00::53"}),
    modify("MappedDirectory", {"MountPath": "/mnt/share", "ShareName": "s0123abcd", "Port": 564, "ReadOnly": True}),
    modify("MappedDirectory", {"MountPath": "/run/plan9/x", "ShareName": "s1"}, "Remove"),
    modify("VirtioFs", {"Tag": "fs0", "MountPath": "/mnt/fs", "ReadOnly": False, "Options": "dax,cache=auto"}),
    modify("VirtioFs", {"Tag": "fs0", "MountPath": "/mnt/fs", "Options": "source=/etc", "Lazy": True}, "Remove"),
    modify("CombinedLayers", {"ContainerRootPath": "/run/c/rootfs", "Layers": [{"Path": "/run/l/0"}, {"Path": "/run/l/1"}], "ScratchPath": "/run/s"}),
    modify("MappedVirtualDisk", {"MountPath": "/run/d", "Lun": 1, "Controller": 0, "ReadOnly": True}),
    modify("Network", {"NamespaceId": "..", "MacAddress": "01:00:00:00:00:00", "IfName": "a/b"}, "Update"),
    bytes([1]) + b'{"Request":{"ResourceType":"VirtioFs","RequestType":"Remove","Settings":null}}',
    bytes([4]) + j({"ProcessId": 5, "TimeoutInMs": 100}).encode(),
    bytes([5]) + j({"MinimumVersion": 4, "MaximumVersion": 4}).encode(),
    bytes([0]) + j({"Settings": {"ProcessParameters": {"CommandArgs": ["sh"], "EmulateConsole": True, "ConsoleSize": [24, 80], "CreateStdOutPipe": True}, "StdioHandle": 2}}).encode(),
    bytes([2]) + j({"ContainerId": "c1", "ContainerConfig": j({"OciBundlePath": "/run/gcs/c/c1", "OciSpecification": {"ociVersion": "1.0.0", "process": {"args": ["sh", "-c", "echo hi"], "cwd": "/"}, "root": {"path": "/run/gcs/c/c1/rootfs"}, "linux": {"namespaces": [{"type": "pid"}, {"type": "network", "path": "/run/netns/n1"}, {"type": "mount"}]}}, "StdioHandle": 9, "CreateStdInPipe": True, "CreateStdOutPipe": True})}).encode(),
    bytes([0]) + j({"ContainerId": "c1", "Settings": {"ProcessParameters": {"OCIProcess": {"args": ["ls"], "cwd": "/"}, "CreateStdOutPipe": True}, "StdioHandle": 8}}).encode(),
    bytes([0]) + j({"ContainerId": "c1", "Settings": {"ProcessParameters": {}}}).encode(),
    bytes([3]) + j({"ProcessId": 7, "Height": 50, "Width": 132}).encode(),
    bytes([6]) + j({"ProcessId": 7, "Options": {"Signal": 9}}).encode(),
    bytes([7]) + j({"Query": {"PropertyTypes": ["ProcessList"]}}).encode(),
    bytes([1]) + b'{"Request":{"ResourceType":"x","ResourceType":"y"}}',
    bytes([8]) + j({"ActivityId": "a"}).encode(),
    bytes([9]) + j({"Hostname": "uvm-3f2a.clone", "Entropy": "0123456789abcdefABCDEF" * 4, "RealTimeUs": 1796300000000000}).encode(),
    bytes([9]) + j({"Hostname": ".x", "Entropy": "abc", "RealTimeUs": -1, "ContainerId": "c"}).encode(),
]
write("guest-request", greq)

# guest-stream: operations (op, proc, 2 bytes of length)
def op(code, proc=0, idx=0, ln=0):
    return bytes([code | (idx << 4), proc, ln >> 8, ln & 255])

gs = [
    op(0) + op(1, 0, 0, 100) + op(4, 0, 1, 50) + op(8) + op(3, 0, 1) + op(6, 0, 0, 200) + op(5, 0, 1) + op(8) + op(9),
    op(0) + b"".join(op(1, 0, 0, 70) for _ in range(6)) + op(8) + op(6, 0, 0, 4096) + op(2) + op(8),
    op(0) + op(7) + op(1, 0, 0, 10) + op(8) + op(1, 0, 0, 10) + op(9),
    op(0) + op(0) + op(4, 1, 0, 65535) + op(4, 1, 0, 65535) + op(8) + op(8) + op(3, 1, 1) + op(8) + op(5, 1, 0) + op(5, 1, 1) + op(9, 1),
    op(0) + op(1, 0, 1, 5) + op(3, 0, 0) + op(1, 0, 3, 5) + op(3, 0, 3) + op(2, 0, 0) + op(1, 0, 0, 5),
]
write("guest-stream", gs)

# image: flags, 2 bytes of gap (KiB), then the file
def qcow2(version=3, backing=b"", incompat=0):
    h = bytearray(112)
    h[0:4] = b"QFI\xfb"
    struct.pack_into(">I", h, 4, version)
    if backing:
        struct.pack_into(">QI", h, 8, 112, len(backing))
    struct.pack_into(">Q", h, 72, incompat)
    return bytes(h) + backing

footer = b"conectix" + bytes(504)
img = [bytes([0, 0, 0]) + qcow2(), bytes([0, 0, 0]) + qcow2(3, b"/etc/\x1bshadow"),
       bytes([0, 0, 0]) + qcow2(3, incompat=4), bytes([0, 0, 0]) + qcow2(2, b"base.qcow2"),
       bytes([0, 0, 0]) + b"vhdxfile" + bytes(100), bytes([0, 0, 0]) + footer + bytes(1024),
       bytes([1, 2, 0]) + bytes(600) + footer, bytes([0, 0, 0]) + bytes(4096),
       bytes([1, 0, 0]) + footer]
write("image", img)

# vm-argv: configuration byte, then the additional JSON
argv = [bytes([0]) + b"{}", bytes([1]) + b'{"VirtualMachine":{"ComputeTopology":{"Memory":{"SizeInMB":1024}}}}',
        bytes([0x18]) + j({"VirtualMachine": {"Devices": {"VirtualPMem": {"MaximumCount": 3, "Devices": {"0": {"HostPath": "a,b"}}}}}}).encode(),
        bytes([0x61]) + j({"VirtualMachine": {"Devices": {"VirtualPMem": {"Devices": {"0": {"HostPath": "mem-path=z,"}}}, "VideoMonitor": {}}}}).encode(),
        bytes([0x06]) + j({"VirtualMachine": {"Devices": {"Scsi": {"0": {}, "1": {}, "x,y": {}}}, "Chipset": {"LinuxKernelDirect": {"KernelFilePath": "/k,id=x", "InitRdPath": "-device", "KernelCmdLine": "a,b -- c"}}}}).encode(),
        bytes([0x80]) + j({"VirtualMachine": {"ComputeTopology": {"Memory": {"Backing": "Physical"}, "Processor": {"Count": 255}}, "Devices": {"ComPorts": {"0": {"NamedPipe": "/x,y"}}}}}).encode(),
        bytes([0x01]) + j({"VirtualMachine": {"Devices": {"VirtualPMem": {"Devices": {"0": {"HostPath": ",id=evil"}}}}}}).encode(),
        bytes([0]) + b'{"VirtualMachine":null,"Owner":[1]}', bytes([0]) + b"[1]", bytes([0]) + b'{"a":1,"a":2}']
write("vm-argv", argv)

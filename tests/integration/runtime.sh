#!/bin/bash
# uvm-runtime under containerd 1.6's stock runc shim, driven with ctr as a user would
# (containerd-oci.md): a private containerd (own root, state, sockets; no systemd, no CRI), a
# busybox image made here from busybox-static and imported (no registry), each container in its
# own VM (rootfs.vhd, TCG). After every case nothing may be left: no holder, stub, QEMU or
# virtiofsd, the runtime root and the VMs' runtime directory empty, no mount, no container or
# task in containerd.
# Usage: runtime.sh UVM_RUNTIME BOOTFILES
set -u
RT=$(readlink -f "$1")
export UVM_BOOT_FILES_PATH=$(readlink -f "$2")
for cmd in containerd ctr containerd-shim-runc-v2 busybox python3 tmux; do
    if ! command -v $cmd >/dev/null; then
        echo "SKIP: $cmd is not installed (make setup installs containerd)"
        exit 77
    fi
done
T=$(mktemp -d /tmp/uvm-rt.XXXXXX) # short: containerd's socket paths live under it
R=$T/rr                           # --runc-root: the runtime's --root is $R/default
export UVM_RUNTIME_DIR=$T/uvm
export UVM_RUNTIME_TIMINGS=$T/timings
IMG=local/busybox:latest
fails=0
passes=0
. "$(dirname "$0")/containerd-lib.sh"

crun_() { c run --runc-binary "$RT" --runc-root "$R" "$@"; }
check() { # name, expected, actual
    if [ "$2" = "$3" ]; then
        echo "ok   $1"
        passes=$((passes + 1))
    else
        echo "FAIL $1: expected [$2], got [$3]"
        fails=$((fails + 1))
    fi
}
contains() { # name, needle, haystack
    case "$3" in
    *"$2"*) check "$1" 1 1 ;;
    *) check "$1" "text with '$2'" "$3" ;;
    esac
}
# until_true SECONDS CMD...: poll CMD every 0.2 s; a bound for a failure, not a timing check
until_true() {
    local n=$(($1 * 5))
    shift
    while ((n-- > 0)); do
        "$@" && return 0
        sleep 0.2
    done
    return 1
}
# ---- terminals: ctr under tmux (send-keys, capture-pane, resize-window) ----
TM="uvm-rt-$$"
t() { tmux -L "$TM" "$@"; }
# seen NAME SESSION REGEX: wait until a line of the pane matches (polled at most 300 times, 0.2 s
# apart: a bound for a failure, not a timing check); quiet: no check counted
seen() {
    local i=0
    while [ $i -lt 300 ]; do
        t capture-pane -p -t "$2" 2>/dev/null | grep -Eq "$3" && return 0
        sleep 0.2
        i=$((i + 1))
    done
    return 1
}
# The guest side of a terminal case: its tty, the outer size once it arrived (ctr sends it
# after the start, as with runc), then exit 7 at the next window change, printing the new size.
TTY_SCRIPT='tty; while [ "$(stty size)" = "0 0" ]; do sleep 0.1; done; stty size; trap "stty size; exit 7" WINCH; echo ready; while :; do sleep 0.2; done'
# tty_case NAME CTR-ARGS...: ctr ARGS sh -c TTY_SCRIPT in a 100x30 window, resized to 120x40
tty_case() {
    local name=$1
    shift
    printf '%q ' ctr --address "$T/c.sock" "$@" sh -c "$TTY_SCRIPT" >"$T/$name.sh"
    printf '\necho "status=$?"\nexec sleep 1000\n' >>"$T/$name.sh"
    t new-session -d -s "$name" -x 100 -y 30 "sh $T/$name.sh"
    seen "$name" "$name" '^ready$'
    check "$name: tty names a pts" 1 "$(t capture-pane -p -t "$name" | grep -cE '^/dev/pts/[0-9]+$')"
    check "$name: the outer size" 1 "$(t capture-pane -p -t "$name" | grep -c '^30 100$')"
    t resize-window -t "$name" -x 120 -y 40
    seen "$name" "$name" '^status='
    check "$name: a resize reaches the guest" 1 "$(t capture-pane -p -t "$name" | grep -c '^40 120$')"
    check "$name: its exit status" 1 "$(t capture-pane -p -t "$name" | grep -c '^status=7$')"
    t kill-session -t "$name"
}

cleanup() {
    t kill-server 2>/dev/null
    ctrd_stop
    pkill -9 -f -- "--root $R/" 2>/dev/null # holders and stubs of a failed run
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

rootfs=$T/rootfs
ctrd_rootfs "$rootfs"
ctrd_start || exit 1

# ---- what must be left after every case: nothing ----
vm_procs() { pgrep -f 'qemu-system.* -name guest=[A-Za-z0-9_.-]*-[0-9a-f]{16},' | wc -l; }
live() { # pids of pgrep "$@" that are not zombies (reaped later by whoever adopted them)
    local p st
    for p in $(pgrep "$@"); do
        st=$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null)
        [ -n "$st" ] && [ "$st" != Z ] && echo "$p"
    done
}
leftovers() {
    local holders stubs qemus vfs rdir mounts ctrs tasks
    holders=$(live -x uvm-rt-holder | wc -l)
    stubs=$(live -x uvm-rt-stub | wc -l)
    qemus=$(vm_procs)
    vfs=$(pgrep -f "virtiofsd --socket-path=$UVM_RUNTIME_DIR/" | wc -l)
    rdir=$(ls -A "$R/default" "$UVM_RUNTIME_DIR" 2>/dev/null | grep -vc ':$\|^$')
    mounts=$(awk -v r="$R" -v u="$UVM_RUNTIME_DIR" -v s="$T/state" \
        'index($5, r) == 1 || index($5, u) == 1 || index($5, s) == 1' /proc/self/mountinfo | wc -l)
    ctrs=$(c container ls -q | wc -l)
    tasks=$(c task ls -q | wc -l)
    echo "holders=$holders stubs=$stubs qemu=$qemus virtiofsd=$vfs files=$rdir mounts=$mounts containers=$ctrs tasks=$tasks"
}
CLEAN="holders=0 stubs=0 qemu=0 virtiofsd=0 files=0 mounts=0 containers=0 tasks=0"
clean_after() { check "$1: nothing left" "$CLEAN" "$(leftovers)"; }
task_status() { c task ls | awk -v id="$1" '$1 == id {print $3}'; }
stopped() { [ "$(task_status "$1")" = STOPPED ]; }

# ---- foreground: output, stdio apart, stdin, exit codes ----
out=$(crun_ --rm $IMG c1 echo hello 2>"$T/err")
check "echo hello: rc" 0 $?
check "echo hello: stdout" hello "$out"
check "echo hello: nothing on stderr" "" "$(cat "$T/err")"
clean_after "echo hello"

out=$(crun_ --rm $IMG c2 sh -c 'echo out; echo err >&2; exit 3' 2>"$T/err")
check "exit 3 reaches ctr" 3 $?
check "stdout apart" out "$out"
check "stderr apart" err "$(cat "$T/err")"
clean_after "exit 3"

out=$(printf 'abc\n' | crun_ --rm $IMG c3 sh -c 'read x; echo got-$x')
check "stdin through ctr" got-abc "$out"
clean_after "stdin"

# ---- a terminal ----
tty_case tty-run run --rm -t --runc-binary "$RT" --runc-root "$R" $IMG t1
clean_after "run -t"

# ---- detached: exec, ps, signals to execs, TERM with a trap, SIGKILL; two VMs at once ----
crun_ -d $IMG c4 sh -c 'trap "exit 42" TERM; while :; do sleep 1; done' >/dev/null
crun_ -d $IMG c5 sleep 1000 >/dev/null
check "detached: task ls RUNNING" "RUNNING RUNNING" "$(task_status c4) $(task_status c5)"
check "two containers at once: two VMs" 2 "$(vm_procs)"
c task exec --exec-id e1 c4 sh -c 'exit 5'
check "exec exit 5" 5 $?
out=$(c task exec --exec-id e2 c4 sh -c 'echo exec-out; echo exec-err >&2' 2>"$T/err")
check "exec stdout" exec-out "$out"
check "exec stderr" exec-err "$(cat "$T/err")"
c task exec -d --exec-id e3 c4 sleep 500
check "task ps lists the init and the exec" 2 "$(c task ps c4 | tail -n +2 | grep -c '^ *[0-9]')"
check "exec sleep runs in the guest" 1 \
    "$(c task exec --exec-id e4 c4 sh -c 'ps -o args | grep -c "^sleep 500"')"
tty_case tty-exec task exec -t --exec-id t2 c4
# the runtime's own verbs on a running container, and its socket against garbage
st=$("$RT" --root "$R/default" state c4)
contains "state: running" '"status": "running"' "$st"
contains "state: the init's pid is the task's" "\"pid\": $(c task ls | awk '$1 == "c4" {print $2}')," "$st"
check "ps --format json: the stubs' pids" 2 "$("$RT" --root "$R/default" ps --format json c4 | tr ',' '\n' | grep -c '[0-9]')"
out=$("$RT" --root "$R/default" exec c4 sh -c 'echo direct; exit 7')
check "exec without --detach: its status" 7 $?
check "exec without --detach: its output" direct "$out"
python3 - "$R/default/c4/holder.sock" <<'PY'
import socket, struct, sys
for pkt in (b"", b"x" * 7, struct.pack("=IHHiI", 0x31524d55, 3, 0, 99, 0),
            struct.pack("=IHHiI", 0x31524d55, 7, 0, 1, 4) + b"../x", b"\xff" * 20000):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.connect(sys.argv[1])
    try:
        s.send(pkt)
        s.settimeout(12)
        s.recv(100)
    except OSError:
        pass
    s.close()
PY
out=$(c task exec --exec-id e8 c4 echo still-serving)
check "the holder refuses malformed messages and keeps serving" still-serving "$out"
c task kill --exec-id e3 -s SIGKILL c4
gone_e3() { [ "$(c task exec --exec-id e5$RANDOM c4 sh -c 'ps -o args | grep -c "^sleep 500"')" = 0 ]; }
until_true 30 gone_e3
check "a SIGKILLed exec leaves no process in the guest" 0 \
    "$(c task exec --exec-id e6 c4 sh -c 'ps -o args | grep -c "^sleep 500"')"
c task kill c4
until_true 60 stopped c4
check "TERM with a trap: STOPPED" STOPPED "$(task_status c4)"
c task kill -s SIGKILL c5
until_true 60 stopped c5
check "SIGKILL: STOPPED" STOPPED "$(task_status c5)"
out=$(c task kill c4 2>&1)
contains "kill of an exited container" "process already finished" "$out"
out=$(c task exec --exec-id e7 c4 true 2>&1)
contains "exec in an exited container is refused" "cannot exec in a stopped state" "$out"
out=$(c task delete c4 2>&1)
contains "TERM with a trap exits 42" "exit code 42" "$out"
out=$(c task delete c5 2>&1)
contains "SIGKILL exits 137" "exit code 137" "$out"
c container rm c4 c5
clean_after "detached"

# ---- the runtime itself: delete --force ----
mkdir -p "$R/default"
"$RT" --root "$R/default" delete --force nosuch
check "delete --force of an unknown id" 0 $?
"$RT" --root "$R/default" delete --force nosuch
check "and again" 0 $?
crun_ -d $IMG c6 sleep 1000 >/dev/null
"$RT" --root "$R/default" --log "$T/log.json" --log-format json delete --force c6
check "delete --force of a running container" 0 $?
check "its VM is gone" 0 "$(vm_procs)"
until_true 30 stopped c6
c task delete c6 >/dev/null 2>&1
c container rm c6
clean_after "delete --force"

# ---- errors reach the user through ctr ----
out=$(crun_ --rm $IMG c7 /bin/nosuch 2>&1)
check "missing executable fails" 1 "$([ $? -ne 0 ] && echo 1)"
contains "and ctr shows crun's text" "/bin/nosuch" "$out"
c container rm c7 >/dev/null 2>&1
clean_after "missing executable"

out=$(crun_ --rm --annotation io.libuvm.boot-files=/nonexistent $IMG c8 true 2>&1)
check "missing boot files fail" 1 "$([ $? -ne 0 ] && echo 1)"
contains "and ctr shows libuvm's text" "kernel '/nonexistent/kernel' not found" "$out"
c container rm c8 >/dev/null 2>&1
clean_after "missing boot files"

# ---- the VM or the holder killed: the task ends non-zero, delete still works ----
crun_ -d $IMG c9 sleep 1000 >/dev/null
pkill -9 -f 'qemu-system.* -name guest=c9-[0-9a-f]{16},'
until_true 60 stopped c9
check "QEMU killed: STOPPED" STOPPED "$(task_status c9)"
out=$(c task delete c9 2>&1)
contains "QEMU killed: non-zero exit" "exit code 255" "$out"
c container rm c9
clean_after "QEMU killed"

crun_ -d $IMG c10 sleep 1000 >/dev/null
for p in $(pgrep -x uvm-rt-holder); do
    case "$(tr '\0' ' ' </proc/$p/cmdline)" in *" c10 ") kill -9 "$p" ;; esac
done
until_true 60 stopped c10
check "holder killed: STOPPED" STOPPED "$(task_status c10)"
out=$(c task delete c10 2>&1)
contains "holder killed: non-zero exit" "exit code 255" "$out"
c container rm c10
clean_after "holder killed"

# ---- ctr run --rootfs DIR ----
out=$(crun_ --rm --rootfs "$rootfs" c11 sh -c 'echo from-dir; cat /etc/passwd')
check "--rootfs DIR" "from-dir
root:x:0:0:root:/root:/bin/sh" "$out"
clean_after "--rootfs"

echo "phase times (ms) of the holders:"
cat "$UVM_RUNTIME_TIMINGS" 2>/dev/null
echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]

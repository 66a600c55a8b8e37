#!/bin/sh
# uvmctl run -t as a user meets it, under tmux (send-keys, capture-pane): an interactive shell
# on the guest terminal (tty, stty size, a window resize, Ctrl-C), then SIGTERM to uvmctl (exit
# status 143, the local terminal's mode restored); and -t with a piped stdin.
# Usage: tty.sh UVMCTL BOOTFILES
set -u
uvmctl=$1
export UVM_BOOT_FILES_PATH=$2
if ! command -v tmux >/dev/null; then
    echo "SKIP: tmux is not installed"
    exit 77
fi
export UVM_RUNTIME_DIR="/tmp/uvm-tty-$$"
work="/tmp/uvm-tty-work-$$"
sock="uvm-tty-$$" # tmux -L: a server of our own
t() { tmux -L "$sock" "$@"; }
cleanup() {
    t kill-server 2>/dev/null
    rm -rf "$UVM_RUNTIME_DIR" "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
fails=0
check() { # name, expected, actual
    if [ "$2" = "$3" ]; then echo "ok   $1"; else echo "FAIL $1: expected [$2], got [$3]"; fails=$((fails + 1)); fi
}
pane() { t capture-pane -p -t uvm; }
# seen NAME REGEX: wait until a line of the pane matches (polled at most 240 times, 0.5 s
# apart: a bound for a failure, not a timing check).
seen() {
    i=0
    while [ $i -lt 240 ]; do
        if pane | grep -Eq "$2"; then
            echo "ok   $1"
            return 0
        fi
        sleep 0.5
        i=$((i + 1))
    done
    echo "FAIL $1: no line matches /$2/; the pane:"
    pane | sed 's/^/    | /'
    fails=$((fails + 1))
    return 1
}
mkdir -p "$work"

# The pane: its mode before, uvmctl (its pid for the kill below), its status, its mode after.
cat >"$work/pane.sh" <<PANE
stty -g >"$work/before"
sh -c 'echo \$\$ >"$work/pid"; exec "$uvmctl" run -t --memory 256 -- sh'
echo "status=\$?"
stty -g >"$work/after"
exec sleep 1000
PANE
t new-session -d -s uvm -x 100 -y 30 "sh $work/pane.sh"

if seen "a shell prompt on the guest terminal" '^/ #'; then
    t send-keys -t uvm 'tty; stty size' Enter
    seen "tty names a pts" '^/dev/pts/[0-9]+$'
    seen "stty size: the window's size at start" '^30 100$'

    # The window grows: SIGWINCH to uvmctl, a resize in the guest. It travels apart from the
    # keys, so ask again until it has landed.
    t resize-window -t uvm -x 120 -y 40
    i=0
    while [ $i -lt 20 ] && ! pane | grep -q '^40 120$'; do
        t send-keys -t uvm 'stty size' Enter
        sleep 1
        i=$((i + 1))
    done
    seen "stty size after the window grew" '^40 120$'

    # Ctrl-C reaches the guest's foreground job (the local terminal is raw). (No `clear` first:
    # keys typed ahead are echoed at once, and the clear that ran after them erased the echo.)
    t send-keys -t uvm 'sleep 100' Enter
    seen "sleep 100 started" '^/ # sleep 100$'
    t send-keys -t uvm C-c
    t send-keys -t uvm 'echo rc=$?' Enter
    seen "Ctrl-C interrupts sleep 100 (status 130)" '^rc=130$'
fi

# SIGTERM to uvmctl: the VM torn down, 143, and the terminal as it was.
if [ -s "$work/pid" ]; then
    kill -TERM "$(cat "$work/pid")"
    seen "uvmctl exits 143 on SIGTERM" 'status=143$'
    check "the terminal's mode is restored" "$(cat "$work/before")" "$(cat "$work/after" 2>/dev/null)"
else
    check "uvmctl started" yes no
fi
t kill-server

# -t with a stdin that is not a terminal: typed ahead, the exit status passes through.
out=$(printf 'echo A$((40+2))B; exit 3\n' | "$uvmctl" run -t --memory 256 -- sh 2>&1)
check "-t, piped stdin: the exit status" 3 $?
check "and the command's output" 1 "$(printf '%s\n' "$out" | tr -d '\r' | grep -c '^A42B$')"

echo "$fails failed"
[ "$fails" -eq 0 ]

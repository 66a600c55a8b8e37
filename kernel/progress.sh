# SPDX-License-Identifier: LGPL-2.1-or-later
# Sourced by kernel/build.sh: progress lines while a long step runs. It only prints, so it is
# not part of the kernel cache's key (editing it rebuilds nothing).
#
# progress_run LABEL COMMAND [ARG...]: run COMMAND in the background and, every PROGRESS_S
# seconds (default 20) until it ends, print "build-kernel: LABEL<progress_detail>, N s elapsed"
# (N since $start; progress_detail: a function the caller may define, printing e.g.
# ": 409 of about 1500 objects built (27 %)"). Returns COMMAND's status.
PROGRESS_S=${PROGRESS_S:-20}

progress_detail() { :; }

progress_run() {
    progress_label=$1
    shift
    "$@" &
    progress_pid=$!
    trap 'kill "$progress_pid" 2>/dev/null' EXIT INT TERM
    progress_waited=0
    while kill -0 "$progress_pid" 2>/dev/null; do
        sleep 1
        progress_waited=$((progress_waited + 1))
        if [ "$progress_waited" -ge "$PROGRESS_S" ]; then
            progress_waited=0
            echo "build-kernel: $progress_label$(progress_detail), $(($(date +%s) - start)) s" \
                "elapsed"
        fi
    done
    progress_status=0
    wait "$progress_pid" || progress_status=$?
    trap - EXIT INT TERM
    return "$progress_status"
}

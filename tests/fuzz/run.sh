#!/usr/bin/env bash
# Build the libFuzzer targets (once: a clang build folder of their own) and run each for a
# bounded time; exits non-zero on any crash, leak, timeout or out-of-memory (libFuzzer's own
# exit status), after printing the finding and where its input was saved.
#
# Usage: tests/fuzz/run.sh [--build DIR] [--seconds N] [--coverage] [TARGET...]
#   --build DIR   fuzz build folder (default build-fuzz; configured here when missing)
#   --seconds N   time per target (default 45)
#   --coverage    instead of fuzzing: the line coverage of the source files each target's
#                 corpus reaches (committed corpus + DIR/fuzz-corpus), from a build DIR-cov
#   TARGET        names as in tests/fuzz/corpus/ (default: all)
# Each target starts from tests/fuzz/corpus/<target> (seeds, and the inputs of past findings)
# plus DIR/fuzz-corpus/<target>, where what it discovers is kept between runs. A finding is
# saved as DIR/fuzz-artifacts/<target>-crash-... (or leak-, timeout-, oom-); replay it with
#   DIR/tests/fuzz/fuzz-<target> FILE
# One line per target: runs, executions per second, coverage, corpus size, peak RSS.
set -euo pipefail
cd "$(dirname "$0")/../.."

build=build-fuzz
seconds=45
coverage=0
targets=()
while (($#)); do
    case $1 in
    --build) build=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --coverage) coverage=1; shift ;;
    -h | --help) sed -n '2,18p' "$0"; exit 0 ;;
    *) targets+=("$1"); shift ;;
    esac
done
if ((${#targets[@]} == 0)); then
    for d in tests/fuzz/corpus/*/; do
        targets+=("$(basename "$d")")
    done
fi

if ((coverage)); then
    cov=$build-cov
    if [[ ! -f $cov/build.ninja ]]; then
        # (meson runs test programs: their profiles go nowhere)
        LLVM_PROFILE_FILE=/dev/null CC=clang meson setup "$cov" -Dfuzz=true -Dboot_files=false \
            -Dc_args="-fprofile-instr-generate -fcoverage-mapping" \
            -Dc_link_args=-fprofile-instr-generate
    fi
    ninja -C "$cov" $(printf 'tests/fuzz/fuzz-%s ' "${targets[@]}")
    for t in "${targets[@]}"; do
        mkdir -p "$build/fuzz-corpus/$t"
        LLVM_PROFILE_FILE="$cov/$t.profraw" "$cov/tests/fuzz/fuzz-$t" -runs=0 \
            "$build/fuzz-corpus/$t" "tests/fuzz/corpus/$t" >/dev/null 2>&1
        llvm-profdata merge -sparse "$cov/$t.profraw" -o "$cov/$t.profdata"
        echo "== $t: line coverage"
        llvm-cov report "$cov/tests/fuzz/fuzz-$t" -instr-profile="$cov/$t.profdata" |
            awk '$1 ~ /src\/.*\.c$/ && $10 + 0 > 0 { sub(".*/src/", "src/", $1); print "  " $1, $10 }'
    done
    exit 0
fi

if [[ ! -f $build/build.ninja ]]; then
    CC=clang meson setup "$build" -Dfuzz=true -Dboot_files=false
fi
ninja -C "$build" $(printf 'tests/fuzz/fuzz-%s ' "${targets[@]}")

# Per-target libFuzzer options: the QMP peer's bytes must fit in a socket buffer; the agent
# targets take frames of up to 64 KiB of stream data.
declare -A extra=(
    [qmp]="-max_len=65536"
    [agent-host]="-max_len=200000"
    [agent-frames]="-max_len=200000"
)

mkdir -p "$build/fuzz-artifacts"
status=0
for t in "${targets[@]}"; do
    exe=$build/tests/fuzz/fuzz-$t
    seeds=tests/fuzz/corpus/$t
    if [[ ! -x $exe || ! -d $seeds ]]; then
        echo "fuzz $t: no target $exe or no corpus $seeds" >&2
        status=1
        continue
    fi
    work=$build/fuzz-corpus/$t
    log=$build/fuzz-artifacts/$t.log
    mkdir -p "$work"
    dict=()
    [[ -f tests/fuzz/$t.dict ]] && dict=("-dict=tests/fuzz/$t.dict")
    rc=0
    # shellcheck disable=SC2086
    "$exe" -max_total_time="$seconds" -timeout=30 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$build/fuzz-artifacts/$t-" ${extra[$t]:-} "${dict[@]}" \
        "$work" "$seeds" >"$log" 2>&1 || rc=$?
    stat() { sed -n "s/^stat::$1: *//p" "$log" | tail -1; }
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2 || true) # none: died at once
    printf 'fuzz %-14s %3s s  %9s runs  %6s exec/s  cov %5s  corpus %5s  rss %4s MB  %s\n' \
        "$t" "$seconds" "$(stat number_of_executed_units)" "$(stat average_exec_per_sec)" \
        "${cov:-?}" "$(find "$work" "$seeds" -type f | wc -l)" "$(stat peak_rss_mb)" \
        "$( ((rc == 0)) && echo ok || echo "FAILED (exit $rc)")"
    if ((rc != 0)); then
        status=1
        grep -E -A30 '==[0-9]+==ERROR|property violated|ERROR: libFuzzer' "$log" | head -60 >&2
        grep -E 'Test unit written to' "$log" >&2 || true
        echo "fuzz $t: full log in $log" >&2
    fi
done
exit "$status"

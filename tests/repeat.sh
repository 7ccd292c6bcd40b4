#!/usr/bin/env bash
# Run the compression qtests again and again: flaky tests are what got the
# old implementation removed.  Usage:
#   tests/repeat.sh [RUNS] [JOBS]     (defaults: 200 runs, 1 job)
# PATHS (space separated migration-test paths) selects the tests; the
# default is every test of tests/qtest/migration/ram-compress-tests.c but
# the two rate-limit tests (10 s of measuring each, no race to find).
# SKIP (space separated paths) replaces that list of skipped tests.
# JOBS > 1 runs that many copies side by side (more load, more races).
# Stops at the first failure and keeps its log in build/logs/repeat/.  A
# run that takes longer than RUN_TIMEOUT seconds (default 900) is a failure.
set -uo pipefail
. "$(dirname "$0")/../scripts/lib.sh"
runs=${1:-200}
jobs=${2:-1}
paths=${PATHS:-$COMPRESS_QTESTS}
logs=$BUILD/logs/repeat
mkdir -p "$logs"
skip=${SKIP-"/x86_64/migration/precopy/unix/compress/rate-limit-2
             /x86_64/migration/precopy/unix/compress/rate-limit-8"}
args=()
for p in $paths; do args+=(-p "$p"); done
for p in $skip; do args+=(-s "$p"); done

pass=0 fail=0 started=0
t0=$(date +%s)
one() {         # one RUN-NUMBER: a whole run of the selected tests
    if timeout -k 10 "${RUN_TIMEOUT:-900}" \
            "$TOP/tests/qtest.sh" "$logs/run-$1.tap" "${args[@]}" >/dev/null 2>&1; then
        rm -f "$logs/run-$1.tap" "$logs/run-$1.log"
        return 0
    fi
    return 1
}
declare -A pids=()
while [ $((pass + fail)) -lt "$runs" ] && [ "$fail" = 0 ]; do
    while [ "${#pids[@]}" -lt "$jobs" ] && [ "$started" -lt "$runs" ]; do
        started=$((started + 1))
        one "$started" &
        pids[$!]=$started
    done
    wait -n -p done_pid; rc=$?
    n=${pids[$done_pid]}; unset "pids[$done_pid]"
    if [ $rc = 0 ]; then
        pass=$((pass + 1))
    else
        fail=$((fail + 1))
        echo "run $n FAILED: see $logs/run-$n.log"
    fi
    echo "repeat: run $n done, $pass passed, $fail failed, $(( $(date +%s) - t0 ))s"
done
wait
echo "repeat: $pass passed, $fail failed"
[ "$fail" = 0 ]

#!/usr/bin/env bash
# The whole test suite, from a fresh machine: dependencies, base, series,
# build, series verification, guest, migration qtests, e2e tests, a short
# run of the stream fuzzer, the Debian source package.  Prints
# each stage's duration and, last, one "check: N passed, N failed" line
# counting the qtest cases and e2e tests.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

T0=$(date +%s)
declare -a TIMES=()
PASS=0 FAIL=0 SKIP=0

run_stage() {
    local name=$1 t0 rc; shift
    t0=$(date +%s)
    log "stage $name"
    "$@"; rc=$?
    TIMES+=("$(printf '%-12s %5ss  %s' "$name" $(( $(date +%s) - t0 )) \
              "$([ $rc = 0 ] && echo ok || echo FAILED)")")
    if [ $rc != 0 ]; then
        summary
        echo "check: $PASS passed, $((FAIL + 1)) failed"
        exit 1
    fi
}

summary() {
    echo
    echo "stage timings:"
    printf '  %s\n' "${TIMES[@]}"
    echo "  total        $(( $(date +%s) - T0 ))s"
}

count_tap() {      # count_tap FILE: add TAP ok / not ok lines to the totals
    local ok nok skip
    ok=$(grep -E '^ok ' "$1" | grep -cvE '# (SKIP|skip)' || true)
    skip=$(grep -E '^ok ' "$1" | grep -cE '# (SKIP|skip)' || true)
    nok=$(grep -cE '^not ok ' "$1" || true)
    PASS=$((PASS + ok)); FAIL=$((FAIL + nok)); SKIP=$((SKIP + skip))
}

mkdir -p "$BUILD/logs"
if [ "$(id -u)" = 0 ]; then
    run_stage deps "$TOP/scripts/install-deps.sh"
else
    log "not root: skipping dependency installation"
fi
run_stage base "$TOP/scripts/fetch-base.sh"
run_stage materialize "$TOP/scripts/materialize.sh"
run_stage build "$TOP/scripts/build.sh"
run_stage verify "$TOP/scripts/verify-series.sh"
run_stage guest "$TOP/guest/build.sh"
run_stage qemu72 "$TOP/scripts/fetch-qemu72.sh"
# Test stages run to the end even when a test fails, and are counted.
test_stage() {
    local name=$1 tap=$BUILD/logs/$1.tap t0 rc; shift
    t0=$(date +%s)
    log "stage $name"
    rm -f "$tap"
    "$@" "$tap"; rc=$?
    [ -f "$tap" ] && count_tap "$tap"
    if [ $rc != 0 ] && ! grep -qE '^not ok ' "$tap" 2>/dev/null; then
        FAIL=$((FAIL + 1))          # the stage failed outside any test
    fi
    TIMES+=("$(printf '%-12s %5ss  %s' "$name" $(( $(date +%s) - t0 )) \
              "$([ $rc = 0 ] && echo ok || echo FAILED)")")
}
test_stage unit "$TOP/tests/unit.sh"
test_stage qtest "$TOP/tests/qtest.sh"
test_stage e2e "$TOP/tests/e2e.sh"
FUZZ_SECONDS=${FUZZ_SECONDS:-60} test_stage fuzz "$TOP/tests/fuzz.sh"
test_stage package "$TOP/tests/package.sh"
summary
echo "check: $PASS passed, $FAIL failed, $SKIP skipped"
[ "$FAIL" = 0 ]

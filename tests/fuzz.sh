#!/usr/bin/env bash
# The stream fuzzer (tests/fuzz/fuzz.py) as a test stage, writing TAP to $1:
#   1. seeds: streams saved by the patched QEMU (remade every run)
#   2. a run of FUZZ_SECONDS (default 120) with FUZZ_JOBS jobs (default: all
#      cores), loaded by FUZZ_QEMU (default: the build in $QEMU_BUILD)
#   3. the saved reproducers in tests/fuzz/repro
# make fuzz runs it with the ASan+UBSan build for an hour (FUZZ_SECONDS).
# FUZZ_DEVICE_STATE=1 also changes device state bytes (base QEMU code).
# Output, failures included, in build/fuzz/.
set -uo pipefail
. "$(dirname "$0")/../scripts/lib.sh"
tap_arg "$0" "$@"
tap=${1:-$BUILD/logs/fuzz.tap}
out=$BUILD/fuzz
qemu=${FUZZ_QEMU:-$QEMU_BUILD/qemu-system-x86_64}
fuzz=(/usr/bin/python3 "$TOP/tests/fuzz/fuzz.py")
mkdir -p "$(dirname "$tap")" "$out"
: > "$tap"
n=0 rc=0
result() {      # result RC NAME
    n=$((n + 1))
    if [ "$1" = 0 ]; then echo "ok $n $2" >> "$tap"
    else echo "not ok $n $2" >> "$tap"; rc=1; fi
}

rm -rf "$out/seeds" "$out/failures" "$out/report.json"
# the seeds come from the plain build (a guest runs faster there)
QEMU=$QEMU_BUILD/qemu-system-x86_64 "${fuzz[@]}" seeds "$out/seeds"
result $? "fuzz: seed streams"
if [ -f "$out/seeds/zstd.json" ]; then
    "${fuzz[@]}" run "$out" "${FUZZ_SECONDS:-120}" --qemu "$qemu" \
        --jobs "${FUZZ_JOBS:-$(nproc)}" ${FUZZ_SEED:+--seed "$FUZZ_SEED"} \
        ${FUZZ_DEVICE_STATE:+--device-state}
    result $? "fuzz: mutated streams ($(basename "$(dirname "$qemu")"))"
fi
"${fuzz[@]}" replay "$TOP/tests/fuzz/repro" --qemu "$qemu"
result $? "fuzz: saved reproducers"
exit $rc

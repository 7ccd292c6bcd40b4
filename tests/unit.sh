#!/usr/bin/env bash
# Build and run the series' own unit tests (QEMU's tests/unit) as TAP
# into $1: test-ram-populated (migration/ram-populated.c: which pages the
# host kernel says are populated, with PAGEMAP_SCAN, /proc/self/pagemap
# and lseek(SEEK_DATA)).  A test the series does not have yet (an older
# commit) is reported as "not ok".  Then migration/socket.c compiled as
# on a host without TCP_NOTSENT_LOWAT and SIOCOUTQ (tests/compile-portable.py).
set -uo pipefail
. "$(dirname "$0")/../scripts/lib.sh"
tap_arg "$0" "$@"
tap=${1:-$BUILD/logs/unit.tap}
mkdir -p "$(dirname "$tap")"
log=${tap%.tap}.log
UNIT_TESTS=${UNIT_TESTS:-test-ram-populated}

rc=0
: > "$tap"
: > "$log"
for t in $UNIT_TESTS; do
    if ! ninja -C "$QEMU_BUILD" "tests/unit/$t" >>"$log" 2>&1; then
        echo "not ok - $t does not build (see $log)" | tee -a "$tap"
        rc=1
        continue
    fi
    out=$("$QEMU_BUILD/tests/unit/$t" --tap -k 2>&1); r=$?
    printf '%s\n' "$out" >> "$log"
    printf '%s\n' "$out" | grep -E '^(ok|not ok) ' | sed -E "s#^(ok|not ok) [0-9]+ #\1 - $t #" |
        tee -a "$tap"
    if [ $r != 0 ]; then
        grep -qE '^not ok ' <<<"$out" || echo "not ok - $t exited $r" | tee -a "$tap"
        rc=1
    fi
done
/usr/bin/python3 "$TOP/tests/compile-portable.py" "$QEMU_BUILD" "$SRC" 2>>"$log" |
    tee -a "$tap"
[ "${PIPESTATUS[0]}" = 0 ] || rc=1
exit $rc

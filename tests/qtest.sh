#!/usr/bin/env bash
# Run migration qtests against the patched build, as TAP into $1.
#
# Which (tests/qtest/migration-test paths; every one takes ~35 s under TCG on
# 2 cores, so the list is chosen, not the whole --full set of 51):
TESTS=(
    # precopy over each transport: the RAM save/load paths the series changes
    /x86_64/migration/precopy/unix/plain
    /x86_64/migration/precopy/tcp/plain
    /x86_64/migration/precopy/file
    # XBZRLE shares the page-saving path with compression
    /x86_64/migration/precopy/unix/xbzrle
    # upstream's multifd compression, the alternative we are measured against
    /x86_64/migration/multifd/tcp/plain/zlib
    /x86_64/migration/multifd/tcp/plain/zstd
    /x86_64/migration/multifd/tcp/plain/cancel
    # capability checks touch postcopy
    /x86_64/migration/postcopy/plain
    # failure and cancel paths, and the stream analyzer (knows the RAM flags)
    /x86_64/migration/bad_dest
    /x86_64/migration/cancel/src/after/active
    /x86_64/migration/analyze-script
    # the series' own tests (tests/qtest/migration/ram-compress-tests.c)
    /x86_64/migration/precopy/unix/compress
    /x86_64/migration/precopy/tcp/compress
    /x86_64/migration/compress
    /x86_64/migration/compress/bad-stream
)
# -p selects a path and the tests one level below it (not deeper: each
# level needs its own -p); skip what comes along unasked.
SKIP=(
    /x86_64/migration/precopy/tcp/plain/switchover-ack
    /x86_64/migration/precopy/file/offset
    /x86_64/migration/precopy/file/mapped-ram
)
# EXTRA (space separated paths) adds more from the environment.  Not run: postcopy recovery and
# preempt, TLS, mapped-ram, dirty-limit, auto-converge, uuid/uri validation
# and the other cancel points: they do not touch what the series changes.
#
# The qtests prefer KVM when /dev/kvm is usable; nested KVM is far slower
# than TCG here, so they run in a private mount namespace where /dev/kvm is
# a read-only regular file (QEMU's KVM init fails and it falls back to TCG).
# Arguments after $1 replace the list (e.g. -p PATH).
set -uo pipefail
. "$(dirname "$0")/../scripts/lib.sh"
tap=${1:-$BUILD/logs/qtest.tap}; shift || true
mkdir -p "$(dirname "$tap")"
log=${tap%.tap}.log

export QTEST_QEMU_BINARY=$QEMU_BUILD/qemu-system-x86_64
export QTEST_QEMU_IMG=$QEMU_BUILD/qemu-img
export PYTHON=/usr/bin/python3
test=$QEMU_BUILD/tests/qtest/migration-test
[ -x "$test" ] || die "no $test (make build)"

nokvm() {
    if [ -e /dev/kvm ] && [ "$(id -u)" = 0 ] && command -v unshare >/dev/null; then
        touch "$BUILD/nokvm"
        unshare -m sh -c 'mount --bind "$0" /dev/kvm && mount -o remount,bind,ro /dev/kvm &&
                          exec "$@"' "$BUILD/nokvm" "$@"
    else
        "$@"
    fi
}

rc=0
: > "$tap"
: > "$log"
run() {
    local out
    out=$(mktemp)
    # cwd: the source tree (analyze-script runs scripts/analyze-migration.py)
    (cd "$SRC" && nokvm "$test" --tap -k "$@") 2>&1 |
        while IFS= read -r line; do printf '%s %s\n' "$(date +%s)" "$line"; done |
        tee -a "$log" | cut -d' ' -f2- >"$out"
    local r=${PIPESTATUS[0]}
    grep -E '^(ok|not ok) ' "$out" | tee -a "$tap"
    if [ "$r" != 0 ] && ! grep -qE '^not ok ' "$out"; then
        echo "not ok - migration-test $* exited $r" | tee -a "$tap"
    fi
    rm -f "$out"
    [ "$r" = 0 ] || rc=1
}

if [ $# -gt 0 ]; then
    run --full -m slow "$@"
else
    args=()
    for p in "${TESTS[@]}" ${EXTRA:-}; do args+=(-p "$p"); done
    for p in "${SKIP[@]}"; do args+=(-s "$p"); done
    run --full -m slow "${args[@]}"
fi
exit $rc

#!/usr/bin/env bash
# Run migration qtests against the patched build, as TAP into $1.
#
# By default the whole of migration-test (--full -m slow: 147 tests with
# GnuTLS, the series' own in tests/qtest/migration/ram-compress-tests.c and
# skip-unused-tests.c; ~6.5 min under TCG on 2 cores).  Arguments after $1
# replace that selection, e.g.
#   tests/qtest.sh out.tap -p /x86_64/migration/compress
# (-p selects a path and the tests one level below it, not deeper).
#
# The qtests prefer KVM when /dev/kvm is usable; nested KVM is far slower
# than TCG here, so they run in a private mount namespace where /dev/kvm is
# a read-only regular file (QEMU's KVM init fails and it falls back to TCG).
set -uo pipefail
. "$(dirname "$0")/../scripts/lib.sh"
tap_arg "$0" "$@"
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

run --full -m slow "$@"
exit $rc

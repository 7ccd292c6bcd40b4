#!/usr/bin/env bash
# Run the base's migration qtests against the patched build, as TAP into $1.
#
# Which: the default ("smoke") set of tests/qtest/migration-test, which covers
# precopy over unix/tcp/file, multifd, postcopy and cancel, plus these tests
# of the --full set that exercise the RAM save/load paths the series touches
# (and, once the series adds them, its own tests, listed in EXTRA):
EXTRA_FULL=(
    /x86_64/migration/precopy/unix/xbzrle
    /x86_64/migration/multifd/tcp/plain/zstd
    /x86_64/migration/multifd/tcp/plain/zero-page
    /x86_64/migration/precopy/fd/tcp
    /x86_64/migration/precopy/file/mapped-ram
    /x86_64/migration/bad_dest
    /x86_64/migration/cancel/src/after
)
# Not run: the rest of --full (TLS variants, dirty-limit, auto-converge,
# validate-uuid/uri ...) does not touch what the series changes and would
# double the stage's time on 2 cores.
#
# The qtests prefer KVM when /dev/kvm is usable; nested KVM is far slower
# than TCG here, so they run in a private mount namespace where /dev/kvm is
# a read-only regular file (access(W_OK) fails, QEMU falls back to TCG).
# Extra arguments are passed to migration-test (e.g. -p PATH).
set -uo pipefail
. "$(dirname "$0")/../scripts/lib.sh"
tap=${1:-$BUILD/logs/qtest.tap}; shift || true
mkdir -p "$(dirname "$tap")"
log=$BUILD/logs/qtest.log

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
    run --full "$@"
else
    run
    args=()
    for p in "${EXTRA_FULL[@]}" ${EXTRA:-}; do args+=(-p "$p"); done
    run --full "${args[@]}"
fi
exit $rc

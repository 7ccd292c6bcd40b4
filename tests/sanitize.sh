#!/usr/bin/env bash
# Build QEMU with AddressSanitizer and UndefinedBehaviorSanitizer into
# build/qemu-asan and run the compression qtests and e2e tests with it.
# Any sanitizer report fails the run (UBSan halts on error).  Leak checking
# is off: QEMU itself does not free everything at exit.
set -uo pipefail
. "$(dirname "$0")/../scripts/lib.sh"
export QEMU_BUILD=$BUILD/qemu-asan
export EXTRA_CONFIGURE="--enable-asan --enable-ubsan"
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:print_summary=1
export UBSAN_OPTIONS=halt_on_error=1:abort_on_error=1:print_stacktrace=1
"$TOP/scripts/build.sh" || die "sanitizer build failed"
rc=0
"$TOP/tests/qtest.sh" "$BUILD/logs/asan-qtest.tap" \
    -p /x86_64/migration/precopy/unix/compress \
    -p /x86_64/migration/precopy/tcp/compress \
    -p /x86_64/migration/compress \
    -p /x86_64/migration/compress/bad-stream || rc=1
QEMU=$QEMU_BUILD/qemu-system-x86_64 "$TOP/tests/e2e.sh" "$BUILD/logs/asan-e2e.tap" || rc=1
# reports end up in the QEMU processes' stderr, kept in the logs
if grep -lE 'ERROR: AddressSanitizer|runtime error:' "$BUILD"/logs/asan-qtest.log \
        /tmp/pytest-of-*/pytest-current/*/*.stderr 2>/dev/null; then
    echo "sanitizer reports found (files above)"
    rc=1
fi
echo "sanitize: $([ $rc = 0 ] && echo clean || echo FAILED)"
exit $rc

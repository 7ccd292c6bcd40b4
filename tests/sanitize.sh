#!/usr/bin/env bash
# Build QEMU with AddressSanitizer (LeakSanitizer included) and
# UndefinedBehaviorSanitizer into build/qemu-asan and run the compression
# qtests and the e2e tests with it.  Every sanitizer report (an error, a
# leak at exit, undefined behaviour) is written to build/logs/asan/ and
# fails the run: the tests hide much of QEMU's stderr, the files keep all.
set -uo pipefail
. "$(dirname "$0")/../scripts/lib.sh"
export QEMU_BUILD=$BUILD/qemu-asan
export EXTRA_CONFIGURE="--enable-asan --enable-ubsan"
reports=$BUILD/logs/asan
rm -rf "$reports"; mkdir -p "$reports"
# full malloc stacks (glib has no frame pointers), so suppressions match
export ASAN_OPTIONS=detect_leaks=1:fast_unwind_on_malloc=0:log_path=$reports/asan:print_summary=1
# leaks of the base QEMU itself, not of the series (each one explained there)
export LSAN_OPTIONS=suppressions=$TOP/tests/lsan.supp:print_suppressions=0
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:log_path=$reports/ubsan
"$TOP/scripts/build.sh" || die "sanitizer build failed"
rc=0
"$TOP/tests/qtest.sh" "$BUILD/logs/asan-qtest.tap" \
    -p /x86_64/migration/precopy/unix/compress \
    -p /x86_64/migration/precopy/tcp/compress \
    -p /x86_64/migration/compress \
    -p /x86_64/migration/compress/bad-stream || rc=1
# Not the libvirt tests: libvirt probes a binary with -daemonize, and the
# ASan build's forked child deadlocks on an allocator lock there.
QEMU=$QEMU_BUILD/qemu-system-x86_64 "$TOP/tests/e2e.sh" "$BUILD/logs/asan-e2e.tap" \
    -k "not libvirt" || rc=1
# ASan's warning that it does not fully support swapcontext (QEMU's
# coroutines) is not a report.
if grep -lE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$reports"/* 2>/dev/null; then
    echo "sanitizer reports found (files above)"
    rc=1
fi
echo "sanitize: $([ $rc = 0 ] && echo clean || echo FAILED)"
exit $rc

#!/usr/bin/env bash
# Sanitizer runs of the compression tests.  Usage:
#   tests/sanitize.sh [asan] [tsan]        (default: both)
#
# asan: QEMU built with AddressSanitizer (LeakSanitizer included) and
#   UndefinedBehaviorSanitizer into build/qemu-asan, running the
#   compression qtests and the e2e tests.  Every report (an error, a leak
#   at exit, undefined behaviour) is written to build/logs/asan/ and fails
#   the run: the tests hide much of QEMU's stderr, the files keep all.
# tsan: QEMU built by clang with ThreadSanitizer into build/qemu-tsan
#   (TCG and device emulation uninstrumented: tests/tsan-ignore.txt),
#   running the compression qtests.  Reports go to build/logs/tsan/; one
#   whose stack has a frame in the series' engine (ram-compress*.c,
#   ram-decompress.c) fails the
#   run, the others (the base QEMU's, e.g. TCG and RCU internals, or glib
#   primitives TSan cannot see) are counted and listed in
#   build/logs/tsan/summary.txt.
set -uo pipefail
. "$(dirname "$0")/../scripts/lib.sh"
which=("$@")
[ ${#which[@]} = 0 ] && which=(asan tsan)
QTEST_PATHS=()
for p in $COMPRESS_QTESTS; do QTEST_PATHS+=(-p "$p"); done
rc=0

run_asan() {
    local reports=$BUILD/logs/asan r=0
    rm -rf "$reports"; mkdir -p "$reports"
    (
        # full malloc stacks (glib has no frame pointers): suppressions match
        export ASAN_OPTIONS=detect_leaks=1:fast_unwind_on_malloc=0:log_path=$reports/asan:print_summary=1
        # leaks of the base QEMU itself, not of the series (each explained)
        export LSAN_OPTIONS=suppressions=$TOP/tests/lsan.supp:print_suppressions=0
        export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:log_path=$reports/ubsan
        export QEMU_BUILD=$BUILD/qemu-asan EXTRA_CONFIGURE="--enable-asan --enable-ubsan"
        "$TOP/scripts/build.sh" || exit 3
        r=0
        "$TOP/tests/qtest.sh" "$BUILD/logs/asan-qtest.tap" "${QTEST_PATHS[@]}" || r=1
        # Not the libvirt tests: libvirt probes a binary with -daemonize, and
        # the ASan build's forked child deadlocks on an allocator lock there.
        QEMU=$QEMU_BUILD/qemu-system-x86_64 "$TOP/tests/e2e.sh" \
            "$BUILD/logs/asan-e2e.tap" -k "not libvirt" || r=1
        exit $r
    ) || r=$?
    [ $r = 3 ] && die "ASan build failed"
    # ASan's warning that it does not fully support swapcontext (QEMU's
    # coroutines) is not a report.
    if grep -lE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' \
            "$reports"/* 2>/dev/null; then
        echo "ASan/UBSan reports found (files above)"
        r=1
    fi
    echo "sanitize asan: $([ $r = 0 ] && echo clean || echo FAILED)"
    return $r
}

run_tsan() {
    local reports=$BUILD/logs/tsan r=0
    rm -rf "$reports"; mkdir -p "$reports"
    (
        # history_size: longer stacks for the earlier access of a report;
        # die_after_fork=0: the tests fork and exec QEMU
        export TSAN_OPTIONS="suppressions=$SRC/tests/tsan/suppressions.tsan detect_deadlocks=0 history_size=4 exitcode=0 die_after_fork=0 log_path=$reports/tsan"
        # clang, for its ignore list (tests/tsan-ignore.txt): the emulation
        # that runs the guest is not instrumented
        export QEMU_BUILD=$BUILD/qemu-tsan
        export EXTRA_CONFIGURE="--cc=clang --host-cc=clang --enable-tsan --extra-cflags=-fsanitize-ignorelist=$TOP/tests/tsan-ignore.txt"
        "$TOP/scripts/build.sh" || exit 3
        "$TOP/tests/qtest.sh" "$BUILD/logs/tsan-qtest.tap" "${QTEST_PATHS[@]}"
    ) || r=$?
    [ $r = 3 ] && die "TSan build failed"
    /usr/bin/python3 - "$reports" <<'PY' || r=1
import glob, os, re, sys
d = sys.argv[1]
ours, other = [], {}
for path in sorted(glob.glob(os.path.join(d, "tsan.*"))):
    text = open(path, errors="replace").read()
    for rep in text.split("==================")[1:]:
        m = re.search(r"WARNING: ThreadSanitizer: (.*?) \(pid", rep)
        if not m:
            continue
        # The base's own race on QEMUFile.last_error: migrate_cancel's
        # qemu_file_shutdown() writes it in the main thread while the
        # migration thread reads it, as migration_rate_exceeded() does
        # without the series.  The top frames of both accesses identify it.
        tops = set(re.findall(r"#0 (\S+) ", rep)[:2])
        base_last_error = tops == {"qemu_file_set_error_obj", "qemu_file_get_error"}
        if re.search(r"ram-(de)?compress[-\w]*\.c", rep) and not base_last_error:
            ours.append((path, rep))
            continue
        frame = re.search(r"#0 (\S+) ", rep)
        key = f"{m.group(1)} in {frame.group(1) if frame else '?'}"
        if base_last_error:
            key += " (QEMUFile.last_error, base)"
        other[key] = other.get(key, 0) + 1
with open(os.path.join(d, "summary.txt"), "w") as out:
    out.write(f"reports with a frame in the engine (migration/ram-compress*.c, "
              f"ram-decompress.c): {len(ours)}\n")
    out.write("other reports (base QEMU), by kind and first frame:\n")
    for k, n in sorted(other.items(), key=lambda kv: -kv[1]):
        out.write(f"  {n:5d}  {k}\n")
    for path, rep in ours:
        out.write(f"\n--- {path}\n{rep}\n")
print(open(os.path.join(d, "summary.txt")).read().split("\n---")[0])
sys.exit(1 if ours else 0)
PY
    echo "sanitize tsan: $([ $r = 0 ] && echo clean || echo FAILED)"
    return $r
}

for w in "${which[@]}"; do
    case $w in
    asan) run_asan || rc=1 ;;
    tsan) run_tsan || rc=1 ;;
    *) die "unknown sanitizer '$w' (asan, tsan)" ;;
    esac
done
echo "sanitize: $([ $rc = 0 ] && echo clean || echo FAILED)"
exit $rc

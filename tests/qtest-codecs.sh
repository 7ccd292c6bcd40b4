#!/usr/bin/env bash
# make check-codecs: the migration qtests (tests/qtest.sh, all of
# migration-test) against builds without zstd and without lz4
# (build/qemu-nozstd, build/qemu-nolz4), as distributions may build QEMU.
# TAP into $1 (one line per build).  Two builds from scratch: ~20 min on 2
# cores; not part of make check.
set -uo pipefail
. "$(dirname "$0")/../scripts/lib.sh"
tap_arg "$0" "$@"
tap=${1:-$BUILD/logs/qtest-codecs.tap}
mkdir -p "$(dirname "$tap")"
n=0 rc=0
echo "1..2" > "$tap"
for codec in zstd lz4; do
    n=$((n + 1))
    dir=$BUILD/qemu-no$codec
    if QEMU_BUILD=$dir WITHOUT=$codec "$TOP/scripts/build.sh" > "$dir.build.log" 2>&1 &&
       ! grep -q "^#define CONFIG_${codec^^}" "$dir/config-host.h" &&
       QEMU_BUILD=$dir "$TOP/tests/qtest.sh" "$BUILD/logs/qtest-no$codec.tap"; then
        echo "ok $n - migration qtests without $codec ($(grep -c '^ok' "$BUILD/logs/qtest-no$codec.tap") passed)" >> "$tap"
    else
        echo "not ok $n - migration qtests without $codec (see $dir.build.log, $BUILD/logs/qtest-no$codec.tap)" >> "$tap"
        rc=1
    fi
done
cat "$tap"
exit $rc

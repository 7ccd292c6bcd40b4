#!/usr/bin/env bash
# make bench-xbzrle: QEMU's XBZRLE encoder (migration/xbzrle.c of the
# materialized tree, compiled here as QEMU compiles it) timed per page by
# bench/xbzrle.c, one core.  Needs build/qemu for the generated headers and
# libqemuutil.a.
set -euo pipefail
. "$(dirname "$0")/../scripts/lib.sh"

[ -f "$QEMU_BUILD/libqemuutil.a" ] || die "no $QEMU_BUILD/libqemuutil.a (make build)"
out=$BUILD/bench/xbzrle
mkdir -p "$(dirname "$out")"
cc -O2 -I"$QEMU_BUILD" -I"$SRC/include" -I"$SRC" -I"$QEMU_BUILD/qapi" \
    -I"$QEMU_BUILD/trace" $(pkg-config --cflags glib-2.0) \
    -o "$out" "$TOP/bench/xbzrle.c" "$SRC/migration/xbzrle.c" \
    "$QEMU_BUILD/libqemuutil.a" $(pkg-config --libs glib-2.0) -lm
"$out" "$@"

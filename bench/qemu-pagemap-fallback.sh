#!/bin/sh
# The build's QEMU as on a kernel before Linux 6.7: PAGEMAP_SCAN fails with
# ENOTTY (bench/nopmscan.c, preloaded), so skip-unused-pages falls back to
# /proc/self/pagemap.  For bench.py --binary fb=bench/qemu-pagemap-fallback.sh
set -e
root=$(cd "$(dirname "$0")/.." && pwd)
so=$root/build/nopmscan.so
[ "$so" -nt "$root/bench/nopmscan.c" ] ||
    cc -O2 -shared -fPIC -o "$so" "$root/bench/nopmscan.c" -ldl
LD_PRELOAD=$so exec "${QEMU:-$root/build/qemu/qemu-system-x86_64}" "$@"

#!/usr/bin/env bash
# make install PREFIX=DIR: the patched QEMU of $QEMU_BUILD (default
# build/qemu) installed for use without a build tree, e.g. as a libvirt
# domain's <emulator>DIR/bin/qemu-system-x86_64</emulator>:
#   DIR/bin/qemu-system-x86_64     the binary (stripped with STRIP=1)
#   DIR/bin/qemu-bundle/           its data: links to Debian's firmware
#                                  (qemu-system-data, seabios, ipxe-qemu)
#                                  and the files the build made
# The binary looks for its data in qemu-bundle/ next to itself, then in
# /usr/share/qemu and /usr/share/seabios.  It needs the shared libraries it
# was built with (glib, pixman, zlib, zstd, lz4, slirp: the Debian packages
# scripts/install-deps.sh installs).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
prefix=${1:-${PREFIX:-}}
[ -n "$prefix" ] || die "usage: make install PREFIX=DIR"
bin=$QEMU_BUILD/qemu-system-x86_64
[ -x "$bin" ] || die "no $bin (make build)"
mkdir -p "$prefix/bin"
prefix=$(cd "$prefix" && pwd)
install -m 755 "$bin" "$prefix/bin/qemu-system-x86_64"
[ "${STRIP:-0}" = 1 ] && strip "$prefix/bin/qemu-system-x86_64"
rm -rf "$prefix/bin/qemu-bundle"
cp -a "$QEMU_BUILD/qemu-bundle" "$prefix/bin/qemu-bundle"
echo "installed $prefix/bin/qemu-system-x86_64 ($("$prefix/bin/qemu-system-x86_64" --version | head -n1))"

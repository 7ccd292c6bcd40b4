#!/usr/bin/env bash
# Configure (once) and build the patched QEMU from build/src into build/qemu:
# x86_64-softmmu only, TCG + KVM, zlib, zstd, lz4, slirp, gnutls (TLS
# migration, as Debian builds it); no docs, no GUI; plus
# the migration qtest binary.  Incremental: re-running rebuilds what changed.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

TARGETS=${TARGETS:-"qemu-system-x86_64 tests/qtest/migration-test"}
CONFIGURE_FLAGS=(
    --python=/usr/bin/python3
    # never installed; the prefix and firmware path are those of Debian's
    # qemu-system-data and seabios (see the qemu-bundle links below)
    --prefix=/usr --firmwarepath=/usr/share/qemu:/usr/share/seabios
    --disable-relocatable
    --target-list=x86_64-softmmu
    --disable-docs --disable-download --disable-install-blobs
    --without-default-features
    --enable-kvm --enable-tcg --enable-zstd --enable-lz4 --enable-slirp
    --enable-gnutls
    ${EXTRA_CONFIGURE:-}
)

# WITHOUT="zstd lz4": build without those codecs (--disable-X instead)
for w in ${WITHOUT:-}; do
    for i in "${!CONFIGURE_FLAGS[@]}"; do
        [ "${CONFIGURE_FLAGS[$i]}" = "--enable-$w" ] && CONFIGURE_FLAGS[i]=--disable-$w
    done
done
[ -x "$SRC/configure" ] || die "no materialized tree in $SRC (make materialize)"
# ninja runs "cc" from PATH: through ccache where it is installed, its
# cache kept with the downloads (the per-patch builds of verify-series.sh
# compile many files to what an earlier build, the series' HEAD among
# them, already compiled)
if [ -d /usr/lib/ccache ] && [ "${NO_CCACHE:-0}" != 1 ]; then
    export PATH=/usr/lib/ccache:$PATH
    export CCACHE_DIR=${CCACHE_DIR:-$CACHE/ccache}
fi
# the unpatched base (make build-base) has no lz4 option: leave it out there
if ! grep -q "option('lz4'" "$SRC/meson_options.txt"; then
    for i in "${!CONFIGURE_FLAGS[@]}"; do
        [ "${CONFIGURE_FLAGS[$i]}" = --enable-lz4 ] && unset 'CONFIGURE_FLAGS[i]'
    done
    CONFIGURE_FLAGS=("${CONFIGURE_FLAGS[@]}")
fi
t0=$(date +%s)
flags_file=$QEMU_BUILD/.qemu-mt-configure
if [ ! -f "$QEMU_BUILD/build.ninja" ] ||
   [ "$(cat "$flags_file" 2>/dev/null)" != "$SRC ${CONFIGURE_FLAGS[*]}" ]; then
    log "configuring $QEMU_BUILD"
    rm -rf "$QEMU_BUILD"
    mkdir -p "$QEMU_BUILD"
    (cd "$QEMU_BUILD" && "$SRC/configure" "${CONFIGURE_FLAGS[@]}" >configure.log 2>&1) || {
        tail -n 40 "$QEMU_BUILD/configure.log"
        die "configure failed (see $QEMU_BUILD/configure.log)"
    }
    echo "$SRC ${CONFIGURE_FLAGS[*]}" > "$flags_file"
fi
# verify-series.sh builds older commits here: meson drops an option the
# tree does not know yet (lz4 before the series adds it), and with
# --without-default-features it stays off once a later commit brings it
# back (auto, which that makes off).  Regenerate, then switch on again
# each --enable-X feature (an option whose choices include "enabled") that
# is not "enabled"; boolean options such as asan keep their value.
ninja -C "$QEMU_BUILD" build.ninja >/dev/null
want=$(printf '%s\n' "${CONFIGURE_FLAGS[@]}" | sed -n 's/^--enable-//p')
off=$("$QEMU_BUILD/pyvenv/bin/meson" introspect --buildoptions "$QEMU_BUILD" |
      WANT="$want" python3 -c '
import json, os, sys
want = set(os.environ["WANT"].split())
print(" ".join("-D%s=enabled" % o["name"] for o in json.load(sys.stdin)
               if "enabled" in (o.get("choices") or []) and o["name"] in want
               and o["value"] != "enabled"))')
if [ -n "$off" ]; then
    log "re-enabling: $off"
    # shellcheck disable=SC2086
    "$QEMU_BUILD/pyvenv/bin/meson" configure "$QEMU_BUILD" $off >/dev/null
fi
log "building: $TARGETS"
# shellcheck disable=SC2086
ninja -C "$QEMU_BUILD" ${NINJA_FLAGS:-} $TARGETS
# Run from the build tree, QEMU looks for data only under build/qemu/qemu-bundle
# (the configured paths prefixed with it): link Debian's firmware
# (qemu-system-data, seabios, ipxe-qemu) in there.
bundle=$QEMU_BUILD/qemu-bundle/usr/share
mkdir -p "$bundle/qemu"
ln -sfn /usr/share/seabios "$bundle/seabios"
for f in /usr/share/qemu/* /usr/lib/ipxe/qemu/*; do
    # what the build put there itself (trace-events-all, keymaps...) stays
    [ -e "$bundle/qemu/${f##*/}" ] || [ -L "$bundle/qemu/${f##*/}" ] ||
        ln -s "$f" "$bundle/qemu/${f##*/}"
done
log "build took $(( $(date +%s) - t0 ))s"

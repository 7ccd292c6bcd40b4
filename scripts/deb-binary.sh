#!/usr/bin/env bash
# make deb: the binary packages of the source package (make source-package)
# built with dpkg-buildpackage in a Debian trixie chroot (the package's
# build dependencies are trixie's), then the libvirt e2e run against the
# installed qemu-system-x86.  Long (about 25 min to build on 2 cores); not
# part of make check.
#   scripts/deb-binary.sh chroot   debootstrap trixie into $CHROOT
#   scripts/deb-binary.sh build    build-deps, dpkg-buildpackage -B
#   scripts/deb-binary.sh e2e      install the .debs, tests/e2e/test_libvirt.py
# Limited to what qemu-system-x86 needs: profiles pkg.qemu.omit-user,
# pkg.qemu.omit-system-xen and nocheck, configure's target list through
# debian/rules' QEMU_CONFIGURE_OPTIONS, and system-packages=x86 on make's
# command line (MAKEFLAGS) so that only qemu-system-x86 is installed from
# the build (the other qemu-system-* packages come out empty).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

CHROOT=${CHROOT:-/var/tmp/trixie}
PKG=${PKG:-$BUILD/pkg}
PROFILES=pkg.qemu.omit-user,pkg.qemu.omit-system-xen,nocheck

in_chroot() { chroot "$CHROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
                  DEBIAN_FRONTEND=noninteractive "$@"; }

mounts() {
    local m
    for m in proc sys dev dev/pts; do
        mountpoint -q "$CHROOT/$m" || mount --bind "/$m" "$CHROOT/$m"
    done
    mkdir -p "$CHROOT$TOP"
    mountpoint -q "$CHROOT$TOP" || mount --bind "$TOP" "$CHROOT$TOP"
}

case ${1:-} in
chroot)
    command -v debootstrap >/dev/null || apt-get install -y debootstrap
    [ -x "$CHROOT/usr/bin/apt-get" ] ||
        debootstrap --variant=buildd --include=ca-certificates trixie "$CHROOT" \
            http://deb.debian.org/debian
    ;;
build)
    dsc=$(ls "$PKG"/qemu_*.dsc 2>/dev/null | head -n1)
    [ -n "$dsc" ] || die "no source package in $PKG (make source-package)"
    mounts
    rm -rf "$CHROOT/build" && mkdir -p "$CHROOT/build"
    cp -L "$PKG"/qemu_* "$CHROOT/build/"
    in_chroot sh -ec "cd /build && dpkg-source -x $(basename "$dsc") src >/dev/null &&
        apt-get update -q && apt-get install -y -q --no-install-recommends dpkg-dev &&
        cd src && apt-get build-dep -y -q --no-install-recommends --arch-only -P $PROFILES ./"
    start=$(date +%s)
    in_chroot sh -ec "cd /build/src &&
        DEB_BUILD_OPTIONS='nocheck parallel=$(nproc)' \
        QEMU_CONFIGURE_OPTIONS=--target-list=x86_64-softmmu,i386-softmmu \
        MAKEFLAGS=system-packages=x86 \
        dpkg-buildpackage -B -us -uc -P$PROFILES" > "$PKG/dpkg-buildpackage.log" 2>&1 ||
        { tail -n 30 "$PKG/dpkg-buildpackage.log"; die "dpkg-buildpackage failed"; }
    log "built in $(( $(date +%s) - start )) s:"
    ls "$CHROOT"/build/qemu-system-x86_*.deb "$CHROOT"/build/qemu-system-common_*.deb
    ;;
e2e)
    mounts
    in_chroot sh -ec "cd /build && apt-get install -y -q --no-install-recommends \
        ./qemu-system-x86_*_amd64.deb ./qemu-system-common_*_amd64.deb \
        libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients python3-pytest \
        passwd iproute2 procps >/dev/null"
    in_chroot sh -c "dpkg -s qemu-system-x86 | grep ^Version; /usr/bin/qemu-system-x86_64 --version | head -n1"
    # the stock-QEMU test needs a QEMU without compress: this one has it
    in_chroot sh -c "cd $TOP && LIBVIRT_EMULATOR=/usr/bin/qemu-system-x86_64 \
        python3 -m pytest -v -p no:cacheprovider tests/e2e/test_libvirt.py -k 'not stock' ${PYTEST_ARGS:-}"
    ;;
*) die "usage: $0 chroot|build|e2e" ;;
esac

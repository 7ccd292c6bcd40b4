#!/usr/bin/env bash
# Install what building and testing needs, from Debian only.  Idempotent:
# nothing is fetched when everything is already there.  On bookworm, meson
# (>= 1.5 for QEMU 10.0), pycotap, SeaBIOS and QEMU's firmware data come from
# bookworm-backports, named per package so apt upgrades nothing else (libvirt
# pulls the bookworm point release of systemd, not backports' systemd).  The
# machine's own apt sources are left as they are (private lists in $CACHE).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || die "install-deps.sh must run as root (it calls apt-get)"

# package lists, by suite (nftables: packet loss in tests/e2e/test_faults.py;
# iputils-ping: tests/e2e/test_link.py; openssl: bench.py's tls certificates;
# ccache: scripts/build.sh, for the per-patch builds of verify-series.sh)
MAIN="gcc make ninja-build ccache pkg-config flex bison git perl cpio xz-utils
      libglib2.0-dev libpixman-1-dev zlib1g-dev libzstd-dev liblz4-dev libslirp-dev libgnutls28-dev
      python3 python3-venv python3-pytest ipxe-qemu iproute2
      nftables dpkg-dev
      iputils-ping openssl
      clang libclang-rt-dev"                 # make sanitize: the TSan build
BPO="meson python3-pycotap qemu-system-data seabios"
# libvirt 11.3 for tests/e2e/test_libvirt.py; its QEMU driver needs a
# qemu-system package: Debian's own 10.0 (also the "stock QEMU" that must
# refuse --comp-methods mt)
BPO="$BPO libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients
     qemu-system-x86 qemu-system-common qemu-utils"     # qemu-img: savevm test
EXTRA=${EXTRA_PACKAGES:-}      # e.g. libvirt bits for later tests

codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")

missing() {
    local p out
    for p in "$@"; do
        out=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
        [ "$out" = installed ] || echo "$p"
    done
}

meson_ok() {
    command -v meson >/dev/null &&
        [ "$(printf '%s\n1.5.0\n' "$(meson --version)" | sort -V | head -n1)" = 1.5.0 ]
}

version_ge() {    # version_ge PACKAGE VERSION: installed and at least VERSION
    dpkg --compare-versions "$(dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo 0)" ge "$2"
}

qemu_data_ok() {
    # the firmware data must be 10.0's (bookworm's 7.2 lacks newer option
    # ROMs); SeaBIOS 1.16.2 waits 32 s for an AHCI command of QEMU 10.0 at
    # every boot of a disk on q35 (fixed in 1.16.3)
    version_ge qemu-system-data 1:10.0 && version_ge seabios 1.16.3
}

need_main=$(missing $MAIN $EXTRA)
need_bpo=$(missing $BPO)
if [ -z "$need_main" ] && [ -z "$need_bpo" ] && meson_ok && qemu_data_ok; then
    log "build and test dependencies already installed"
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive
if [ "$codename" = bookworm ]; then
    opts=$(apt_bookworm)
    log "updating private bookworm + bookworm-backports lists"
    # shellcheck disable=SC2086
    apt-get $opts -qq update
    bpo_args=()
    for p in $BPO; do bpo_args+=("$p/bookworm-backports"); done
    log "installing: $need_main ${bpo_args[*]}"
    # shellcheck disable=SC2086
    apt-get $opts -y -qq --no-install-recommends install $MAIN $EXTRA "${bpo_args[@]}"
else
    # trixie and later carry new enough versions in their main suite
    log "installing from the machine's own sources ($codename)"
    apt-get -qq update
    # shellcheck disable=SC2086
    apt-get -y -qq --no-install-recommends install $MAIN $EXTRA $BPO
fi
meson_ok || die "meson >= 1.5 is required, found $(meson --version 2>/dev/null || echo none)"
log "dependencies installed"

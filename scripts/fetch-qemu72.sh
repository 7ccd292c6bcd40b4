#!/usr/bin/env bash
# Download Debian bookworm's QEMU 7.2 (qemu-system-x86 and, for its TCG
# module, qemu-system-common) with apt-get download, check the SHA-256 sums
# of scripts/qemu72.lock and unpack both into $CACHE/qemu72/root.  Run it
# with QEMU_MODULE_DIR=$CACHE/qemu72/root/usr/lib/x86_64-linux-gnu/qemu and
# -L /usr/share/qemu -L /usr/share/seabios (see harness/vm.py: qemu72()).
# Its shared libraries are those of Debian's qemu-system-x86 10.0 that
# install-deps.sh installs.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

lock=$TOP/scripts/qemu72.lock
want=$(awk '$1 == "version" { print $2 }' "$lock")
dir=$CACHE/qemu72
root=$dir/root
if [ -f "$root/.version" ] && [ "$(cat "$root/.version")" = "$want" ]; then
    log "QEMU $want already unpacked in $root"
    exit 0
fi
mkdir -p "$dir"
opts=$(apt_bookworm)
deb() { echo "${1}_${2/:/%3a}_amd64.deb"; }
ver=$want
if [ ! -f "$dir/$(deb qemu-system-x86 "$want")" ] ||
   [ ! -f "$dir/$(deb qemu-system-common "$want")" ]; then
    log "updating private bookworm lists"
    # shellcheck disable=SC2086
    apt-get $opts -qq update
    # shellcheck disable=SC2086
    if ! apt-cache $opts madison qemu-system-x86 | awk '{ print $3 }' | grep -qxF "$want"; then
        # shellcheck disable=SC2086
        ver=$(apt-cache $opts madison qemu-system-x86 | awk '{ print $3 }' |
              grep '^1:7\.2' | sort -V | tail -n 1)
        [ -n "$ver" ] || die "no QEMU 7.2 in bookworm"
        warn "pinned QEMU $want is gone from the archive; using $ver (not covered by $lock)"
    fi
    # shellcheck disable=SC2086
    (cd "$dir" && apt-get $opts -qq download "qemu-system-x86=$ver" "qemu-system-common=$ver")
fi
if [ "$ver" = "$want" ]; then
    while read -r _ sum pkg; do
        echo "$sum  $dir/$(deb "$pkg" "$ver")" | sha256sum --quiet -c - ||
            die "SHA-256 mismatch for $pkg $ver (see $lock)"
    done < <(grep '^sha256 ' "$lock")
    log "SHA-256 verified for QEMU $ver"
fi
rm -rf "$root"
for p in qemu-system-x86 qemu-system-common; do
    dpkg -x "$dir/$(deb "$p" "$ver")" "$root"
done
echo "$ver" > "$root/.version"
log "QEMU $ver unpacked in $root"

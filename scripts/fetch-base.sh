#!/usr/bin/env bash
# Fetch the pinned Debian trixie QEMU source package with apt's ordinary
# client, verify its SHA-256 sums and unpack it (dpkg-source -x, which applies
# Debian's own patches) into build/base.  Downloads are cached in $CACHE.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

pkg=$(lock_get package)
want=$(lock_get version)
series=$(lock_get series)
dl=$CACHE/base
mkdir -p "$dl"

if [ -f "$BASE_DIR/.base-version" ] && [ "$(cat "$BASE_DIR/.base-version")" = "$want" ]; then
    log "base $pkg $want already unpacked in $BASE_DIR"
    exit 0
fi

opts=$(apt_private trixie-src "deb-src http://deb.debian.org/debian trixie main
deb-src http://deb.debian.org/debian trixie-updates main
deb-src http://deb.debian.org/debian-security trixie-security main")

ver=$want
noversion() { local v=${1#*:}; echo "${v}"; }
dsc=${pkg}_$(noversion "$want").dsc
if [ ! -f "$dl/$dsc" ]; then
    log "updating private trixie deb-src lists"
    # shellcheck disable=SC2086
    apt-get $opts -qq update
    # shellcheck disable=SC2086
    if ! apt-cache $opts showsrc "$pkg" | awk '$1 == "Version:" { print $2 }' | grep -qxF "$want"; then
        # shellcheck disable=SC2086
        ver=$(apt-cache $opts showsrc "$pkg" | awk '$1 == "Version:" { print $2 }' |
              grep -F ":$series." | sort -V | tail -n 1)
        [ -n "$ver" ] || die "no $pkg $series.x source package in trixie"
        warn "================================================================"
        warn "pinned base $pkg $want is no longer in the archive;"
        warn "using the newest $series.x instead: $pkg $ver"
        warn "its files are NOT covered by scripts/base.lock: update the pin"
        warn "================================================================"
        dsc=${pkg}_$(noversion "$ver").dsc
    fi
    log "downloading $pkg=$ver"
    # shellcheck disable=SC2086
    (cd "$dl" && apt-get $opts -qq source --download-only "$pkg=$ver")
fi

# Verify: every file the lock names must match; a fallback version is
# reported with its sums so the pin can be updated.
if [ "$ver" = "$want" ]; then
    while read -r _ sum file; do
        [ -f "$dl/$file" ] || die "missing $dl/$file"
        echo "$sum  $dl/$file" | sha256sum --quiet -c - ||
            die "SHA-256 mismatch for $file (see scripts/base.lock)"
    done < <(grep '^sha256 ' "$TOP/scripts/base.lock")
    log "SHA-256 verified for $pkg $ver"
else
    (cd "$dl" && awk '/^Checksums-Sha256:/ {f=1; next} /^[^ ]/ {f=0} f {print $3}' "$dsc" |
        xargs sha256sum)
fi

rm -rf "$BASE_DIR" "$BUILD/base.tmp"
mkdir -p "$BUILD/base.tmp"
log "unpacking with dpkg-source -x (applies Debian's patches)"
dpkg-source --no-check -x "$dl/$dsc" "$BUILD/base.tmp/qemu" >/dev/null
mv "$BUILD/base.tmp/qemu" "$BASE_DIR"
rm -rf "$BUILD/base.tmp"
echo "$ver" > "$BASE_DIR/.base-version"
log "base ready: $BASE_DIR ($pkg $ver)"

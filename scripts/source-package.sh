#!/usr/bin/env bash
# make source-package: a Debian source package of qemu that carries the
# series.  From the pinned base (build/base, as dpkg-source -x unpacked it):
#   - debian/patches/mt/NNNN-*.patch: patches/, after Debian's own patches
#     in debian/patches/series;
#   - debian/changelog: a new entry, version BASE+mtN (MT_REVISION, default
#     1), e.g. 1:10.0.13+ds-0+deb13u1+mt1;
#   - debian/control: Build-Depends-Arch liblz4-dev, with the
#     "# --enable-lz4" line that debian/extract-config-opts turns into a
#     configure option (Debian's package has no lz4: compress-method lz4
#     would be missing from the .deb);
#   - dpkg-source -b, with the pinned orig tarball, into build/pkg/.
# Then the check (also "scripts/source-package.sh check", run by make check):
# dpkg-source -x of the result must give the materialized tree (build/src at
# the series' last commit) exactly, but for the debian/ files this changes
# (debian/patches/series, debian/changelog, debian/control's lz4 lines;
# debian/patches/mt/ must be patches/), quilt's .pc/ state, and empty
# directories (git has none).  The .dsc must list liblz4-dev and
# libzstd-dev, and debian/rules' configure options must enable both.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

PKG=$BUILD/pkg
base_ver=$(cat "$BASE_DIR/.base-version" 2>/dev/null) ||
    die "no base in $BASE_DIR (make base)"
ver="$base_ver+mt${MT_REVISION:-1}"
upstream=${base_ver#*:}
upstream=${upstream%-*}                       # 10.0.13+ds
nover=${ver#*:}                               # without the epoch
dsc=$PKG/qemu_$nover.dsc

build() {
    local tree=$PKG/qemu-$upstream orig n=0 date
    orig=$(ls "$CACHE"/base/qemu_"$upstream".orig.tar.* 2>/dev/null | head -n1)
    [ -n "$orig" ] || die "no orig tarball for $upstream in $CACHE/base (make base)"
    rm -rf "$PKG"
    mkdir -p "$PKG"
    ln -s "$orig" "$PKG/"
    log "unpacked base -> $tree"
    (cd "$BASE_DIR" && tar --exclude=./.base-version -cf - .) |
        (mkdir -p "$tree" && cd "$tree" && tar -xf -)
    mkdir -p "$tree/debian/patches/mt"
    {
        echo "# multi-thread compression for live migration (qemu-mt)"
        while read -r p; do
            cp "$PATCHES/$p" "$tree/debian/patches/mt/$p"
            echo "mt/$p"
            n=$((n + 1))
        done < <(series_list)
    } >> "$tree/debian/patches/series"
    add_lz4 "$tree/debian/control"
    # the date of the series' last change: the same package from the
    # same series
    date=$(git -C "$TOP" log -1 --format=%aD -- patches 2>/dev/null ||
           date -R -d @0)
    {
        cat <<EOF
qemu ($ver) trixie; urgency=medium

  * Multi-thread compression for live migration, $n patches in
    debian/patches/mt/ after Debian's own: the "compress" migration
    capability and its parameters as QEMU 2.4 to 9.0 had them (same QAPI
    names, ranges, defaults and zlib wire format; libvirt's
    --comp-methods mt works), a pool of compression threads on the source
    and of decompression threads on the destination, zero page detection,
    methods zstd and lz4 (compress-method, frames of up to 256 pages),
    XBZRLE and postcopy together with it, capability skip-unused-pages
    (pages the guest never used are not sent), thread teardown after the
    downtime window, and a switchover estimate that counts the pool's
    speed, data still in the socket and each page's compressed size;
    migrate_cancel no longer ends as "failed" on a lost link.
    See docs/multi-thread-compression.txt.

 -- qemu-mt <>  $date

EOF
        cat "$BASE_DIR/debian/changelog"
    } > "$tree/debian/changelog"
    log "dpkg-source -b ($ver)"
    (cd "$PKG" && dpkg-source -b "qemu-$upstream") >"$PKG/dpkg-source-b.log" 2>&1 || {
        tail -n 30 "$PKG/dpkg-source-b.log"
        die "dpkg-source -b failed (see $PKG/dpkg-source-b.log)"
    }
    cp "$tree/debian/changelog" "$PKG/changelog"
    rm -rf "$tree"
    ls -l "$PKG"
}

# lz4 beside zstd in Build-Depends-Arch, with its configure option
add_lz4() {
    grep -q '^ libzstd-dev,$' "$1" || die "$1: no ' libzstd-dev,' line"
    grep -q 'liblz4-dev' "$1" && return 0
    sed -i 's/^ libzstd-dev,$/&\n# --enable-lz4\n liblz4-dev,/' "$1"
}

check() {
    local x=$PKG/check rc=0 deps opts d o
    [ -f "$dsc" ] || die "no $dsc (make source-package)"
    # the materialized tree must hold the series as it is in patches/
    "$TOP/scripts/materialize.sh"
    rm -rf "$x"
    mkdir -p "$x"
    log "dpkg-source -x $(basename "$dsc")"
    (cd "$x" && dpkg-source -x "$dsc" tree) >"$PKG/dpkg-source-x.log" 2>&1 || {
        tail -n 30 "$PKG/dpkg-source-x.log"
        die "dpkg-source -x failed (see $PKG/dpkg-source-x.log)"
    }
    grep -c 'applying mt/' "$PKG/dpkg-source-x.log" | sed 's/^/series patches applied: /'
    # the materialized tree's files at the series' last commit
    git -C "$SRC" checkout-index -a --prefix="$x/src/"
    # the package's series patches are exactly patches/ (checked below);
    # the rest must be identical
    mv "$x/tree/debian/patches/mt" "$x/mt"
    rm -rf "$x/tree/.pc" "$x/src/debian/changelog" "$x/tree/debian/changelog" \
           "$x/src/debian/patches/series" "$x/tree/debian/patches/series"
    # debian/control: the lz4 lines, and nothing else, added
    deps=$(grep -E '^Build-Depends-Arch:' "$dsc" | tr ',' '\n' | sed 's/^ *//')
    for d in liblz4-dev libzstd-dev; do
        grep -qx -- "$d" <<<"$deps" || { echo "$(basename "$dsc") lacks $d"; rc=1; }
    done
    opts=$(cd "$x/tree" && sh debian/extract-config-opts linux-amd64 debian/control)
    for o in --enable-lz4 --enable-zstd; do
        grep -qx -- "$o" <<<"$opts" ||
            { echo "debian/rules would not configure with $o"; rc=1; }
    done
    add_lz4 "$x/src/debian/control"
    # git keeps no empty directory (the base has python/wheels)
    echo "empty directories left out: $(find "$x/tree" -type d -empty -print -delete | wc -l)"
    if diff -r --no-dereference "$x/src" "$x/tree" > "$PKG/check.diff"; then
        echo "dpkg-source -x == materialized tree (but debian/patches, debian/changelog, .pc)"
    else
        head -n 40 "$PKG/check.diff"
        echo "dpkg-source -x differs from the materialized tree (all in $PKG/check.diff)"
        rc=1
    fi
    # and the package's series patches are exactly patches/
    if [ "$(ls "$x/mt")" != "$(series_list)" ]; then
        echo "debian/patches/mt does not hold exactly the patches of patches/series"
        rc=1
    fi
    while read -r p; do
        cmp -s "$PATCHES/$p" "$x/mt/$p" || { echo "debian/patches/mt/$p differs"; rc=1; }
    done < <(series_list)
    echo "version: $(dpkg-parsechangelog -l "$PKG/changelog" -S Version)"
    rm -rf "$x"
    return $rc
}

case ${1:-build} in
build) build; check ;;
check) check ;;
*) die "usage: $0 [build|check]" ;;
esac

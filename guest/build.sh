#!/usr/bin/env bash
# Build the test guest: $GUEST_DIR/vmlinuz and $GUEST_DIR/initrd.img.
#
#  - kernel: Debian bookworm's cloud kernel image pinned in guest/kernel.lock,
#    fetched with apt-get download (private "bookworm" lists, shared with
#    scripts/install-deps.sh), cached in $CACHE/guest, SHA-256 checked and
#    extracted with dpkg-deb -x (never installed);
#  - initramfs (newc, gzip): /init = guest/workload.c built static, a corpus
#    under /corpus/code (kernel modules of that package + the workload) and
#    /corpus/text (kernel config, System.map, module lists, licenses, the
#    start of the package changelog), /dev/console, /proc, /sys, /dev.
#
# Idempotent: nothing is done when the outputs are newer than the inputs.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../scripts/lib.sh
. "$HERE/../scripts/lib.sh"

LOCK=$HERE/kernel.lock
DL=$CACHE/guest
OUT=$GUEST_DIR
CODE_BYTES=$((3 * 1024 * 1024))    # modules taken for the code corpus,
CODE_PICKS=64                       # ... spread over this many modules,
CODE_CAP=$((128 * 1024))            # ... at most this much of each
CHANGELOG_BYTES=$((1024 * 1024))    # head of the changelog for the text corpus

lock() { awk -v k="$1" '$1 == k { print $2; exit }' "$LOCK"; }
deb_name() { echo "${1}_${2/:/%3a}_amd64.deb"; }

mkdir -p "$DL" "$OUT"

# --- up to date? -------------------------------------------------------------
inputs=("$HERE/workload.c" "$HERE/build.sh" "$LOCK")
up_to_date() {
    local f o
    for o in vmlinuz initrd.img kernel.version; do
        [ -f "$OUT/$o" ] || return 1
        for f in "${inputs[@]}"; do [ "$OUT/$o" -nt "$f" ] || return 1; done
    done
}
if up_to_date; then
    read -r name ver _ < "$OUT/kernel.version"
    log "guest up to date in $OUT (kernel $name $ver)"
    [ "$name $ver" = "$(lock package) $(lock version)" ] ||
        warn "guest kernel $name $ver is not the pinned $(lock package) $(lock version)"
    exit 0
fi

# --- kernel package -------------------------------------------------------------
pkg=$(lock package); want=$(lock version); meta=$(lock meta)
want_sum=$(awk '$1 == "sha256" { print $2; exit }' "$LOCK")
if [ -z "$pkg" ] || [ -z "$want" ] || [ -z "$meta" ] || [ -z "$want_sum" ]; then
    die "incomplete $LOCK"
fi

name=$pkg ver=$want
deb=$DL/$(deb_name "$name" "$ver")
if [ ! -f "$deb" ]; then
    export DEBIAN_FRONTEND=noninteractive
    opts=$(apt_bookworm)
    log "updating private bookworm lists"
    # shellcheck disable=SC2086
    apt-get $opts -qq update
    # shellcheck disable=SC2086
    if ! apt-cache $opts madison "$pkg" | awk -F' *[|] *' '{ print $2 }' | grep -qxF "$want"; then
        # The pin is gone (bookworm-security keeps only the newest kernel):
        # take the image that the current candidate of the metapackage
        # depends on (the candidate, so not bookworm-backports' kernel).
        # shellcheck disable=SC2086
        mver=$(apt-cache $opts policy "$meta" | awk '$1 == "Candidate:" { print $2 }')
        # shellcheck disable=SC2086
        name=$(apt-cache $opts show "$meta=$mver" |
               awk '$1 == "Depends:" { for (i = 2; i <= NF; i++)
                                         if ($i ~ /^linux-image-/) { print $i; exit } }')
        [ -n "$name" ] || die "cannot resolve the kernel image of $meta $mver"
        # shellcheck disable=SC2086
        ver=$(apt-cache $opts policy "$name" | awk '$1 == "Candidate:" { print $2 }')
        if [ -z "$ver" ] || [ "$ver" = "(none)" ]; then die "no candidate for $name"; fi
        warn "================================================================"
        warn "pinned guest kernel $pkg $want is no longer in the archive;"
        warn "using $name $ver (from $meta $mver) instead."
        warn "It is NOT covered by guest/kernel.lock: update the pin."
        warn "================================================================"
        deb=$DL/$(deb_name "$name" "$ver")
    fi
    if [ ! -f "$deb" ]; then
        log "downloading $name=$ver"
        # shellcheck disable=SC2086
        (cd "$DL" && apt-get $opts -qq download "$name=$ver")
    fi
    [ -f "$deb" ] || die "apt-get download did not produce $deb"
fi

sum=$(sha256sum "$deb" | cut -d' ' -f1)
if [ "$name $ver" = "$pkg $want" ]; then
    [ "$sum" = "$want_sum" ] ||
        die "SHA-256 mismatch for $deb: $sum, guest/kernel.lock says $want_sum (delete the file to fetch it again)"
    log "SHA-256 verified for $name $ver"
else
    warn "unpinned guest kernel $name $ver, sha256 $sum"
fi

# --- workload ---------------------------------------------------------------------
log "building the workload (static)"
${CC:-gcc} -static -O2 -Wall -Wextra -o "$OUT/workload.tmp" "$HERE/workload.c"
mv "$OUT/workload.tmp" "$OUT/workload"

# --- extract the kernel package and assemble the initramfs ------------------------
tmp=$(mktemp -d "$OUT/tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
log "extracting $(basename "$deb")"
dpkg-deb -x "$deb" "$tmp/pkg"
vmlinuz=$(find "$tmp/pkg/boot" -name 'vmlinuz-*' | head -n 1)
[ -n "$vmlinuz" ] || die "no /boot/vmlinuz-* in $deb"

root=$tmp/root
mkdir -p "$root/proc" "$root/sys" "$root/dev" "$root/corpus/code" "$root/corpus/text"
cp "$OUT/workload" "$root/init"
if ! mknod -m 600 "$root/dev/console" c 5 1 2>/dev/null; then
    warn "cannot create /dev/console in the initramfs (not root?); early output may be lost"
fi

# Code: modules spread evenly over the sorted list (deterministic), the first
# CODE_CAP bytes of each (mostly .text), until CODE_BYTES; plus the workload.  Numbered names keep the order the
# workload concatenates them in (it sorts by name).
mapfile -t kos < <(cd "$tmp/pkg" && find lib/modules -name '*.ko' | LC_ALL=C sort)
[ "${#kos[@]}" -gt 0 ] || die "no uncompressed .ko modules in $deb"
stride=$(( ${#kos[@]} / CODE_PICKS )); [ "$stride" -ge 1 ] || stride=1
total=0 n=0
for ((i = 0; i < ${#kos[@]} && total < CODE_BYTES; i += stride)); do
    f=${kos[$i]}
    dst=$root/corpus/code/$(printf '%03d' $n)-$(basename "$f")
    head -c "$CODE_CAP" "$tmp/pkg/$f" > "$dst"
    total=$((total + $(stat -c %s "$dst"))) n=$((n + 1))
done
cp "$OUT/workload" "$root/corpus/code/$(printf '%03d' $n)-workload"

# Modules the workload loads with wl.modules=1, numbered in load order:
# virtio-balloon (free page hinting) and the virtio PCI transport under it.
mkdir -p "$root/modules"
k=0
for m in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev \
         virtio_pci virtio_balloon; do
    f=$(cd "$tmp/pkg" && find lib/modules -name "$m.ko" | head -n 1)
    [ -n "$f" ] || die "no $m.ko in $deb"
    cp "$tmp/pkg/$f" "$root/modules/$(printf '%02d' $k)-$m.ko"
    k=$((k + 1))
done

# Text: what the package has (config, System.map, module lists, changelog
# head) and the machine's common licenses (regular files only, not links).
t=$root/corpus/text
cp "$tmp/pkg"/boot/config-* "$t/00-config"
cp "$tmp/pkg"/boot/System.map-* "$t/01-System.map"
for f in modules.order modules.builtin; do
    for g in "$tmp/pkg"/lib/modules/*/"$f"; do
        if [ -f "$g" ]; then cp "$g" "$t/02-$f"; fi
    done
done
cl=$(find "$tmp/pkg/usr/share/doc" -name changelog.gz | head -n 1)
if [ -n "$cl" ]; then
    (zcat "$cl" || true) | head -c "$CHANGELOG_BYTES" > "$t/03-changelog"
fi
if [ -d /usr/share/common-licenses ]; then
    find /usr/share/common-licenses -maxdepth 1 -type f | LC_ALL=C sort |
        while read -r f; do cp "$f" "$t/10-$(basename "$f")"; done
fi
log "corpus: code $(du -sk "$root/corpus/code" | cut -f1) KiB ($n modules + workload), text $(du -sk "$t" | cut -f1) KiB"

find "$root" -exec touch -h -d @0 {} +
(cd "$root" && find . | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0 --reproducible) |
    gzip -n -6 > "$OUT/initrd.img.tmp"
cp "$vmlinuz" "$OUT/vmlinuz.tmp"
mv "$OUT/vmlinuz.tmp" "$OUT/vmlinuz"
mv "$OUT/initrd.img.tmp" "$OUT/initrd.img"
echo "$name $ver $sum" > "$OUT/kernel.version"
log "guest ready: $OUT/vmlinuz ($name $ver), $OUT/initrd.img ($(du -k "$OUT/initrd.img" | cut -f1) KiB)"

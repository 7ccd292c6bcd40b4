#!/usr/bin/env bash
# Materialize the series as a git tree in build/src: the pinned base as the
# first commit (tag "base"), then each patch of patches/series applied with
# git am as its own commit.  Edit it with ordinary git (commit, rebase -i,
# commit --fixup), then run scripts/export.sh to write patches/ back.
#
# Re-running is cheap and safe: it does nothing when build/src already holds
# exactly patches/, refuses to throw away commits that were not exported, and
# otherwise rewinds to "base" and re-applies (only files the series touches
# get new timestamps, so incremental builds stay incremental).
# FORCE=1 discards local work in build/src.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

[ -f "$BASE_DIR/.base-version" ] || "$TOP/scripts/fetch-base.sh"
want=$(series_digest)
stampf=$SRC/.git/qemu-mt-series

g() { git -C "$SRC" "$@"; }

if [ -d "$SRC/.git" ]; then
    if [ "$(cat "$stampf" 2>/dev/null)" = "$want $(g rev-parse HEAD)" ] &&
       [ -z "$(g status --porcelain --untracked-files=no)" ]; then
        log "build/src is up to date with patches/ ($want)"
        exit 0
    fi
    if [ "${FORCE:-0}" != 1 ]; then
        recorded_head=$(awk '{print $2}' "$stampf" 2>/dev/null || true)
        if [ -n "$(g status --porcelain --untracked-files=no)" ] ||
           [ "$(g rev-parse HEAD)" != "$recorded_head" ]; then
            die "build/src has commits or changes that are not in patches/.
       Export them first (make export), or discard them with FORCE=1."
        fi
    fi
    log "re-applying patches/ onto base in $SRC"
    g am --abort >/dev/null 2>&1 || true
    g checkout -q -f -B work base
    g clean -q -fdx
else
    log "creating $SRC from the base ($(cat "$BASE_DIR/.base-version"))"
    rm -rf "$SRC"
    mkdir -p "$SRC"
    # copy preserving timestamps; dpkg-source's quilt state (.pc) is not source
    (cd "$BASE_DIR" && tar --exclude=./.pc --exclude=./.base-version -cf - .) |
        (cd "$SRC" && tar -xf -)
    g init -q -b work
    g config user.name qemu-mt
    g config user.email ""
    g config core.autocrlf false
    g config format.signature ""
    g add -A -f .
    GIT_AUTHOR_DATE=$GIT_COMMITTER_DATE g commit -q --no-verify \
        -m "base: Debian qemu $(cat "$BASE_DIR/.base-version")"
    g tag base
fi

n=0
while read -r p; do
    [ -f "$PATCHES/$p" ] || die "patches/series names $p, which does not exist"
    g am -q --keep-cr "$PATCHES/$p" || die "$p does not apply (git -C $SRC am --show-current-patch)"
    n=$((n + 1))
done < <(series_list)
echo "$want $(g rev-parse HEAD)" > "$stampf"
log "build/src: base + $n patches, HEAD $(g rev-parse --short HEAD)"

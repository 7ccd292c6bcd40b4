#!/usr/bin/env bash
# Export the commits base..HEAD of build/src back into patches/ as
# git format-patch files, and rewrite patches/series in their order; the
# cover letter, patches/0000-cover-letter.patch, from
# patches/cover-letter.txt (subject, blank line, body) as git format-patch
# --cover-letter writes it (shortlog and diffstat of the series).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

g() { git -C "$SRC" "$@"; }
[ -d "$SRC/.git" ] || die "no materialized tree in $SRC (make materialize)"
[ -z "$(g status --porcelain --untracked-files=no)" ] ||
    die "build/src has uncommitted changes; commit them first"

# The series carries no personal identities: check before writing anything.
bad=$(g log --format='%h %an <%ae> / %cn <%ce>' base..HEAD |
      grep -v ' qemu-mt <> / ' || true)
[ -z "$bad" ] || die "commits not authored as 'qemu-mt <>' (run git -C build/src rebase base --exec 'git commit --amend --no-edit --reset-author'):
$bad"
if g log --format=%B base..HEAD | grep -qi '^signed-off-by:'; then
    die "a commit carries a Signed-off-by line; the series has none"
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# the cover letter's subject (first paragraph) and body: patches/cover-letter.txt
g config "branch.$(g symbolic-ref --short HEAD).description" \
    "$(cat "$PATCHES/cover-letter.txt")"
g format-patch -q --no-signature --zero-commit --cover-letter \
    --cover-from-description=subject -o "$tmp" base..HEAD
rm -f "$PATCHES"/*.patch
{
    echo "# The series, in order; applied by scripts/materialize.sh."
    (cd "$tmp" && ls -1 ./*.patch 2>/dev/null | sed 's|^\./||' | grep -v '^0000-')
} > "$PATCHES/series"
cp "$tmp"/*.patch "$PATCHES"/ 2>/dev/null || true
echo "$(series_digest) $(g rev-parse HEAD)" > "$SRC/.git/qemu-mt-series"
log "exported $(series_list | wc -l) patches to patches/"
git -C "$TOP" status --short -- patches

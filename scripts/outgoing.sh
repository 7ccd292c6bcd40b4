#!/usr/bin/env bash
# The series ready to post to qemu-devel, in build/outgoing/: every patch
# authored and signed off (Signed-off-by, git format-patch -s) by whoever
# runs this, in the name of git's user.name and user.email, with the
# cover letter of patches/cover-letter.txt.  Signing off certifies the
# Developer's Certificate of Origin: read it (QEMU's
# docs/devel/submitting-a-patch.rst) before you post.  patches/ and
# build/src do not change: the series itself carries no identity.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

g() { git -C "$SRC" "$@"; }
[ -d "$SRC/.git" ] || die "no materialized tree in $SRC (make materialize)"
# yours (git config --global), not the series' own (qemu-mt <>, lib.sh)
name=$(git config --global user.name || true)
email=$(git config --global user.email || true)
[ -n "$name" ] && [ -n "$email" ] ||
    die "set git config --global user.name and user.email first: the patches are signed off in that name"
export GIT_AUTHOR_NAME=$name GIT_AUTHOR_EMAIL=$email
export GIT_COMMITTER_NAME=$name GIT_COMMITTER_EMAIL=$email
unset GIT_COMMITTER_DATE

out="$BUILD/outgoing"
wt=$(mktemp -d)
trap 'g worktree remove --force "$wt" >/dev/null 2>&1 || true; g branch -D -q qemu-mt-outgoing >/dev/null 2>&1 || true' EXIT
g worktree add -q -B qemu-mt-outgoing "$wt" HEAD
git -C "$wt" rebase -q base \
    --exec 'git commit -q --amend --no-edit --reset-author --signoff'
git -C "$wt" config branch.qemu-mt-outgoing.description \
    "$(cat "$PATCHES/cover-letter.txt")"
rm -rf "$out"
git -C "$wt" format-patch -q --signoff --cover-letter \
    --cover-from-description=subject -o "$out" base..HEAD
log "$(ls "$out" | wc -l) files in $out, signed off by $name <$email>; post with:"
echo "  git send-email --to=<the qemu-devel list> --cc=<the migration maintainers> $out/*.patch"

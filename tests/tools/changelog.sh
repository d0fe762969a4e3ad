#!/usr/bin/env bash
# tests/tools/changelog.sh: prints CHANGELOG.md from the commit messages, one
# section per release tag (v*), newest first, up to the last tag reachable from
# HEAD (or the tag given). Commits are the first-parent history: a merge's
# subject summarizes its branch. After tagging a release:
#
#   git tag -a v1.2.3 -m 'devsys 1.2.3' && tests/tools/changelog.sh >CHANGELOG.md
#
#   tests/tools/changelog.sh [TAG]      default: git describe --tags --abbrev=0
# tests/integration/release.test.sh checks the committed file is this output.
set -euo pipefail

cd "$(dirname "$0")/../.."
last=${1:-$(git describe --tags --abbrev=0 --match 'v*' 2>/dev/null)} || {
    echo "changelog.sh: no v* tag is reachable from HEAD (a shallow clone? fetch the tags)" >&2
    exit 1
}
git rev-parse -q --verify "refs/tags/$last" >/dev/null || {
    echo "changelog.sh: no tag named $last" >&2
    exit 1
}

# The release tags that are ancestors of $last (itself included), newest first.
mapfile -t tags < <(git tag --merged "$last" --list 'v*' --sort=-v:refname)

cat <<'HEAD'
# Changelog

Generated from the commit messages by `tests/tools/changelog.sh` (first-parent
history, so a merge's line summarizes its branch), one section per release tag.
Do not edit by hand: after `git tag -a vX.Y.Z`, run
`tests/tools/changelog.sh >CHANGELOG.md` and commit it.
HEAD

for ((i = 0; i < ${#tags[@]}; i++)); do
    tag=${tags[i]}
    range=$tag
    (( i + 1 < ${#tags[@]} )) && range="${tags[i + 1]}..$tag"
    printf '\n## %s (%s)\n\n' "$tag" "$(git log -1 --format=%ad --date=short "$tag^{commit}")"
    # Full hashes cut to 7: git's own abbreviation grows with the repository.
    git log --first-parent --format='%H %s' "$range" \
        | awk '{ h = substr($1, 1, 7); $1 = ""; printf "- %s (%s)\n", substr($0, 2), h }'
done

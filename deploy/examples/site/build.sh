#!/bin/sh
# build.sh SRC OUT VERSION: the "coding" step of the sample pipeline. Stamps
# the version into the pages and packs them as OUT (a .tar.gz).
set -eu
src=$1 out=$2 version=${3:-dev}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp -R "$src"/. "$tmp"/
for f in "$tmp"/*.html; do
    sed "s/@VERSION@/$version/g" "$f" >"$f.new" && mv "$f.new" "$f"
done
mkdir -p "$(dirname "$out")"
tar -C "$tmp" -czf "$out" .
echo "built $out ($version)"

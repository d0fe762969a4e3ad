#!/bin/sh
# run-tests.sh SITE_DIR_OR_TARBALL JUNIT_OUT: the sample site's tests, written
# as JUnit XML (one testcase per check) so the testing step can read them.
# Checks: every page has a <title>, every local link resolves, the version
# was stamped, every page that required-pages (next to this script, one name
# a line) lists exists. Exits 1 when a check failed.
set -u
in=$1 out=$2
required=$(dirname "$0")/required-pages
dir=$in
if [ -f "$in" ]; then
    dir=$(mktemp -d)
    trap 'rm -rf "$dir"' EXIT
    tar -C "$dir" -xzf "$in"
fi
cases="" failures=0 tests=0
esc() { printf '%s' "$1" | sed 's/&/\&amp;/g; s/</\&lt;/g; s/>/\&gt;/g; s/"/\&quot;/g'; }
check() { # check CLASS NAME MESSAGE-IF-FAILED COMMAND...
    class=$1 name=$2 msg=$3
    shift 3
    tests=$((tests + 1))
    if "$@" >/dev/null 2>&1; then
        cases="$cases<testcase classname=\"$(esc "$class")\" name=\"$(esc "$name")\" time=\"0.001\"/>
"
    else
        failures=$((failures + 1))
        cases="$cases<testcase classname=\"$(esc "$class")\" name=\"$(esc "$name")\" time=\"0.001\"><failure message=\"$(esc "$msg")\"/></testcase>
"
    fi
}
for page in "$dir"/*.html; do
    p=$(basename "$page")
    check "site.pages" "$p has a title" "$p has no <title>" grep -q '<title>[^<]' "$page"
    for link in $(grep -o 'href="[^":]*"' "$page" | sed 's/href="//; s/"$//'); do
        check "site.links" "$p links to $link" "$p: $link does not exist" test -e "$dir/$link"
    done
done
if [ -f "$required" ]; then
    while IFS= read -r p; do
        case $p in ''|'#'*) continue ;; esac
        check "site.pages" "$p exists" "$p is required (tests/required-pages) but not in the site" test -f "$dir/$p"
    done <"$required"
fi
check "site.build" "version is stamped" "index.html still says @VERSION@" sh -c "! grep -q @VERSION@ '$dir/index.html'"
mkdir -p "$(dirname "$out")"
{
    printf '<?xml version="1.0" encoding="UTF-8"?>\n'
    printf '<testsuites tests="%d" failures="%d">\n<testsuite name="site" tests="%d" failures="%d">\n' \
        "$tests" "$failures" "$tests" "$failures"
    printf '%s' "$cases"
    printf '</testsuite>\n</testsuites>\n'
} >"$out"
echo "$tests tests, $failures failed"
[ "$failures" -eq 0 ]

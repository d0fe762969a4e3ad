#!/usr/bin/env bash
# Every shell script of the repository (*.sh, and files whose first line
# names sh or bash: dev, .ci/run, tests/run, ...) is clean under shellcheck at
# severity warning and up; a disable needs a comment saying why.
# A static check, so not part of the test suite (it would run once per
# build): `./dev lint shellcheck` runs it, and .ci/run's lint gate. TAP out.
# shellcheck source=tests/integration/itest.sh
source "$(dirname "$0")/../integration/itest.sh"
cd "$ds_root" || it_bail "cd $ds_root"
command -v shellcheck >/dev/null || it_bail "shellcheck on PATH" "install Debian's shellcheck (./dev deps)"

# The scripts: tracked files when this is a git checkout, else every file.
list_files() {
    if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        git ls-files --cached --others --exclude-standard
    else
        find . -path ./.git -prune -o -path './build*' -prune -o -type f -print | sed 's#^\./##'
    fi
}
scripts=()
while IFS= read -r f; do
    [[ -f $f ]] || continue
    case $f in
        *.sh) scripts+=("$f") ;;
        *.py|*.c|*.h|*.md|*.json|*.yml|*.yaml|*.sql|*.xml|*.lua) ;;
        *) head -n 1 "$f" 2>/dev/null | grep -qE '^#!.*[/ ](ba)?sh( |$)' && scripts+=("$f") ;;
    esac
done < <(list_files | sort)
printf '%s\n' "${scripts[@]}" >"$IT_DIR/scripts.txt"
for s in dev .ci/run tests/run tests/lib.sh tests/integration/itest.sh; do
    ok "the script list holds $s" grep -qx "$s" "$IT_DIR/scripts.txt"
done

# Two at a time: the files are independent and the runner has two cores.
ok "shellcheck -S warning on all ${#scripts[@]} scripts" \
    sh -c 'xargs -0 -n 8 -P 2 shellcheck -x -S warning -f gcc' < <(printf '%s\0' "${scripts[@]}")

# Each disable directive has a reason on its line or the line above.
unexplained=$(for f in "${scripts[@]}"; do
    awk -v f="$f" '/^[[:space:]]*# shellcheck disable=/ && $0 !~ /disable=[A-Z0-9,]+[[:space:]]+[#(:-]|disable=[A-Z0-9,]+[[:space:]]+[a-z]/ \
                   && prev !~ /^[[:space:]]*#/ { print f ":" NR ": " $0 } { prev = $0 }' "$f"
done)
is "$unexplained" "" "every shellcheck disable is explained"

# The check sees a warning (it is not vacuous).
printf '#!/usr/bin/env bash\nrm -rf "$DIR"/ *\nx=1\n' >"$IT_DIR/bad.sh"
ok "a script with warnings fails" it_not shellcheck -S warning "$IT_DIR/bad.sh"
it_done

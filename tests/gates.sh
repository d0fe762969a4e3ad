#!/usr/bin/env bash
# tests/gates.sh: the CI gates besides the suite and the fuzzers, sourced by
# ./dev: `./dev lint` (shellcheck, cppcheck, clang-tidy), `./dev valgrind`
# (the unit tests under memcheck), `./dev coverage` (gcovr and its floor).
# Uses dev's BUILD, ensure_packages, build_dir, rel, die and lib.sh's ds_root.
# shellcheck disable=SC2154 # ds_root and BUILD are set by lib.sh and dev, which source this

# coverage_build DIR: DIR built with gcov instrumentation (-Db_coverage=true;
# an existing DIR is switched over), its old counters (*.gcda) removed so
# that a report covers the next run only. It is built with -Werror under
# CI like the others.
coverage_build() {
    local dir=$1 opts=(-Db_coverage=true)
    if [[ -f $dir/build.ninja ]]; then
        meson configure "$dir" "${opts[@]}" >/dev/null || return 1
    fi
    build_dir "$dir" "${opts[@]}" || return 1
    find "$dir" -name '*.gcda' -delete
}

# coverage_report DIR: gcovr's line and branch coverage of proto/, common/,
# agents/ and manager/ from the counters the last run left in DIR; fails when
# the line coverage is under the floor in .ci/coverage-floor (a percentage
# that only rises: raise it to the measured value minus a small margin; a
# value under one it had in an earlier commit fails too).
# Writes "P F" to DIR/coverage-summary.txt.
coverage_report() {
    local dir=$1 floor line json
    rm -f "$dir/coverage-summary.txt"
    command -v gcovr >/dev/null || { printf 'not ok 1 - gcovr on PATH (./dev deps)\n'; printf '0 1\n' >"$dir/coverage-summary.txt"; return 1; }
    if ! find "$dir" -name '*.gcda' -print -quit | grep -q .; then
        printf 'not ok 1 - coverage counters in %s (run `DEVSYS_COVERAGE=1 ./dev test` or `./dev coverage` first)\n' "$(rel "$dir")"
        printf '0 1\n' >"$dir/coverage-summary.txt"
        return 1
    fi
    floor=$(grep -Eo '^[0-9]+(\.[0-9]+)?' .ci/coverage-floor 2>/dev/null | head -n 1)
    json=$dir/coverage.json
    # -j 2: gcov over the object files two at a time; generated sources
    # (migrations_data.c, ui_data.c) are data, not code
    gcovr -r "$ds_root" --object-directory "$dir" -j 2 \
        --filter 'proto/' --filter 'common/' --filter 'agents/' --filter 'manager/' \
        --exclude '.*_data\.c$' --exclude-unreachable-branches \
        --print-summary --json-summary "$json" --json-summary-pretty \
        --txt "$dir/coverage.txt" >"$dir/coverage-summary.log" 2>&1 || {
        cat "$dir/coverage-summary.log"
        printf 'not ok 1 - gcovr failed\n'
        printf '0 1\n' >"$dir/coverage-summary.txt"
        return 1
    }
    # per file, lowest first, then the totals
    awk 'NR > 6 && /%/ && $1 != "TOTAL" { printf "%-40s %6s lines %5s\n", $1, $2, $4 }' "$dir/coverage.txt" \
        | sort -k4 -n | head -n 10 | sed 's/^/# lowest: /'
    cat "$dir/coverage-summary.log"
    line=$(jq -r '.line_percent' "$json")
    if [[ -z $floor ]]; then
        printf 'not ok 1 - line coverage %s%% (no floor in .ci/coverage-floor)\n' "$line"
        printf '0 1\n' >"$dir/coverage-summary.txt"
        return 1
    fi
    # the floor only rises: never under a value it had in any earlier commit
    local highest
    highest=$(git log --format=%H -- .ci/coverage-floor 2>/dev/null | while read -r c; do
        git show "$c:.ci/coverage-floor" 2>/dev/null | grep -Eo '^[0-9]+(\.[0-9]+)?' | head -n 1
    done | sort -n | tail -n 1)
    if [[ -n $highest ]] && awk -v f="$floor" -v h="$highest" 'BEGIN { exit !(f + 0 < h + 0) }'; then
        printf 'not ok 1 - the floor in .ci/coverage-floor went down to %s%% (it was %s%%; it only rises)\n' "$floor" "$highest"
        printf '0 1\n' >"$dir/coverage-summary.txt"
        return 1
    fi
    if awk -v l="$line" -v f="$floor" 'BEGIN { exit !(l + 0 >= f + 0) }'; then
        printf 'ok 1 - line coverage %s%% >= floor %s%% (.ci/coverage-floor)\n' "$line" "$floor"
        printf '1 0\n' >"$dir/coverage-summary.txt"
    else
        printf 'not ok 1 - line coverage %s%% is under the floor %s%% (.ci/coverage-floor)\n' "$line" "$floor"
        printf '0 1\n' >"$dir/coverage-summary.txt"
        return 1
    fi
}

# ./dev coverage [WORD...]: the suite (or the files named by WORDs) on a
# gcov build/, then the report; ./dev coverage report: the report only.
cmd_coverage() {
    if [[ ${1:-} == report ]]; then
        coverage_report "$BUILD"
        return
    fi
    DEVSYS_COVERAGE=1 "$ds_root/dev" test "$@"
    local st=$?
    coverage_report "$BUILD" || return 1
    return "$st"
}

# ./dev valgrind [WORD...]: the cmocka unit tests of build/ under valgrind
# (memcheck, full leak check; any error or leak fails the binary), with the
# redis-server and PostgreSQL tests/run starts. Totals in
# build/valgrind-summary.txt.
cmd_valgrind() {
    ensure_packages
    command -v valgrind >/dev/null || die "valgrind is not installed (./dev deps)"
    build_dir "$BUILD" || die "build failed"
    rm -f "$BUILD/valgrind-summary.txt"
    DS_UNIT_ONLY=1 DS_BUILD=$BUILD \
        DS_UNIT_WRAP="valgrind -q --leak-check=full --show-leak-kinds=definite,indirect,possible --errors-for-leak-kinds=definite,indirect,possible --error-exitcode=99 --track-fds=no" \
        "$ds_root/tests/run" "$@"
    local st=$?
    cp "$BUILD/test-summary.txt" "$BUILD/valgrind-summary.txt" 2>/dev/null
    return "$st"
}

# The C sources lint looks at: every file of the build's
# compile_commands.json that is in the repository (not the generated ones).
lint_sources() {
    jq -r '.[] | .file' "$BUILD/compile_commands.json" | sed 's#^\.\./##' | sort -u \
        | while read -r f; do [[ -f $f && $f != build* ]] && printf '%s\n' "$f"; done
}

# lint_tidy N: clang-tidy (checks in .clang-tidy, tests/unit/.clang-tidy) on
# every source, two at a time, one file per clang-tidy: given several, 14
# uses the first file's checks for all. gcc-only flags of a build must not
# stop clang. Every
# finding, and any clang-tidy that fails, is an error.
lint_tidy() {
    local n=$1 out=$LINT_TMP/clang-tidy.out cnt st
    lint_sources | xargs -r -n 1 -P "${LINT_JOBS:-2}" clang-tidy -p "$BUILD" --quiet \
        --extra-arg=-Wno-unknown-warning-option >"$out" 2>"$LINT_TMP/clang-tidy.err"
    st=$?
    cnt=$(grep -cE '(^|: )(warning|error): ' "$out")
    if (( st == 0 && cnt == 0 )); then
        printf 'ok %d - clang-tidy clean on %d files (.clang-tidy)\n' "$n" "$(lint_sources | wc -l)"
    else
        printf 'not ok %d - clang-tidy: %d findings (exit %d)\n' "$n" "$cnt" "$st"
        grep -E '(^|: )(warning|error): |^Error' "$out" "$LINT_TMP/clang-tidy.err" | sort -u | head -n 200 | sed 's/^/# /'
        return 1
    fi
}

# lint_cppcheck N: cppcheck on the same files (warning, portability,
# performance); suppressions are inline with a reason, but one:
# varFuncNullUB, NULL as the last argument of a variadic call (execl,
# json_pack): undefined only where NULL is a plain int 0; glibc, the only libc
# devsys targets, defines it as ((void *)0). .ci/cppcheck/devsys.cfg gives
# cppcheck the system macros it would otherwise refuse (it reads no system
# header).
lint_cppcheck() {
    local n=$1 out=$LINT_TMP/cppcheck.out ex=()
    while read -r f; do ex+=(-i "$f"); done < <(jq -r '.[] | .file' "$BUILD/compile_commands.json" \
        | sed 's#^\.\./##' | sort -u | grep -v -x -F -f <(lint_sources))
    mkdir -p "$LINT_TMP/cppcheck-build"
    cppcheck --project="$BUILD/compile_commands.json" "${ex[@]}" \
        --enable=warning,portability,performance --inline-suppr \
        --suppress=varFuncNullUB --library=.ci/cppcheck/devsys.cfg \
        -j "${LINT_JOBS:-2}" --quiet --error-exitcode=1 --cppcheck-build-dir="$LINT_TMP/cppcheck-build" \
        --template='{file}:{line}: {severity}: {message} [{id}]' >"$out" 2>&1
    local st=$?
    if (( st == 0 )) && [[ ! -s $out ]]; then
        printf 'ok %d - cppcheck clean on %d files (warning, portability, performance)\n' "$n" "$(lint_sources | wc -l)"
    else
        printf 'not ok %d - cppcheck (exit %d)\n' "$n" "$st"
        sed 's/^/# /' "$out"
        return 1
    fi
}

# lint_shellcheck N: tests/lint/shellcheck.sh (TAP), shown as its cases.
lint_shellcheck() {
    local n=$1
    bash tests/lint/shellcheck.sh >"$LINT_TMP/shellcheck.tap" 2>"$LINT_TMP/shellcheck.err"
    local st=$?
    if (( st == 0 )) && ! grep -q '^not ok' "$LINT_TMP/shellcheck.tap"; then
        printf 'ok %d - shellcheck: %s\n' "$n" "$(grep -c '^ok' "$LINT_TMP/shellcheck.tap") checks pass (tests/lint/shellcheck.sh)"
    else
        printf 'not ok %d - shellcheck (tests/lint/shellcheck.sh, exit %d)\n' "$n" "$st"
        sed 's/^/# /' "$LINT_TMP/shellcheck.tap" "$LINT_TMP/shellcheck.err"
        return 1
    fi
}

# ./dev lint [clang-tidy|cppcheck|shellcheck...]: the static checks (all
# three by default) on build/'s compile_commands.json; each is a case, with
# its time. Totals in build/lint-summary.txt.
cmd_lint() {
    local which=("$@") n=0 p=0 f=0 t0 c
    (( ${#which[@]} )) || which=(shellcheck cppcheck clang-tidy)
    ensure_packages
    rm -f "$BUILD/lint-summary.txt"
    mkdir -p "$BUILD"
    if ! build_dir "$BUILD" >"$BUILD/lint-build.log" 2>&1; then
        tail -n 40 "$BUILD/lint-build.log"
        printf 'not ok 1 - build %s\n0 passed, 1 failed\n' "$(rel "$BUILD")"
        printf '0 1\n' >"$BUILD/lint-summary.txt"
        return 1
    fi
    LINT_TMP=$(mktemp -d "${TMPDIR:-/tmp}/devsys-lint.XXXXXX") || exit 1
    # shellcheck disable=SC2064 # $LINT_TMP is expanded now on purpose
    trap "rm -rf '$LINT_TMP'" EXIT
    for c in "${which[@]}"; do
        n=$((n + 1))
        t0=$SECONDS
        case $c in
            clang-tidy) lint_tidy "$n" ;;
            cppcheck) lint_cppcheck "$n" ;;
            shellcheck) lint_shellcheck "$n" ;;
            *) printf 'not ok %d - unknown check %s (clang-tidy, cppcheck, shellcheck)\n' "$n" "$c"; false ;;
        esac && p=$((p + 1)) || f=$((f + 1))
        printf '# %s: %ds\n' "$c" $((SECONDS - t0))
    done
    printf '%d %d\n' "$p" "$f" >"$BUILD/lint-summary.txt"
    printf '%d passed, %d failed\n' "$p" "$f"
    (( f == 0 ))
}

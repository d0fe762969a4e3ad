#!/usr/bin/env bash
# The manager's route table: README shows exactly what `devsys-manager routes`
# prints, and the running manager serves every row with the role it states:
# a token below the row's role gets 403 naming the role, one at it gets past
# the check; a method the path lacks is a 405 with Allow; an unknown path 404.
# shellcheck source=tests/integration/itest.sh
source "$(dirname "$0")/itest.sh"
it_setup
it_start_manager || it_bail "start manager"

routes=$("$BIN/manager/devsys-manager" routes)
readme=$(sed -n '/^<!-- routes: begin/,/^<!-- routes: end/p' "$ds_root/README.md" | grep '^|')
is "$readme" "$routes" "README's route table is what devsys-manager routes prints"

VIEWER=viewer-secret-1 OPERATOR=operator-secret-1
for t in "viewer $VIEWER" "operator $OPERATOR"; do
    read -r role secret <<<"$t"
    it_psql "INSERT INTO api_tokens (name, role, token_hash)
             VALUES ('$role', '$role', encode(sha256(convert_to('$secret', 'UTF8')), 'hex'))" >/dev/null \
        || it_bail "insert the $role token"
done

H=$IT_DIR/headers B=$IT_DIR/body
# call METHOD PATH [TOKEN]: prints the status; headers in $H, body in $B
call() {
    local auth=()
    [[ -n ${3:-} ]] && auth=(-H "Authorization: Bearer $3")
    curl -s -D "$H" -o "$B" -w '%{http_code}' -X "$1" "${auth[@]}" "$DEVSYS_URL$2"
}
# example PATTERN: the pattern with each parameter filled in
example() {
    local p=${1//\{id\}/00000000-0000-7000-8000-0000000000aa}
    p=${p//\{queue\}/routes}
    p=${p//\{name\}/nobody}
    p=${p//\{app\}/web}
    printf '%s\n' "${p//\{entry\}/1-1}"
}

rows=0
declare -A allow=()
while IFS='|' read -r _ method pattern role _; do
    method=$(tr -d ' `' <<<"$method") pattern=$(tr -d ' `' <<<"$pattern") role=${role# }
    role=${role%% *}
    [[ $method == method || $method == ---* ]] && continue
    rows=$((rows + 1))
    allow[$pattern]=${allow[$pattern]:+${allow[$pattern]}, }$method
    path=$(example "$pattern")
    case $role in
        none)
            is "$(call "$method" "$path")" 200 "$method $pattern: served without a token" ;;
        viewer)
            st=$(call "$method" "$path" "$VIEWER")
            ok "$method $pattern: a viewer gets past the route checks ($st $(head -c 80 "$B"))" \
                test "$st" != 403 -a "$st" != 405 -a "$st" != 401 -a "$(jq -r .error "$B" 2>/dev/null)" != "no such endpoint" ;;
        operator)
            is "$(call "$method" "$path" "$VIEWER")" 403 "$method $pattern: a viewer gets 403"
            like "$(jq -r .error "$B")" 'needs the operator role' "$method $pattern: the 403 names the role"
            st=$(call "$method" "$path" "$OPERATOR")
            ok "$method $pattern: an operator gets past the route checks ($st $(head -c 80 "$B"))" \
                test "$st" != 403 -a "$st" != 405 -a "$st" != 401 -a "$(jq -r .error "$B" 2>/dev/null)" != "no such endpoint" ;;
        admin)
            is "$(call "$method" "$path" "$OPERATOR")" 403 "$method $pattern: an operator gets 403"
            like "$(jq -r .error "$B")" 'needs the admin role' "$method $pattern: the 403 names the role"
            st=$(call "$method" "$path" "$DEVSYS_TOKEN")
            ok "$method $pattern: an admin gets past the route checks ($st $(head -c 80 "$B"))" \
                test "$st" != 403 -a "$st" != 405 -a "$st" != 401 -a "$(jq -r .error "$B" 2>/dev/null)" != "no such endpoint" ;;
        *)
            it_bail "a role the test does not know: '$role' ($method $pattern)" ;;
    esac
done <<<"$routes"
ok "the table has rows ($rows)" test "$rows" -ge 15

# A method a path does not have: 405 listing the ones it has, in table order.
for pattern in "${!allow[@]}"; do
    for m in GET POST DELETE; do
        [[ ", ${allow[$pattern]}, " == *", $m, "* ]] && continue
        is "$(call "$m" "$(example "$pattern")" "$OPERATOR")" 405 "$m $pattern: 405"
        is "$(grep -i '^Allow:' "$H" | tr -d '\r')" "Allow: ${allow[$pattern]}" "$m $pattern: Allow: ${allow[$pattern]}"
        break
    done
done

is "$(call GET /v1/nothing "$VIEWER")" 404 "an unknown path: 404"
is "$(jq -r .error "$B")" "no such endpoint" "the 404 says so"
is "$(call GET /v1/nothing)" 401 "an unknown path without a token: 401 (routes are not probed before auth)"
is "$(call GET /v1/dlq/no%20such/x "$VIEWER")" 400 "a {queue} that is not a queue name: 400"
like "$(jq -r .error "$B")" '^queue: ' "the 400 names the queue"
is "$(call GET /v1/dlq/routes/1-1/cancel "$VIEWER")" 404 "a path one segment off every route: 404"
it_done

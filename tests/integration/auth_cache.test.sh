#!/usr/bin/env bash
# Tokens: a revoked or downgraded token stops working within a second; random
# tokens cost a bounded number of PostgreSQL lookups, are counted in
# /metrics and leave a sampled audit trail. Lookups are counted in the
# server's own statement log (a private cluster with log_statement=all).
# shellcheck source=tests/integration/itest.sh
source "$(dirname "$0")/itest.sh"
it_setup
it_private_postgres || it_bail "private PostgreSQL"
it_psql "ALTER DATABASE devsys SET log_statement = 'all'" >/dev/null || it_bail "log_statement"
it_start_manager || it_bail "start manager"
CLIENTS=$(dirname "$0")/http_clients.py
port=${DEVSYS_URL##*:}
PGLOG=$IT_PRIV_PG_DIR/postgres.log
OP=op-secret-1

# lookups: token lookups PostgreSQL has executed so far
lookups() { grep -c 'execute .*SELECT role, name FROM api_tokens' "$PGLOG"; }
# st METHOD TOKEN: the HTTP status of a request on /v1/tasks with TOKEN
st() {
    if [[ $1 == POST ]]; then
        curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $2" -d '{"kind":"noop"}' "$DEVSYS_URL/v1/tasks"
    else
        curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $2" "$DEVSYS_URL/v1/tasks?limit=1"
    fi
}
# until_status METHOD TOKEN STATUS: polls every 100 ms (3 s at most); prints the ms it took
until_status() {
    local start now
    start=$(ds_now_ms)
    while [[ $(st "$1" "$2") != "$3" ]]; do
        now=$(ds_now_ms)
        (( now - start > 3000 )) && { echo "never"; return; }
        sleep 0.1
    done
    echo $(( $(ds_now_ms) - start ))
}
# metric NAME_AND_LABELS: its value on /metrics (0 if absent)
metric() { curl -s "$DEVSYS_URL/metrics" | awk -v m="$1" '$1 == m {print $2; f=1} END {if (!f) print 0}'; }

it_psql "INSERT INTO api_tokens (name, role, token_hash)
         VALUES ('ci', 'operator', encode(sha256(convert_to('$OP', 'UTF8')), 'hex'))" >/dev/null
is "$(st POST "$OP")" 201 "an operator token submits"
is "$(st GET "$OP")" 200 "and reads"

# --- a role downgrade and a revocation take effect within a second
it_psql "UPDATE api_tokens SET role = 'viewer' WHERE name = 'ci'" >/dev/null
ms=$(until_status POST "$OP" 403)
it_diag "downgrade operator -> viewer took effect after $ms ms"
ok "downgraded to viewer: submitting gets 403 within 1.5 s ($ms ms)" test "$ms" != never -a "${ms/never/9999}" -lt 1500
is "$(st GET "$OP")" 200 "the viewer still reads"
it_psql "UPDATE api_tokens SET revoked_at = now() WHERE name = 'ci'" >/dev/null
ms=$(until_status GET "$OP" 401)
it_diag "revocation took effect after $ms ms"
ok "revoked: 401 within 1.5 s ($ms ms)" test "$ms" != never -a "${ms/never/9999}" -lt 1500

# --- random tokens do not turn into one query each
before=$(lookups)
f_inv=$(metric 'devsys_http_auth_failures_total{reason="invalid"}')
f_lim=$(metric 'devsys_http_auth_failures_total{reason="rate_limited"}')
start=$(ds_now_ms)
python3 "$CLIENTS" tokens 127.0.0.1 "$port" 500 >"$IT_DIR/tokens.out" 2>&1
secs=$(( ($(ds_now_ms) - start + 999) / 1000 ))
n=$(( $(lookups) - before ))
it_diag "500 random tokens in ${secs}s: $(tr '\n' ' ' <"$IT_DIR/tokens.out"); $n token lookups in PostgreSQL"
ok "500 random tokens cost at most 20 + 20/s lookups ($n in ${secs}s)" test "$n" -le $(( 20 + 20 * secs ))
is "$(awk '$1 == 401 || $1 == 429 {n += $2} END {print n}' "$IT_DIR/tokens.out")" 500 \
    "every one is refused (401, or 429 past the lookup rate)"
counted=$(awk -v a="$(metric 'devsys_http_auth_failures_total{reason="invalid"}')" \
    -v b="$(metric 'devsys_http_auth_failures_total{reason="rate_limited"}')" -v c="$f_inv" -v d="$f_lim" \
    'BEGIN {print a + b - c - d}')
is "$counted" 500 "devsys_http_auth_failures_total counts them"
before=$(lookups)
python3 "$CLIENTS" tokens 127.0.0.1 "$port" 100 same-wrong-token >"$IT_DIR/tokens.out" 2>&1
n=$(( $(lookups) - before ))
ok "the same unknown token 100 times: at most one lookup ($n)" test "$n" -le 1
audits=$(it_psql "SELECT count(*) FROM audit_log WHERE action = 'auth.denied'")
it_diag "auth.denied audit rows: $audits"
ok "failed attempts are audited, sampled per address and minute ($audits rows for 600+)" \
    test "$audits" -ge 1 -a "$audits" -le 4
is "$(st GET test-admin-token)" 200 "the admin token still works"
it_done

#!/usr/bin/env bash
# Malformed entries pushed with redis-cli: a readable reason is recorded, the
# agent stays up, and the next good task on the same queue succeeds.
# shellcheck source=tests/integration/itest.sh
source "$(dirname "$0")/itest.sh"
it_setup
it_start_agent a1 DEVSYS_QUEUES=exec
S='devsys:{exec}:stream'

reason_of() { it_psql "SELECT state || ': ' || last_error FROM tasks WHERE source='$1'"; }
wait_final() { it_wait_sql 20 "SELECT count(*) FROM tasks WHERE source='$1' AND state IN ('failed','dead')" 1; }

e=$(it_redis XADD "$S" '*' spec '{"kind":"exec","command":["echo",')
ok "bad JSON is recorded" wait_final "$e"
like "$(reason_of "$e")" 'invalid JSON' "bad JSON reason says invalid JSON"

e=$(it_redis XADD "$S" '*' spec '{"kind":"exec","command":"echo hi","timeout_s":"soon"}')
ok "wrong types are recorded" wait_final "$e"
like "$(reason_of "$e")" 'command: ' "wrong-type reason names the field"

e=$(printf '\x00\xff\xc1garbage\xdd\xff\xff\xff\xff' | it_redis -x XADD "$S" '*' spec)
ok "binary garbage is recorded" wait_final "$e"
like "$(reason_of "$e")" 'spec' "garbage reason names the spec"

e=$(it_redis XADD "$S" '*' nospec 1)
ok "entry without spec is recorded" wait_final "$e"
like "$(reason_of "$e")" 'spec: field missing' "missing spec reason"

big=$IT_DIR/big.json
{ printf '{"kind":"exec","command":["echo","'; head -c 10485760 /dev/zero | tr '\0' 'a'; printf '"]}'; } >"$big"
e=$(it_redis -x XADD "$S" '*' spec <"$big")
ok "10 MB field is recorded" wait_final "$e"
like "$(reason_of "$e")" 'exceeds the limit' "10 MB reason names the limit"

e=$(it_redis XADD "$S" '*' spec '{"kind":"exec","command":["sh","-c","echo still here"]}')
ok "next good task succeeds" it_wait_sql 20 "SELECT state FROM tasks WHERE source='$e'" succeeded
is "$(it_psql "SELECT output_tail FROM tasks WHERE source='$e'")" "still here" "its output is recorded"
ok "agent still running" kill -0 "${AGENT_PIDS[a1]}"
is "$(it_redis XLEN 'devsys:{exec}:dlq')" 5 "the 5 bad entries are dead letters"
dl=$(it_redis --no-raw XRANGE 'devsys:{exec}:dlq' - + COUNT 1)
like "$dl" 'invalid JSON' "the dead letter says why, readable with redis-cli XRANGE"
like "$dl" '"source"' "the dead letter names its source entry"
is "$(it_psql "SELECT count(*) FROM tasks WHERE state='dead' AND dlq_entry IS NOT NULL")" 5 \
    "dead tasks point at their dead letters"
is "$(it_redis XPENDING "$S" agents | head -1)" 0 "nothing left pending in the consumer group"
it_done

#!/usr/bin/env bash
# The kind registry at submit: an unknown kind, or a known kind with a bad
# section, is refused with a 400 naming the field, and nothing is inserted.
# shellcheck source=tests/integration/itest.sh
source "$(dirname "$0")/itest.sh"
it_setup
it_start_manager || it_bail "start manager"
T=test-admin-token
# submit BODY-FILE JSON: prints the HTTP status of POST /v1/tasks, body into the file
submit() { curl -s -o "$1" -w '%{http_code}' -X POST -H "Authorization: Bearer $T" "$DEVSYS_URL/v1/tasks" -d "$2"; }
B=$IT_DIR/body

is "$(submit "$B" '{"kind":"probe","probe":{"url":"http://x"}}')" 400 "kind probe (no such kind): 400"
is "$(jq -r '.errors[0].field' "$B")" kind "the 400 names the field"
is "$(jq -r '.errors[0].message' "$B")" 'kind: unknown kind "probe" (expected one of exec, coding, noop, sleep, testing, deploy, notify, monitor)' \
    "the 400 lists the kinds that exist"
is "$(it_psql "SELECT count(*) FROM tasks")" 0 "nothing was inserted"

is "$(submit "$B" '{"kind":"sleep","sleep":{"ms":"5"}}')" 400 "sleep.ms a string: 400"
is "$(jq -r '.errors[0].field' "$B")" sleep.ms "the 400 names sleep.ms"
like "$(jq -r '.errors[0].message' "$B")" 'must be an integer from 0 to 86400000' "the 400 says the rule"
is "$(submit "$B" '{"kind":"exec","command":["true"],"sleep":{"ms":1}}')" 400 "a section on a kind that does not own it: 400"
is "$(jq -r '.errors[0].message' "$B")" 'sleep: only allowed for kinds sleep and noop' "the 400 names the owners"
is "$(submit "$B" '[{"kind":"noop"},{"kind":"noop","next":[{"kind":"sleep","sleep":{"fail_first":-1}}]}]')" 400 \
    "a bad section inside a pipeline step, in a batch: 400"
is "$(jq -r '.errors[0].index' "$B")/$(jq -r '.errors[0].field' "$B")" "1/next[0].sleep.fail_first" \
    "the 400 names the index and the path"
is "$(it_psql "SELECT count(*) FROM tasks")" 0 "still nothing inserted"

is "$(submit "$B" '{"kind":"sleep","sleep":{"ms":5}}')" 201 "a valid sleep section: 201"
is "$(it_psql "SELECT kind FROM tasks")" sleep "exactly that task was inserted"
it_done

#!/usr/bin/env bash
# Destinations from a file: DEVSYS_NOTIFY_DESTINATIONS_FILE (a JSON array of
# the API's destination objects) is loaded at start and works like one added
# through the API; a bad entry stops the manager with a message naming the
# entry and the field.
source "$(dirname "$0")/itest.sh"
source "$(dirname "$0")/notify_lib.sh"
it_setup
SECRET=$(new_secret)
printf '{"ops": "%s"}\n' "$SECRET" >"$IT_DIR/secrets.json"
start_receiver rx 0 --secret "$SECRET" || it_bail "start receiver"

printf '[{"name": "x", "url": "http://h/", "events": ["task.dead"]}, {"name": "y", "url": "ftp://h/", "events": ["task.dead"]}]\n' \
    >"$IT_DIR/bad.json"
DEVSYS_NOTIFY_DESTINATIONS_FILE=$IT_DIR/bad.json DEVSYS_LISTEN=127.0.0.1:0 timeout 20 "$BIN/manager/devsys-manager" \
    </dev/null >"$IT_DIR/bad.out" 2>&1 7>&-
is "$?" 2 "a manager with a bad destinations file exits 2"
like "$(cat "$IT_DIR/bad.out")" 'DEVSYS_NOTIFY_DESTINATIONS_FILE .*/bad.json: \[1\]\.url: required, an http:// or https:// URL' \
    "naming the entry and the field"

jq -n --arg url "${RECV_URL[rx]}" '[{name: "filed", url: $url, events: ["task.dead"], secret_ref: "ops", group_wait_s: 0}]' \
    >"$IT_DIR/dest.json"
DEVSYS_NOTIFY_DESTINATIONS_FILE=$IT_DIR/dest.json DEVSYS_NOTIFY_TICK_S=0.2 it_start_manager || it_bail "start manager"
it_start_agent n1 DEVSYS_QUEUES=notify,sleep DEVSYS_NOTIFY_SECRETS_FILE="$IT_DIR/secrets.json"
ok "the file's destination is listed" it_wait_for 10 '[[ $(ctl notify list) == *filed*task.dead* ]]'
dead=$(ctl submit - <<<'{"kind":"sleep","sleep":{"ms":0,"fail_always":true},"retry_policy":{"max_attempts":1}}')
ok "a dead task reaches it" it_wait_for 20 '[[ $(received rx) == 1 ]]'
is "$(jq -r .body.data.task "$IT_DIR/recv-rx.jsonl")" "$dead" "with the task's event"
it_done

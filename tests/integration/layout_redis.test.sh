#!/usr/bin/env bash
# layout_redis.test.sh: Redis commands live in common/ (queue*.c over rc.c).
# Outside common/, no source file calls the hiredis command API, reads a
# redisReply or holds a Lua script: agents/ and manager/ call named queue
# operations (common/queue.h). tests/ are exempt (bench.c, fuzz, unit tests).
# shellcheck source=tests/integration/itest.sh
source "$(dirname "$0")/itest.sh"
cd "$ds_root" || it_bail "cd $ds_root"

# The grep README's layout section states.
redis_api='<hiredis/|redisReply|REDIS_REPLY_|redis[A-Za-z]*Command|rc_command'
hits=$(grep -rnE "$redis_api" agents manager)
is "$hits" "" "agents/ and manager/ neither call the hiredis command API nor read a redisReply"

lua=$(grep -rnE "redis\.call|redis\.pcall|\"EVAL\"|EVALSHA" agents manager)
is "$lua" "" "no Lua script (or EVAL) outside common/"

# The same patterns are live: they find what common/ does on everyone's behalf.
like "$(grep -rlE "$redis_api" common | sort | tr '\n' ' ')" 'common/queue\.c .*common/rc\.c' \
    "the grep finds the command API where it belongs (common/queue*.c, rc.c)"
like "$(grep -rlE 'redis\.call' common | sort | tr '\n' ' ')" 'common/queue_dlq\.c .*common/queue_retry\.c' \
    "every Lua script is in common/"

it_done

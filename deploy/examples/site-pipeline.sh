#!/bin/sh
# site-pipeline.sh [VERSION] [SITE_DIR]: prints site-pipeline.json with its
# placeholders filled: @VERSION@ (default 1.0.0) and @SITE@ (default the
# site/ next to this script, as an absolute path: the agents read it).
#   deploy/examples/site-pipeline.sh 1.0.1 | devsysctl pipeline submit -
set -eu
here=$(cd "$(dirname "$0")" && pwd)
version=${1:-1.0.0}
site=${2:-$here/site}
site=$(cd "$site" && pwd)
case $version in *[!A-Za-z0-9._-]*|'') echo "site-pipeline.sh: VERSION must be [A-Za-z0-9._-]+, not '$version'" >&2; exit 2 ;; esac
case $site in *'|'*|*'"'*|*'\'*) echo "site-pipeline.sh: SITE_DIR may not contain | \" or \\" >&2; exit 2 ;; esac
sed -e "s|@SITE@|$site|g" -e "s|@VERSION@|$version|g" "$here/site-pipeline.json"

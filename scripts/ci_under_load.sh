#!/usr/bin/env bash
# CI from a fresh clone (a new one each run), N times in a row (default 5), while one busy loop
# per core keeps every core busy: what CI must survive on a machine with other work. Prints one line per run and
# exits non-zero if any run failed. Usage: scripts/ci_under_load.sh [RUNS]
set -uo pipefail
runs=${1:-5}
repo=$(cd "$(dirname "$0")/.." && pwd)
commit=$(git -C "$repo" rev-parse HEAD)  # every run tests this commit, even if main moves on
work=$(mktemp -d)
cores=$(nproc)
load=()
for _ in $(seq "$cores"); do
  ( while :; do :; done ) &   # a shell busy loop: a whole core, no dependency
  load+=("$!")
done
trap 'kill "${load[@]}" 2>/dev/null; rm -rf "$work"' EXIT
echo "commit $commit; load: $cores busy loops (one per core); clones under $work"
failed=0
for i in $(seq "$runs"); do
  start=$(date +%s)
  rm -rf "$work/p" && git clone -q "$repo" "$work/p" && git -C "$work/p" checkout -q "$commit"
  if (cd "$work/p" && CI=true bash .ci/run >"$work/run-$i.log" 2>&1); then verdict=passed; else
    verdict=FAILED; failed=1; cp "$work/run-$i.log" "/tmp/ci-under-load-run-$i.log"; fi
  summary=$(grep -E "passed|failed" "$work/run-$i.log" | grep -E "in [0-9.]+s" | tail -1)
  echo "run $i: $verdict in $(( $(date +%s) - start )) s — $summary"
done
exit $failed

#!/usr/bin/env bash
# Builds this checkout's benchmarks into dist-bench and runs one: `bench/run-bench.sh limiter`.
# One benchmark at a time per machine: two at once would share dist-bench (each build deletes
# what the other runs) and the cores (each skewing the other's figures). A second one waits.
# BENCH_NO_APP_BUILD=1: the benchmark spawns no gateway from dist/ (bench:gateway runs its own copy).
set -euo pipefail
cd "$(dirname "$0")/.."
name=${1:?which benchmark: gateway, limiter, fairness, batches, flood}
exec 9>"${TMPDIR:-/tmp}/zim-room-gateway-bench.lock"
if ! flock -n 9; then
  echo "another benchmark is running on this machine; waiting for it to finish" >&2
  flock 9
fi
[ "${BENCH_NO_APP_BUILD:-0}" = 1 ] || npm run build
rm -rf dist-bench
npx tsc -p tsconfig.bench.json
find src bench -name '*.lua' -exec cp --parents {} dist-bench/ \;
node "dist-bench/bench/$name.js"

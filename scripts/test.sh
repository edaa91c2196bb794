#!/usr/bin/env bash
# `npm test`: typecheck, then every test (unit, integration against a private InfluxDB/Redis and a
# real broker, end-to-end across processes, browser tests in Debian's Chromium).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
mkdir -p .tmp
npx tsc --noEmit
status=0
npx vitest run --reporter=default --reporter=json --outputFile.json=.tmp/vitest-results.json "$@" || status=$?
# A plain closing line that any CI reads: "N passed, N failed".
node -e '
const r = JSON.parse(require("fs").readFileSync(".tmp/vitest-results.json", "utf8"));
console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed`);
' || true
exit $status

#!/usr/bin/env bash
# Refresh the chart library the dashboard ships (uPlot) from the npm registry, at the version web/package-lock.json
# pins, into the package: the dashboard serves it itself (no CDN; the page works offline).
# Usage: scripts/vendor-js.sh   (needs node and npm; the result is committed, so installs and tests do not)
set -euo pipefail
cd "$(dirname "$0")/../web"
npm ci --ignore-scripts --no-audit --no-fund >/dev/null
out=../src/loadpilot/server/static/vendor
mkdir -p "$out"
cp node_modules/uplot/dist/uPlot.iife.min.js node_modules/uplot/dist/uPlot.min.css "$out/"
cp node_modules/uplot/LICENSE "$out/uPlot.LICENSE"
echo "vendored uplot $(node -p 'require("./node_modules/uplot/package.json").version') into src/loadpilot/server/static/vendor" >&2

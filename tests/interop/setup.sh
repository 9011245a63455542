#!/bin/sh
# Prepares the browser interop harness: checks node, npm and Chromium, and installs
# playwright-core (pinned in package-lock.json) into tests/interop/node_modules when missing.
# Idempotent. Never downloads a browser. Exit 77 = skip (tests treat it as "skipped").
set -eu
here=$(cd "$(dirname "$0")" && pwd)
chromium=${RTCAT_CHROMIUM:-/usr/lib/chromium/chromium}

skip() { echo "SKIP: $*" >&2; exit 77; }

command -v node >/dev/null 2>&1 || skip "node is not installed (apt-get install nodejs npm)"
[ -x "$chromium" ] || skip "Chromium not found at $chromium (apt-get install chromium, or set RTCAT_CHROMIUM)"
major=$(node -p 'process.versions.node.split(".")[0]')
[ "$major" -ge 20 ] || skip "node $(node --version) is too old (playwright-core needs >= 20)"

# Belt and braces: Playwright must never fetch a browser of its own.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1

if [ -f "$here/node_modules/playwright-core/package.json" ] &&
    node -e '
        const want = require(process.argv[1]).packages["node_modules/playwright-core"].version;
        const have = require(process.argv[2]).version;
        process.exit(want === have ? 0 : 1);' \
        "$here/package-lock.json" "$here/node_modules/playwright-core/package.json"; then
    exit 0
fi

command -v npm >/dev/null 2>&1 || skip "npm is not installed and $here/node_modules is missing"
echo "setup.sh: installing playwright-core into $here/node_modules" >&2
# --omit-lockfile-registry-resolved: project rule, the lockfile names no registry host
# (tests/interop/.npmrc says the same for plain `npm install`).
if ! (cd "$here" && npm ci --omit-lockfile-registry-resolved --no-audit --no-fund \
    --loglevel=error >&2); then
    skip "npm ci failed (no access to the npm registry?); see the messages above"
fi
node -e 'require.resolve("playwright-core", { paths: [process.argv[1]] })' "$here" ||
    { echo "setup.sh: playwright-core still missing after npm ci" >&2; exit 1; }

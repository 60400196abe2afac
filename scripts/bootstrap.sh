#!/bin/sh
# Entry point of `npm start`, `npm test` and `npm run bench` on a fresh clone: installs what is missing (Debian
# packages when root, npm packages, the native addon), then runs the real command with Node ≥ 22 from the `node`
# devDependency (npm puts node_modules/.bin first on PATH for `npm run`).
set -eu
cd "$(dirname "$0")/.."

missing=""
for tool in openssl:openssl ip:iproute2 make:make g++:g++ python3:python3; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || missing="$missing ${tool#*:}"
done
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "bootstrap: installing Debian packages:$missing"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
  else
    echo "bootstrap: missing$missing; install them (as root: apt-get install$missing)" >&2
  fi
fi

# The end-to-end tests drive the edge with RIPE's own client, unmodified (Debian's cousteau 1.4.2).
if [ "$1" = test ] && ! /usr/bin/python3 -c 'import ripe.atlas.cousteau' >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    echo "bootstrap: installing python3-ripe-atlas-cousteau for the client compatibility test"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-ripe-atlas-cousteau >/dev/null 2>&1 ||
      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-ripe-atlas-cousteau >/dev/null; }
  else
    echo "bootstrap: python3-ripe-atlas-cousteau is missing; its test will be skipped" >&2
  fi
fi

if [ ! -x node_modules/.bin/node ] || [ ! -x node_modules/.bin/wrangler ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "bootstrap: installing npm packages"
  npm ci --no-audit --no-fund
fi
if [ ! -f probe-agent/native/build/Release/vantage_icmp.node ]; then
  echo "bootstrap: building the probe's ICMP addon"
  npm run install
fi

case "$1" in
  start) exec npm run --silent start:local ;;
  test) exec npm run --silent test:all ;;
  bench) exec npm run --silent bench:run ;;
  *) echo "bootstrap: unknown command $1" >&2; exit 2 ;;
esac

#!/bin/sh
# Entry point of `npm start`, `npm test`, `npm run bench` and `npm run fuzz:api` on a fresh clone: installs what is missing (Debian
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

# The tests check measurements against real servers and reference tools (NSD, unbound, dig, chronyd, sntp, iputils ping, traceroute, scamper;
# dnsperf, tcpdump, tshark and Knot with its dnstap module for the DNS statistics) on
# paths they build (nftables for loss, a compiled TUN delay line), and drive the
# edge with RIPE's own client, unmodified (Debian's cousteau 1.4.2).
if [ "$1" = test ]; then
  want=""
  for tool in /usr/sbin/nsd:nsd /usr/sbin/unbound:unbound /usr/bin/dig:dnsutils /usr/sbin/chronyd:chrony /usr/bin/sntp:sntp /usr/bin/ping:iputils-ping /usr/sbin/nft:nftables /usr/bin/cc:gcc /usr/sbin/traceroute:traceroute /usr/bin/scamper:scamper /usr/include/pcap/pcap.h:libpcap-dev \
      /usr/include/ndpi/ndpi_api.h:libndpi-dev /usr/include/hs/hs.h:libvectorscan-dev /usr/bin/ndpiReader:libndpi-bin \
      /usr/bin/tshark:tshark /usr/bin/dnsperf:dnsperf /usr/bin/tcpdump:tcpdump /usr/sbin/knotd:knot; do
    [ -e "${tool%%:*}" ] || want="$want ${tool#*:}"
  done
  /usr/bin/python3 -c 'import ripe.atlas.cousteau' >/dev/null 2>&1 || want="$want python3-ripe-atlas-cousteau"
  # Knot logs its queries to the agent as dnstap (test/node/datasources.test.ts) through its dnstap module.
  ls /usr/lib/*/knot/modules-*/dnstap.so >/dev/null 2>&1 || want="$want knot-module-dnstap"
  # The DNS statistics collector's C-DNS files are read back by Python's cbor2 (test/node/dnsstats/cdns_read.py).
  /usr/bin/python3 -c 'import cbor2' >/dev/null 2>&1 || want="$want python3-cbor2"
  # The web console is tested in Debian's Chromium (test/node/web.test.ts, with playwright-core).
  [ -x /usr/bin/chromium ] || want="$want chromium"
  # RIPE's ripe-atlas command line and sagan (../shared/clients, run unmodified by test/node/ripe-atlas.test.ts) need these.
  /usr/bin/python3 -c 'import IPy, tzlocal, typing_extensions, dateutil, pytz, requests, websocket, yaml, cryptography' >/dev/null 2>&1 ||
    want="$want python3-ipy python3-tzlocal python3-typing-extensions python3-dateutil python3-tz python3-requests python3-websocket python3-yaml python3-cryptography"
  if [ -n "$want" ]; then
    if [ "$(id -u)" = 0 ]; then
      echo "bootstrap: installing test servers and clients:$want"
      # Package scripts must not start these daemons on the host: the tests run their own in namespaces.
      made_policy=""
      if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && made_policy=1
      fi
      { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $want >/dev/null 2>&1 ||
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $want >/dev/null; }; } || true
      [ -z "$made_policy" ] || rm -f /usr/sbin/policy-rc.d
    else
      echo "bootstrap: missing$want; the tests that need them will say so and skip" >&2
    fi
  fi
fi

if [ ! -x node_modules/.bin/node ] || [ ! -x node_modules/.bin/wrangler ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "bootstrap: installing npm packages"
  npm ci --no-audit --no-fund
fi
# An addon is (re)built when it is missing or older than one of its sources.
stale() {
  out=$1; shift
  [ -f "$out" ] || return 0
  for f in "$@"; do [ "$f" -nt "$out" ] && return 0; done
  return 1
}
if stale probe-agent/native/build/Release/vantage_icmp.node probe-agent/native/binding.gyp probe-agent/native/*.cc probe-agent/native/*.h; then
  echo "bootstrap: building the probe's ICMP addon"
  npm run install
fi

# The agent's packet capture for DNS statistics (libpcap; only hosts that watch an interface need it).
if [ -f /usr/include/pcap/pcap.h ] && stale probe-agent/capture/build/Release/vantage_capture.node probe-agent/capture/binding.gyp probe-agent/capture/*.cc; then
  echo "bootstrap: building the probe's packet capture addon"
  npm run --silent build:capture
fi

# The web console's assets (the edge serves web/dist; wrangler dev builds them too, the edge tests read them as is).
if stale web/dist/app.js web/build.ts web/index.html web/app.css web/favicon.svg web/src/*; then
  echo "bootstrap: building the web console"
  node web/build.ts
fi

# The traffic classifier (C++: libpcap, nDPI, vectorscan) is built for the tests and benchmarks; a build error stops them.
if [ "$1" != start ] && [ -f /usr/include/pcap/pcap.h ] && [ -f /usr/include/ndpi/ndpi_api.h ] && [ -f /usr/include/hs/hs.h ] &&
   stale classifier-native/build/Release/vantage_classifier.node classifier-native/binding.gyp classifier-native/src/*; then
  echo "bootstrap: building the traffic classifier"
  npm run --silent build:classifier
fi

case "$1" in
  start) exec npm run --silent start:local ;;
  test) exec npm run --silent test:all ;;
  bench) exec npm run --silent bench:run ;;
  fuzz) exec npm run --silent fuzz:run ;;
  *) echo "bootstrap: unknown command $1" >&2; exit 2 ;;
esac

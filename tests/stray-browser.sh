#!/usr/bin/env bash
# A headless "browser" that sends two stray requests to the client's redirect listener
# before the real authorization: what a prefetching browser, a stale tab, or a hostile
# page that computed the per-server port would send. Set BROWSER=<this file>.
#
#   tests/stray-browser.sh <authorization-url>
#
# 1. GET <redirect_uri>                            (bare: no code, no state)
# 2. GET <redirect_uri>?code=forged&state=forged   (a response for another login)
# Each status goes to BROWSER_LOG as "stray status=N"; then tests/browser.sh takes over
# (in the background, as usual) and completes the real authorization.
set -euo pipefail
url="${1:?usage: $0 <authorization-url>}"
log="${BROWSER_LOG:-}"
redirect_uri="$(python3 -c 'import sys, urllib.parse as u; print(u.parse_qs(u.urlsplit(sys.argv[1]).query)["redirect_uri"][0])' "$url")"
[[ "$redirect_uri" =~ ^http://(127\.0\.0\.1|localhost|\[::1\])(:[0-9]+)?/ ]] || { echo "not a loopback redirect URI: $redirect_uri" >&2; exit 2; }
for stray in "$redirect_uri" "$redirect_uri?code=forged&state=forged"; do
  status="$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$stray" || true)"
  [[ -n "$log" ]] && printf '%s pid=%s stray status=%s\n' "$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)" "$$" "$status" >>"$log"
done
exec "$(dirname "${BASH_SOURCE[0]}")/browser.sh" "$url"

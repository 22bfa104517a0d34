#!/usr/bin/env bash
# Headless "browser" for mcp-oauth's integration tests: set BROWSER=<this file>.
#
#   tests/browser.sh <authorization-url>
#
# Returns at once (the OAuth client under test runs it with stdio detached and may or may
# not wait for it). In the background, curl follows the redirect chain with a private
# cookie jar: authorization endpoint -> the AS's auto-login/auto-consent interaction
# pages (tests/node/oidc-as.mjs) -> back to the authorization endpoint -> the client's
# loopback redirect URI (http://127.0.0.1:<port>/...), which is the last hop; then it exits.
# Only loopback URLs are ever followed (--proto =http plus a host check on every hop).
#
# Environment:
#   BROWSER_LOG          append what happened to this file (one "open" line, each hop's
#                        Location with code/state values redacted, and one "done" line with
#                        the final URL and HTTP status). Tests count "open" lines to know
#                        whether the browser was invoked.
#   BROWSER_MAX_REDIRS   redirect limit (default 20)
#   BROWSER_TIMEOUT      overall curl time limit in seconds (default 30)
#   BROWSER_FOREGROUND   "1" = do the work in the foreground (for debugging)
set -euo pipefail

if [[ $# -lt 1 || -z "${1:-}" ]]; then
  echo "usage: $0 <authorization-url>" >&2
  exit 2
fi
url="$1"
log="${BROWSER_LOG:-}"
max_redirs="${BROWSER_MAX_REDIRS:-20}"
timeout_s="${BROWSER_TIMEOUT:-30}"

redact() {
  sed -E 's/([?&](code|state|code_verifier|access_token|refresh_token)=)[^&# ]*/\1REDACTED/g'
}

note() {
  if [[ -n "$log" ]]; then
    printf '%s pid=%s %s\n' "$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)" "$$" "$*" >>"$log"
  fi
}

is_loopback() {
  [[ "$1" =~ ^http://(127\.0\.0\.1|localhost|\[::1\])(:[0-9]+)?(/|\?|$) ]]
}

run() {
  local tmp headers status final
  tmp="$(mktemp -d "${TMPDIR:-/tmp}/mcp-oauth-browser.XXXXXX")"
  # Expanded now: $tmp is local and gone by the time the EXIT trap runs.
  # shellcheck disable=SC2064
  trap "rm -rf '$tmp'" EXIT
  headers="$tmp/headers"
  if ! is_loopback "$url"; then
    note "refused non-loopback url=$(printf '%s' "$url" | redact)"
    return 1
  fi
  # -L follows redirects (303 -> GET); -c/-b keep the AS's interaction/session cookies;
  # --proto/--proto-redir: plain http only. Every hop is checked afterwards as well.
  set +e
  final="$(curl -sS -L --max-redirs "$max_redirs" --max-time "$timeout_s" \
    --proto '=http' --proto-redir '=http' --noproxy '*' \
    -c "$tmp/jar" -b "$tmp/jar" -D "$headers" -o "$tmp/body" \
    -w '%{http_code} %{url_effective}' "$url" 2>"$tmp/err")"
  status=$?
  set -e
  if [[ -n "$log" && -f "$headers" ]]; then
    grep -i '^location:' "$headers" | tr -d '\r' | redact | while IFS= read -r line; do
      note "hop ${line}"
    done
  fi
  if [[ $status -ne 0 ]]; then
    note "done curl-exit=$status error=$(tr '\n' ' ' <"$tmp/err") last=$(printf '%s' "$final" | redact)"
    return "$status"
  fi
  if ! is_loopback "${final#* }"; then
    note "done WARNING final url is not loopback: $(printf '%s' "$final" | redact)"
  fi
  note "done status=${final%% *} final=$(printf '%s' "${final#* }" | redact)"
}

if [[ -z "${BROWSER_CHILD:-}" ]]; then
  note "open url=$(printf '%s' "$url" | redact)"
fi
if [[ "${BROWSER_FOREGROUND:-0}" == "1" ]]; then
  run
elif command -v setsid >/dev/null 2>&1; then
  # Detach completely: new session (so signals to the caller's process group don't reach
  # us), no inherited stdio, so the caller is never blocked on a pipe.
  BROWSER_FOREGROUND=1 BROWSER_CHILD=1 setsid -f "$0" "$url" </dev/null >/dev/null 2>&1
else
  (run </dev/null >/dev/null 2>&1 &)
fi
exit 0

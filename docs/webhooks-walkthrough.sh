#!/usr/bin/env bash
# The webhook walk-through of docs/webhooks.md, runnable: a sandbox on a free loopback port, a Python
# receiver started, stopped and restarted by PID, and every step checked. Needs curl, jq and
# python3. LINKBOX names the binary (default: linkbox on PATH). Loopback only; each wait is
# bounded, so a run ends within a minute. Prints "walk-through OK" and exits 0 on success.
set -euo pipefail

LINKBOX=${LINKBOX:-linkbox}
KEY=m2m_test_0123456789abcdefghijklmnopqrstuv
work=$(mktemp -d)
linkbox_pid=
receiver_pid=
cleanup() {
  [[ -n $receiver_pid ]] && kill "$receiver_pid" 2>/dev/null
  [[ -n $linkbox_pid ]] && kill "$linkbox_pid" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

fail() { echo "walk-through failed: $*" >&2; exit 1; }

# Waits up to 10 s for a command to succeed.
until_ok() {
  local _
  for _ in $(seq 100); do
    if "$@"; then return 0; fi
    sleep 0.1
  done
  fail "timed out waiting for: $*"
}

# The receiver: prints each event, its signature and body on one line; binds the port given
# (0: a free one) and writes the port it got to $work/port.
cat >"$work/receiver.py" <<'PY'
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        print(self.headers["X-M2M-Event"], self.headers["X-M2M-Signature"], body.decode(), flush=True)
        self.send_response(200)
        self.end_headers()
    def log_message(self, *args):
        pass
server = http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H)
with open(sys.argv[2], "w") as f:
    f.write(str(server.server_address[1]))
server.serve_forever()
PY

start_receiver() {
  rm -f "$work/port"
  python3 "$work/receiver.py" "$1" "$work/port" >>"$work/hooks.log" &
  receiver_pid=$!
  until_ok test -s "$work/port"
  PORT=$(cat "$work/port")
}

received() { grep -q "^$1 " "$work/hooks.log" 2>/dev/null; }

# 1. The sandbox, in memory, open mode; its first stdout line says where it listens.
LINKBOX_LOG=warn "$LINKBOX" serve --addr 127.0.0.1:0 >"$work/linkbox.out" &
linkbox_pid=$!
until_ok grep -q '^listening on ' "$work/linkbox.out"
BASE=$(sed -n 's/^listening on //p' "$work/linkbox.out")

# 2. The receiver, on a free port.
start_receiver 0

# 3. A webhook secret, and a link whose events go to the receiver.
SECRET=$(curl -fsS -X POST "$BASE/partner/webhooks/config/regenerate-secret" -H "X-API-Key: $KEY" | jq -r .webhookSecret)
[[ $SECRET == whsec_* ]] || fail "no webhook secret"
LINK=$(curl -fsS "$BASE/partner/links" -H "X-API-Key: $KEY" -H 'Content-Type: application/json' \
  -d "{\"referenceId\":\"ana\",\"callbackUrl\":\"http://127.0.0.1:$PORT/hooks\"}" | jq -r .data.linkId)
until_ok received link.created

# 4. The end user opens the link; Ana lacks CIP data, so a data request follows.
DR=$(curl -fsS -X POST "$BASE/_sandbox/m2m/links/$LINK/open" -H "X-API-Key: $KEY" -H 'Content-Type: application/json' \
  -d '{"userAgent":"curl","platform":"web","language":"en"}' | jq -r .dataRequest.dataRequestId)
until_ok received link.opened
if [[ $DR != null ]]; then
  until_ok received user.data_request
  curl -fsS -X PUT "$BASE/partner/data-requests/$DR" -H "X-API-Key: $KEY" -H 'Content-Type: application/json' \
    -d '{"referenceId":"ana","userData":{"dob":"1990-01-01"}}' >/dev/null
fi

# 5. The receiver goes down (by its PID); the next event's first attempt fails.
kill "$receiver_pid"
wait "$receiver_pid" 2>/dev/null || true
receiver_pid=
curl -fsS -X POST "$BASE/_sandbox/m2m/links/$LINK/operation" -H "X-API-Key: $KEY" -H 'Content-Type: application/json' \
  -d '{"amount":100}' >/dev/null
first_attempt_failed() {
  curl -fsS "$BASE/_sandbox/webhooks" -H "X-API-Key: $KEY" \
    | jq -e '.deliveries[0] | .event == "operation.created" and .status == "pending" and (.attempts | length) == 1' >/dev/null
}
until_ok first_attempt_failed

# 6. The receiver comes back on the same port; moving the clock a minute makes the retry due.
start_receiver "$PORT"
curl -fsS -X POST "$BASE/_sandbox/clock" -H "X-API-Key: $KEY" -H 'Content-Type: application/json' \
  -d '{"advanceSeconds":60}' >/dev/null
until_ok received operation.created
delivered_on_second_attempt() {
  curl -fsS "$BASE/_sandbox/webhooks" -H "X-API-Key: $KEY" \
    | jq -e '.deliveries[0] | .status == "delivered" and (.attempts | length) == 2' >/dev/null
}
until_ok delivered_on_second_attempt

echo "walk-through OK"

#!/usr/bin/env python3
"""An example app backend behind sio-cluster (README "Your backend").

It answers the node's connect proxy (SIO_CONNECT_PROXY_URL=http://HOST:PORT/connect) and
event proxy (SIO_EVENT_PROXY_URL=http://HOST:PORT/event), verifying every request's
Standard Webhooks signature with the `standardwebhooks` package, and can push to clients
through the node's HTTP emit API (SIO_API_KEY).

Run:  pip install standardwebhooks==1.3.0
      python3 examples/backend/backend.py --secret whsec_... --port 8000 \\
          [--api http://127.0.0.1:3000 --api-key ...]

- connect: the user is the `session` cookie (a real app looks its session up) or, for
  clients that cannot set cookies, `auth.user`; no user: 401 "login required". An
  `auth.refuse` string refuses with that message (for tests). Accepted sockets join
  `user:<id>` (the node does that), `lobby` and `auth.rooms`, and carry `{plan, via}`.
- events: `add` answers the sum of its numeric arguments; `echo` answers its arguments
  (binary placeholders `{"_binary": base64}` included, so bytes come back as bytes);
  `fail` answers 422 {"error": "cannot do that"}; `notify` (with an API) pushes
  `notified` to `user:<id>` through POST /api/v1/emit; anything else answers null.
- `--mode slow|garbage|error` makes it answer late (`--delay-ms`), with non-JSON, or 500.
- GET /log (not signed: a test's view) lists the verified requests in arrival order and
  how many signatures failed.

Prints `{"listening": PORT}` on stdout once it accepts requests.
"""

import argparse
import json
import sys
import threading
import time
import urllib.request
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

LOCK = threading.Lock()
LOG = []
BAD_SIGNATURES = [0]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the node pools its connections
    wbufsize = -1  # head and body in one write (flushed after each request)
    disable_nagle_algorithm = True

    def log_message(self, *args):  # quiet
        pass

    def answer(self, status, body):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/log":
            with LOCK:
                self.answer(200, {"requests": LOG, "badSignatures": BAD_SIGNATURES[0]})
        else:
            self.answer(404, {"error": "not found"})

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        try:
            msg = WEBHOOK.verify(body, dict(self.headers.items()))
        except WebhookVerificationError:
            with LOCK:
                BAD_SIGNATURES[0] += 1
            return self.answer(401, {"error": "bad signature"})
        with LOCK:
            LOG.append({"path": self.path, "body": msg})
        if ARGS.mode == "slow":
            time.sleep(ARGS.delay_ms / 1000)
        elif ARGS.mode == "garbage":
            return self.answer(200, b"<html>surprise</html>")
        elif ARGS.mode == "error":
            return self.answer(500, {"error": "internal"})
        if self.path == "/connect":
            status, answer = on_connect(msg)
        elif self.path == "/event":
            status, answer = on_event(msg)
        else:
            status, answer = 404, {"error": "not found"}
        self.answer(status, answer)


def on_connect(req):
    auth = req.get("auth") or {}
    if isinstance(auth.get("refuse"), str):
        return 403, {"error": auth["refuse"]}
    cookie = SimpleCookie(req.get("headers", {}).get("cookie", ""))
    user, via = (cookie["session"].value, "cookie") if "session" in cookie else (auth.get("user"), "auth")
    if req.get("user"):  # JWT auth on: the token's sub
        user, via = req["user"], "token"
    if not user:
        return 401, {"error": "login required"}
    rooms = ["lobby"] + [r for r in auth.get("rooms", []) if isinstance(r, str)]
    return 200, {"user": user, "rooms": rooms, "data": {"plan": "pro", "via": via}}


def on_event(req):
    event, args = req["event"], req["args"]
    if event == "add":
        return 200, {"result": sum(a for a in args if isinstance(a, (int, float)))}
    if event == "echo":
        return 200, {"result": args}
    if event == "fail":
        return 422, {"error": "cannot do that"}
    if event == "notify" and ARGS.api:
        push = {"rooms": [f"user:{req['user']}"], "event": "notified", "args": args}
        request = urllib.request.Request(
            ARGS.api + "/api/v1/emit",
            data=json.dumps(push).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {ARGS.api_key}"},
        )
        with urllib.request.urlopen(request, timeout=5) as r:
            return 200, {"result": json.load(r)}
    return 200, {"result": None}


def main():
    global ARGS, WEBHOOK
    p = argparse.ArgumentParser()
    p.add_argument("--secret", required=True, help="whsec_... (the node's SIO_PROXY_SECRET)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--mode", choices=["normal", "slow", "garbage", "error"], default="normal")
    p.add_argument("--delay-ms", type=int, default=3000)
    p.add_argument("--api", help="the node's base URL, for pushes through the HTTP emit API")
    p.add_argument("--api-key")
    ARGS = p.parse_args()
    WEBHOOK = Webhook(ARGS.secret)
    server = ThreadingHTTPServer(("127.0.0.1", ARGS.port), Handler)
    server.daemon_threads = True
    print(json.dumps({"listening": server.server_address[1]}), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    sys.exit(0)


if __name__ == "__main__":
    main()

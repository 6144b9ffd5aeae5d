"""python-socketio against a node with connection state recovery on, driven by
tests/tests/recovery.rs.

    python3 recovery.py URL

python-socketio 5.x has no client side for recovery: it sends no pid and gets a new
session on every connect. What it sees of recovery is the offset every broadcast then
carries as an extra last argument, which a handler taking `*args` receives. Connects over
websocket, joins a room, publishes into it, receives its own broadcast; prints the facts
as one JSON line. Every wait is bounded.
"""

import json
import sys
import threading

import socketio


def main() -> int:
    url = sys.argv[1]
    client = socketio.Client(reconnection=False)
    got = threading.Event()
    facts = {}

    @client.on("py-news")
    def on_news(*args):
        facts["args"] = list(args)
        got.set()

    try:
        client.connect(url, transports=["websocket"], wait_timeout=10)
        facts["join"] = client.call("join", "room-py", timeout=10)
        facts["publish"] = client.call(
            "publish",
            {"room": "room-py", "event": "py-news", "data": {"from": "python"}},
            timeout=10,
        )
        if not got.wait(10):
            facts["error"] = "broadcast not received"
        client.disconnect()
    except Exception as e:  # report, let the Rust test fail with the reason
        facts["error"] = f"{type(e).__name__}: {e}"
        print(json.dumps(facts))
        return 1
    print(json.dumps(facts))
    return 0 if "error" not in facts else 1


if __name__ == "__main__":
    sys.exit(main())

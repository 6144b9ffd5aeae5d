"""python-socketio smoke test, driven by tests/tests/single_node.rs.

    python3 smoke.py URL TRANSPORT      TRANSPORT = polling | websocket

Connects, joins a room, publishes into it and waits for its own broadcast, then prints
the observed facts as one JSON line. Every wait is bounded.
"""

import json
import sys
import threading

import socketio


def main() -> int:
    url, transport = sys.argv[1], sys.argv[2]
    client = socketio.Client(reconnection=False)
    got = threading.Event()
    facts = {}

    @client.on("py-news")
    def on_news(data):
        facts["received"] = data
        got.set()

    try:
        client.connect(url, transports=[transport], wait_timeout=10)
        facts["transport"] = client.transport()
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

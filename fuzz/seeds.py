#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets into fuzz/corpus/<target>/ from the golden
fixtures (bytes published by the real Node packages, adapter-redis/tests/golden/fixtures.json)
plus a few hand-written queries, channels and open packets. Existing files are kept, so
what libFuzzer found in earlier runs stays."""
import hashlib
import json
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
fixtures = json.load(open(os.path.join(here, "..", "adapter-redis", "tests", "golden", "fixtures.json")))
corpus = os.path.join(here, "corpus")


def put(target, data):
    if isinstance(data, str):
        data = data.encode()
    d = os.path.join(corpus, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + hashlib.sha1(data).hexdigest()[:16]), "wb") as f:
        f.write(data)


classic = fixtures["cases"].values()
sharded = fixtures["sharded"]["cases"].values()
for case in classic:
    payload = bytes.fromhex(case["hex"])
    channel = case["channel"]
    if "-request#" in channel:
        put("classic_request", payload)
    elif "-response#" in channel:
        put("classic_response", payload)
    else:
        put("classic_broadcast", payload)
    put("channels", "socket.io\n/\nroom1\n" + channel)
for case in sharded:
    put("sharded_message", bytes.fromhex(case["hex"]))
    put("channels", "socket.io\n/\nsrv001\n" + case["channel"])
for case in fixtures["streams"]["cases"].values():
    if case["kind"] == "xadd":
        put("streams_entry", b"\0".join(part.encode() for pair in case["fields"] for part in pair))
    else:
        put("streams_pubsub", bytes.fromhex(case["hex"]))
for channel in ["socket.io#/#", "socket.io#/chat#lobby#", "socket.io-request#/#",
                "socket.io-response#/#", "socket.io-response#/#abc123#", "other-app#/#",
                "socket.io#/#é#", "socket.io-requestx#/#"]:
    put("channels", "socket.io\n/\nroom\n" + channel)
for query in ["EIO=4&transport=polling&t=N8hyd6w",
              "EIO=4&transport=polling&t=N8hyd6w&sid=lv_VI97HAXpY6yYWAAAC",
              "EIO=3&transport=websocket&sid=abc", "EIO=5&transport=foo", "&&sid&=x&sid=&EIO",
              '0{"sid":"lv_VI97HAXpY6yYW","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}',
              '96:0{"sid":"abc","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000}2:40']:
    put("engine_query", query)
sys.exit(0)

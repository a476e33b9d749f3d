#!/usr/bin/env python3
"""A stand-in for `percept serve` that only speaks the page's side of the contract, to work on
the page without models: serves crates/server/web/*, lists one model, and answers a streamed
chat by describing what it received. Questions `/429` and `/broken` answer with a full
queue and a mid-stream error. A received WAV is saved (--save-audio) for inspection.

    mock_server.py [--port 8089] [--save-audio /tmp/page.wav]
"""
import argparse
import base64
import json
import os
import struct
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

WEB = os.path.join(os.path.dirname(__file__), "..", "..", "crates", "server", "web")
TYPES = {"/": ("index.html", "text/html"), "/app.js": ("app.js", "text/javascript"),
         "/style.css": ("style.css", "text/css")}


def wav_summary(raw):
    if raw[:4] != b"RIFF" or raw[8:12] != b"WAVE":
        return "not a WAV file"
    channels, rate = struct.unpack("<HI", raw[22:28])
    bits = struct.unpack("<H", raw[34:36])[0]
    frames = (len(raw) - 44) // (channels * bits // 8)
    return f"{frames / rate:.2f} s, {rate} Hz, {channels} ch, {bits} bit"


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        path = self.path.split("?")[0]
        if path in TYPES:
            name, ctype = TYPES[path]
            with open(os.path.join(WEB, name), "rb") as f:
                self.reply(200, f.read(), ctype)
        elif path == "/v1/models":
            self.reply(200, json.dumps({"object": "list", "data": [{"id": "mock", "object": "model"}]}).encode())
        else:
            self.reply(404, b'{"error":{"message":"not found"}}')

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        content = body["messages"][-1]["content"]
        transcript, images, said = None, [], []
        for part in content:
            if part["type"] == "text":
                said.append(part["text"])
            elif part["type"] == "input_audio":
                raw = base64.b64decode(part["input_audio"]["data"])
                if self.server.save_audio:
                    with open(self.server.save_audio, "wb") as f:
                        f.write(raw)
                transcript = "mock heard " + wav_summary(raw)
            elif part["type"] == "image_url":
                images.append({"source": "image 1", "facts": {"width": 640, "height": 480, "format": "png",
                               "extra": {"camera": None}}, "tags": [{"label": "a cat", "score": 0.71},
                                                                    {"label": "a dog", "score": 0.12}]})
        if said == ["/429"]:  # to see how the page shows a full queue
            self.send_response(429)
            self.send_header("Retry-After", "2")
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"error":{"message":"the work queue is full (2 requests)","type":"rate_limit"}}')
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        first = {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"role": "assistant"}}],
                 "percept": {"transcript": transcript, "images": images}}
        self.event(json.dumps(first))
        if said == ["/broken"]:  # an error after the stream started
            self.event(json.dumps({"error": {"message": "llm: the model failed", "type": "server_error"}}))
            return
        for word in f"You asked: {' '.join(said) or '(nothing typed)'}".split():
            time.sleep(0.05)
            self.event(json.dumps({"choices": [{"index": 0, "delta": {"content": word + " "}}]}))
        self.event(json.dumps({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}))
        self.event("[DONE]")

    def event(self, data):
        self.wfile.write(f"data: {data}\n\n".encode())
        self.wfile.flush()

    def reply(self, code, data, ctype="application/json"):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=8089)
    ap.add_argument("--save-audio")
    a = ap.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    server.save_audio = a.save_audio
    print(f"mock: listening on http://127.0.0.1:{a.port}", flush=True)
    server.serve_forever()

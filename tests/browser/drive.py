#!/usr/bin/env python3
"""Drive percept's web page in headless Chromium and print what the page showed, as JSON.

Chromium gets a WAV file as its microphone (fake capture device) and is steered through the
DevTools protocol over --remote-debugging-pipe (fd 3 in, fd 4 out, NUL-separated JSON), which
needs nothing beyond the standard library. The page's own signal, body[data-state] reaching
"done" or "error", says when the answer has finished.

    drive.py --url http://127.0.0.1:PORT/ --audio speech-48k.wav --record-ms 4000 \
             --screenshot out.png [--image photo.png] [--question TEXT] [--max-tokens N] [--timeout 120]
"""
import argparse
import base64
import fcntl
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time


class Browser:
    def __init__(self, binary, args, log):
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()

        def wire_pipes():
            # The child finds the protocol on fds 3 (commands) and 4 (replies and events); move
            # both ends above 4 first so that neither dup2 clobbers the other.
            high_r = fcntl.fcntl(to_child_r, fcntl.F_DUPFD, 10)
            high_w = fcntl.fcntl(from_child_w, fcntl.F_DUPFD, 10)
            os.dup2(high_r, 3)
            os.dup2(high_w, 4)

        self.proc = subprocess.Popen(
            [binary, *args], stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            pass_fds=(3, 4), preexec_fn=wire_pipes,
        )
        os.close(to_child_r)
        os.close(from_child_w)
        self._next_id = 0
        self._replies = {}
        self.events = queue.Queue()
        self._cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        buf = b""
        while True:
            data = os.read(self._from_child, 1 << 16)
            if not data:
                with self._cond:
                    self._replies[None] = "closed"
                    self._cond.notify_all()
                return
            buf += data
            while b"\0" in buf:
                raw, buf = buf.split(b"\0", 1)
                msg = json.loads(raw)
                if "id" in msg:
                    with self._cond:
                        self._replies[msg["id"]] = msg
                        self._cond.notify_all()
                else:
                    self.events.put(msg)

    def call(self, method, params=None, session=None, timeout=30):
        self._next_id += 1
        mid = self._next_id
        msg = {"id": mid, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._to_child, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        with self._cond:
            while mid not in self._replies:
                if None in self._replies:
                    raise RuntimeError(f"chromium closed the protocol pipe during {method}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{method}: no reply in {timeout} s")
                self._cond.wait(left)
            reply = self._replies.pop(mid)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def wait_event(self, method, timeout):
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {method} event in {timeout} s")
            try:
                ev = self.events.get(timeout=left)
            except queue.Empty:
                continue
            if ev.get("method") == method:
                return ev

    def close(self):
        try:
            self.call("Browser.close", timeout=5)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def find_chromium():
    for name in (os.environ.get("PERCEPT_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    sys.exit("drive.py: no Chromium found (install Debian's `chromium` or set PERCEPT_CHROMIUM)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--audio", help="WAV file the fake microphone plays (48 kHz works best)")
    ap.add_argument("--record-ms", type=int, default=0, help="record this long, then send")
    ap.add_argument("--image", help="image file to put in the page's file picker")
    ap.add_argument("--question", help="text typed into the question box")
    ap.add_argument("--max-tokens", type=int, help="set the page's max tokens setting")
    ap.add_argument("--api-key", help="type this into the page's API key setting")
    ap.add_argument("--screenshot", help="write a PNG of the page here")
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("--viewport", default="1200x900", help="page size WIDTHxHEIGHT")
    a = ap.parse_args()

    profile = tempfile.mkdtemp(prefix="percept-chromium-")
    args = [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-quic", "--mute-audio", f"--user-data-dir={profile}", "--remote-debugging-pipe",
        "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
        "--autoplay-policy=no-user-gesture-required", "--window-size=1200,900",
    ]
    if a.audio:
        args.append(f"--use-file-for-fake-audio-capture={os.path.abspath(a.audio)}")
    args.append("about:blank")
    log = open(os.path.join(profile, "chromium.log"), "wb")
    browser = Browser(find_chromium(), args, log)
    console = []
    try:
        target = browser.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        s = browser.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        browser.call("Page.enable", session=s)
        browser.call("Runtime.enable", session=s)
        width, height = (int(v) for v in a.viewport.split("x"))
        browser.call("Emulation.setDeviceMetricsOverride",
                     {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}, session=s)
        browser.call("Page.navigate", {"url": a.url}, session=s)
        browser.wait_event("Page.loadEventFired", 30)

        def js(expr, timeout=30):
            r = browser.call("Runtime.evaluate", {"expression": expr, "awaitPromise": True,
                                                  "returnByValue": True}, session=s, timeout=timeout)
            if "exceptionDetails" in r:
                raise RuntimeError(f"page script failed: {json.dumps(r['exceptionDetails'])[:800]}")
            return r["result"].get("value")

        if a.image:
            root = browser.call("DOM.getDocument", session=s)["root"]["nodeId"]
            node = browser.call("DOM.querySelector", {"nodeId": root, "selector": "#image-input"},
                                session=s)["nodeId"]
            browser.call("DOM.setFileInputFiles", {"nodeId": node, "files": [os.path.abspath(a.image)]},
                         session=s)
            js("new Promise(r => { const t = () => document.getElementById('preview').hidden"
               " ? setTimeout(t, 50) : r(true); t(); })")
        if a.api_key:
            js(f"(() => {{ const k = document.getElementById('api-key'); k.value = {json.dumps(a.api_key)};"
               " k.dispatchEvent(new Event('change')); })()")
        if a.max_tokens:
            js(f"document.getElementById('max-tokens').value = {a.max_tokens}")
        if a.question:
            js(f"document.getElementById('question').value = {json.dumps(a.question)}")
        t0 = time.monotonic()
        if a.record_ms > 0:
            js(f"window.perceptRecord({a.record_ms})", timeout=a.timeout)
        else:
            js("window.perceptSend()", timeout=a.timeout)
        elapsed = time.monotonic() - t0
        shown = js("""JSON.stringify({
            state: document.body.dataset.state,
            audio_format: document.body.dataset.audioFormat || null,
            status: document.getElementById('status').textContent,
            error: document.getElementById('error').hidden ? null : document.getElementById('error').textContent,
            transcript: document.getElementById('transcript').textContent,
            answer: document.getElementById('answer').textContent,
            tags: [...document.querySelectorAll('#tags .label')].map(e => e.textContent),
            facts: [...document.querySelectorAll('#tags .facts')].map(e => e.textContent),
        })""")
        result = json.loads(shown)
        result["seconds"] = round(elapsed, 2)
        if a.screenshot:
            shot = browser.call("Page.captureScreenshot", {"format": "png"}, session=s)["data"]
            with open(a.screenshot, "wb") as f:
                f.write(base64.b64decode(shot))
        while not browser.events.empty():
            ev = browser.events.get()
            if ev.get("method") == "Runtime.consoleAPICalled":
                console.append(" ".join(str(x.get("value", x.get("description", ""))) for x in ev["params"]["args"]))
            elif ev.get("method") == "Runtime.exceptionThrown":
                console.append("exception: " + ev["params"]["exceptionDetails"].get("text", ""))
        result["console"] = console
        print(json.dumps(result))
    except Exception:
        log.flush()
        with open(log.name, "rb") as f:
            tail = f.read()[-3000:].decode(errors="replace")
        print(f"drive.py: chromium log tail:\n{tail}", file=sys.stderr)
        raise
    finally:
        browser.close()
        log.close()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    main()

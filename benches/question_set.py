#!/usr/bin/env python3
"""Scores a pipeline on the question set (tests/fixtures/questions/general.toml), typed and
spoken, through `percept serve`, with optional extra `serve` flags: how the pipelines' system
prompt and repetition guard were chosen.

Usage: benches/question_set.py [--bin target/release/percept] [--pipeline default]
                               [-- extra serve flags, e.g. --system "..." --repeat-penalty 1.1]
"""
import argparse
import base64
import json
import os
import re
import subprocess
import sys
import tempfile
import tomllib
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def normalise(s):
    s = s.lower().replace("'", "")
    return " ".join(re.sub(r"[^\w]", " ", s).split())


def hit(answer, keys):
    words = f" {normalise(answer)} "
    return any(f" {normalise(k)} " in words for k in keys)


def chat(url, content, max_tokens):
    body = json.dumps({"messages": [{"role": "user", "content": content}], "max_tokens": max_tokens})
    req = urllib.request.Request(f"{url}/v1/chat/completions", body.encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=600) as r:
        return json.load(r)["choices"][0]["message"]["content"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "target/release/percept"))
    ap.add_argument("--pipeline", default="default")
    ap.add_argument("--max-tokens", type=int, default=48)
    ap.add_argument("--typed-only", action="store_true")
    ap.add_argument("extra", nargs="*")
    a = ap.parse_args()
    with open(os.path.join(ROOT, "tests/fixtures/questions/general.toml"), "rb") as f:
        qs = tomllib.load(f)["q"]
    srv = subprocess.Popen([a.bin, "serve", "--addr", "127.0.0.1:0", "--pipeline", a.pipeline, *a.extra],
                           stderr=subprocess.PIPE, text=True, cwd=ROOT)
    url = None
    for line in srv.stderr:
        if line.startswith("percept: listening on "):
            url = line.split()[-1]
            break
    if not url:
        sys.exit("server did not start")
    import threading, time
    threading.Thread(target=lambda: [None for _ in srv.stderr], daemon=True).start()
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health") as r:
                if r.status == 200:
                    break
        except Exception:
            time.sleep(0.2)
    typed = spoken = 0
    with tempfile.TemporaryDirectory() as d:
        for i, q in enumerate(qs):
            ta = chat(url, q["text"], a.max_tokens)
            ok_t = hit(ta, q["any"])
            typed += ok_t
            line = f"{'ok ' if ok_t else 'MISS'} typed  {q['text']!r}: {ta.strip()[:100]!r}"
            print(line, flush=True)
            if a.typed_only:
                continue
            wav = os.path.join(d, f"q{i}.wav")
            subprocess.run(["espeak-ng", "-v", "en-us", "-s", "130", "-g", "4", "-w", wav, q["text"]], check=True)
            data = base64.b64encode(open(wav, "rb").read()).decode()
            sa = chat(url, [{"type": "input_audio", "input_audio": {"data": data, "format": "wav"}}], a.max_tokens)
            ok_s = hit(sa, q["any"])
            spoken += ok_s
            print(f"{'ok ' if ok_s else 'MISS'} spoken {q['text']!r}: {sa.strip()[:100]!r}", flush=True)
    srv.terminate()
    n = len(qs)
    print(f"{a.pipeline} {' '.join(a.extra)}: typed {typed}/{n}" + ("" if a.typed_only else f", spoken {spoken}/{n}"))


if __name__ == "__main__":
    main()

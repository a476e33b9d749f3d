#!/usr/bin/env python3
"""Load client for benches/server_load.sh (standard library only): requests/s and p50/p99
latency of `percept serve` for transcriptions and short chat answers at several concurrencies.

    server_load.py URL --audio assets/audio/jfk.wav [--requests 8] [--concurrency 1,2,4]
                   [--max-tokens 16] [--prompt TEXT] [--cli target/release/percept --rounds 3]

With --cli, the server's overhead is measured A/B: each round times one request to the idle
server and then the same work done by the CLI in-process (the server idles meanwhile), so a
busy machine slows both sides alike; the medians over the rounds are compared.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid


def post(url, body, ctype):
    req = urllib.request.Request(url, data=body, headers={"Content-Type": ctype}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=300) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def model_ids(base):
    with urllib.request.urlopen(f"{base}/v1/models", timeout=30) as resp:
        listed = json.loads(resp.read())["data"]
    kind = {m["id"]: (m.get("percept") or {}).get("kind") for m in listed}
    whisper = next((m for m, k in kind.items() if k == "speech"), "whisper-1")
    llm = next((m for m, k in kind.items() if k == "llm"), None)
    return whisper, llm


def transcription(base, audio, model):
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="model"\r\n\r\n{model}\r\n'.encode(),
        f'--{boundary}\r\nContent-Disposition: form-data; name="response_format"\r\n\r\njson\r\n'.encode(),
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="speech.wav"\r\n'
        f"Content-Type: audio/wav\r\n\r\n".encode() + audio + b"\r\n",
        f"--{boundary}--\r\n".encode(),
    ]
    body = b"".join(parts)
    ctype = f"multipart/form-data; boundary={boundary}"

    def send():
        status, data = post(f"{base}/v1/audio/transcriptions", body, ctype)
        if status == 200 and "text" not in json.loads(data):
            raise RuntimeError(f"transcription without text: {data[:200]!r}")
        return status

    return send


def chat(base, prompt, max_tokens, model):
    req = {"messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens, "temperature": 0}
    if model:
        req["model"] = model
    body = json.dumps(req).encode()

    def send():
        status, data = post(f"{base}/v1/chat/completions", body, "application/json")
        if status == 200 and not json.loads(data)["choices"][0]["message"]["content"]:
            raise RuntimeError(f"chat without an answer: {data[:200]!r}")
        return status

    return send


def run(send, requests, concurrency):
    """`requests` calls spread over `concurrency` threads; latency of each, wall time of all."""
    lock = threading.Lock()
    todo = list(range(requests))
    latencies, statuses = [], []

    def worker():
        while True:
            with lock:
                if not todo:
                    return
                todo.pop()
            t = time.perf_counter()
            status = send()
            dt = time.perf_counter() - t
            with lock:
                statuses.append(status)
                if status == 200:
                    latencies.append(dt)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wall = time.perf_counter() - t0
    latencies.sort()

    def pct(p):
        return latencies[min(len(latencies) - 1, int(round(p / 100 * (len(latencies) - 1))))] if latencies else None

    return {"concurrency": concurrency, "requests": requests, "ok": len(latencies),
            "rejected": sum(1 for s in statuses if s == 429),
            "errors": sum(1 for s in statuses if s not in (200, 429)),
            "req_per_s": len(latencies) / wall, "p50_s": pct(50), "p99_s": pct(99),
            "mean_s": statistics.fmean(latencies) if latencies else None}


def timed(send):
    t = time.perf_counter()
    status = send()
    if status != 200:
        raise RuntimeError(f"HTTP {status} on an idle server")
    return time.perf_counter() - t


def seconds(cmd):
    t = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t


def cli_transcribe(cli, audio_path, tmp):
    """Seconds per file without the model load: time(2 files) - time(1 file). The server loads
    Whisper with the default pipeline's precision, f32 (pipelines/default.toml), and
    transcribes uploads with a full 30 s window, so the CLI is given the same settings."""
    second = os.path.join(tmp, "again.wav")
    shutil.copyfile(audio_path, second)
    same = ["--precision", "float32"]
    one = seconds([cli, "transcribe", audio_path, *same])
    two = seconds([cli, "transcribe", audio_path, second, *same])
    return two - one


def cli_ask(cli, prompt, max_tokens):
    """Prefill + decode seconds that `percept ask --json` reports (load excluded), and tokens."""
    out = subprocess.run([cli, "ask", prompt, "--max-tokens", str(max_tokens), "--json"],
                         capture_output=True, check=True, text=True).stdout
    v = json.loads(out)
    return (v["prefill_ms"] + v["decode_ms"]) / 1000, v["completion_tokens"]


def compare(cli, rounds, work, audio_path, prompt, max_tokens):
    server = {"transcription": [], "chat": []}
    local = {"transcription": [], "chat": []}
    tokens = None
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(rounds):
            server["transcription"].append(timed(work["transcription"]))
            local["transcription"].append(cli_transcribe(cli, audio_path, tmp))
            server["chat"].append(timed(work["chat"]))
            secs, tokens = cli_ask(cli, prompt, max_tokens)
            local["chat"].append(secs)
    rows = []
    for name in ("transcription", "chat"):
        s, c = statistics.median(server[name]), statistics.median(local[name])
        rows.append({"work": name, "server_s": s, "cli_s": c, "overhead": s / c - 1,
                     "server_all": server[name], "cli_all": local[name]})
    return rows, tokens


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("--audio", required=True)
    ap.add_argument("--requests", type=int, default=8)
    ap.add_argument("--concurrency", default="1,2,4")
    ap.add_argument("--max-tokens", type=int, default=16)
    ap.add_argument("--prompt", default="Write one sentence about the sea.")
    ap.add_argument("--cli", help="percept binary: also compare with the CLI in-process")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    base = a.url.rstrip("/")
    with open(a.audio, "rb") as f:
        audio = f.read()
    whisper, llm = model_ids(base)
    work = {"transcription": transcription(base, audio, whisper), "chat": chat(base, a.prompt, a.max_tokens, llm)}
    rows = []
    for name, send in work.items():
        send()  # warm-up: first-call allocations are not what a steady server pays
        for c in (int(x) for x in a.concurrency.split(",")):
            rows.append({"work": name, **run(send, max(a.requests, c), c)})
    overhead, tokens = compare(a.cli, a.rounds, work, a.audio, a.prompt, a.max_tokens) if a.cli else ([], None)
    if a.json:
        print(json.dumps({"load": rows, "overhead": overhead}))
        return
    fmt = lambda v: f"{v:8.2f}" if v is not None else f"{'-':>8}"  # noqa: E731
    print(f"{'work':<14}{'clients':>8}{'ok':>5}{'429':>5}{'err':>5}{'req/s':>8}{'p50 s':>8}{'p99 s':>8}")
    for r in rows:
        print(f"{r['work']:<14}{r['concurrency']:>8}{r['ok']:>5}{r['rejected']:>5}{r['errors']:>5}"
              f"{fmt(r['req_per_s'])}{fmt(r['p50_s'])}{fmt(r['p99_s'])}")
    for r in overhead:
        extra = f" ({tokens} tokens)" if r["work"] == "chat" else ""
        print(f"{r['work']:<14} A/B medians over {a.rounds} rounds{extra}: server {r['server_s']:.3f} s, "
              f"CLI in-process {r['cli_s']:.3f} s, overhead {100 * r['overhead']:+.1f}%")


if __name__ == "__main__":
    main()

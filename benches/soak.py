#!/usr/bin/env python3
"""Soak: mixed traffic against `percept serve` for a long time, RSS sampled throughout.

Traffic, from concurrent clients: chat (plain and streamed, some disconnecting mid-stream),
spoken questions (input_audio), transcriptions, embeddings, malformed requests, stalled
uploads and half-sent headers. Reports throughput, status counts per kind, and RSS after
warm-up against RSS at the end (medians over two minutes each). Target: no crash, and RSS at
the end at most 10% above RSS after warm-up.

Usage: benches/soak.py [--minutes 30] [--warmup-s 60] [--binary target/release/percept]
"""
import argparse, base64, collections, json, os, random, re, socket, statistics, subprocess, sys, threading, time
import urllib.error, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def start(binary):
    p = subprocess.Popen([binary, "serve", "--addr", "127.0.0.1:0", "--queue", "4",
                          "--max-tokens", "24", "--body-timeout-s", "5", "--header-timeout-s", "5"],
                         cwd=ROOT, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    for line in p.stderr:
        m = re.search(r"listening on (http://\S+)", line)
        if m:
            threading.Thread(target=lambda: [None for _ in p.stderr], daemon=True).start()
            url = m.group(1)
            for _ in range(600):
                try:
                    if urllib.request.urlopen(url + "/health", timeout=5).status == 200:
                        return p, url
                except Exception:
                    time.sleep(0.2)
            break
    raise SystemExit("the server did not start")


class Tally:
    def __init__(self):
        self.lock = threading.Lock()
        self.by = collections.Counter()

    def add(self, kind, outcome):
        with self.lock:
            self.by[(kind, outcome)] += 1


def post(url, path, body, ctype="application/json", timeout=300):
    req = urllib.request.Request(url + path, data=body, headers={"Content-Type": ctype})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            r.read()
            return str(r.status)
    except urllib.error.HTTPError as e:
        e.read()
        return str(e.code)
    except Exception as e:
        return type(e).__name__


def multipart(field, name, data):
    b = "soakboundary"
    head = (f"--{b}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{name}\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode()
    return head + data + f"\r\n--{b}--\r\n".encode(), f"multipart/form-data; boundary={b}"


def raw(url, payload, stall_s=0.0, read=True):
    host, port = url[len("http://"):].rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=30)
    try:
        s.sendall(payload)
        if stall_s:
            time.sleep(stall_s)
        if read:
            reply = s.recv(64)
            return reply.split(b" ")[1].decode() if reply.count(b" ") else "closed"
        return "sent"
    except Exception as e:
        return type(e).__name__
    finally:
        s.close()


def client(kind, url, wav, stop, tally, rng):
    audio64 = base64.b64encode(wav).decode()
    host = url[len("http://"):]
    questions = ["What is the capital of France?", "Name a colour.", "Say hello.", "What is 2+2?"]
    while not stop.is_set():
        if kind == "chat":
            body = {"messages": [{"role": "user", "content": rng.choice(questions)}]}
            outcome = post(url, "/v1/chat/completions", json.dumps(body).encode())
        elif kind == "stream":
            body = {"stream": True, "messages": [{"role": "user", "content": rng.choice(questions)}]}
            req = urllib.request.Request(url + "/v1/chat/completions", data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=300) as r:
                    if rng.random() < 0.3:
                        r.readline()  # disconnect mid-stream
                        outcome = "disconnected"
                    else:
                        r.read()
                        outcome = str(r.status)
            except Exception as e:
                outcome = getattr(e, "code", type(e).__name__)
        elif kind == "spoken":
            body = {"messages": [{"role": "user", "content": [
                {"type": "input_audio", "input_audio": {"data": audio64, "format": "wav"}}]}]}
            outcome = post(url, "/v1/chat/completions", json.dumps(body).encode())
        elif kind == "transcribe":
            data, ctype = multipart("file", "jfk.wav", wav)
            outcome = post(url, "/v1/audio/transcriptions", data, ctype)
        elif kind == "embed":
            outcome = post(url, "/v1/embeddings", json.dumps({"input": "a photo of a cat"}).encode())
        elif kind == "malformed":
            bad = rng.choice([b"{", b"[]", b'{"messages": 5}', b"\xff\xfe", b'{"messages": [{"role": "x"}]}'])
            outcome = post(url, "/v1/chat/completions", bad)
            if rng.random() < 0.3:
                data, ctype = multipart("file", "a.wav", b"RIFF\x00\x00not audio")
                tally.add(kind, post(url, "/v1/audio/transcriptions", data, ctype))
        elif kind == "stalled":
            head = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                    "Content-Length: 5000\r\n\r\n{\"messages\"").encode()
            outcome = raw(url, head, stall_s=rng.uniform(1, 8))
        elif kind == "half_headers":
            outcome = raw(url, f"GET /health HTTP/1.1\r\nHost: {host}\r\n".encode(), stall_s=rng.uniform(1, 8))
        else:
            raise ValueError(kind)
        tally.add(kind, str(outcome))
        if str(outcome) == "429":
            time.sleep(1.0)  # the server's Retry-After
        if kind in ("malformed", "stalled", "half_headers", "embed"):
            time.sleep(rng.uniform(0.2, 1.0))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--warmup-s", type=float, default=60)
    ap.add_argument("--binary", default=os.path.join(ROOT, "target/release/percept"))
    ap.add_argument("--json", help="also write the report here")
    a = ap.parse_args()
    with open(os.path.join(ROOT, "assets/audio/jfk.wav"), "rb") as f:
        wav = f.read()
    server, url = start(a.binary)
    stop, tally = threading.Event(), Tally()
    kinds = ["chat", "stream", "spoken", "transcribe", "embed", "malformed", "stalled", "half_headers"]
    threads = [threading.Thread(target=client, args=(k, url, wav, stop, tally, random.Random(i)), daemon=True)
               for i, k in enumerate(kinds)]
    for t in threads:
        t.start()
    t0 = time.time()
    samples = []
    warm_rss = None
    end = t0 + a.warmup_s + a.minutes * 60
    while time.time() < end:
        time.sleep(5)
        if server.poll() is not None:
            break
        r = rss_mib(server.pid)
        samples.append((round(time.time() - t0, 1), round(r, 1)))
        if warm_rss is None and time.time() - t0 >= a.warmup_s:
            warm_rss = r
            with tally.lock:
                warm_counts = collections.Counter(tally.by)
    alive = server.poll() is None
    # RSS swings by a request's working set (about 100 MiB for an answer in flight), so compare
    # medians over two minutes: just after warm-up, and at the end.
    after = [r for t, r in samples if a.warmup_s <= t < a.warmup_s + 120]
    last = [r for t, r in samples if t >= samples[-1][0] - 120] if samples else []
    if after:
        warm_rss = statistics.median(after)
    end_rss = statistics.median(last) if alive and last else 0.0
    stop.set()
    elapsed = time.time() - t0 - a.warmup_s
    with tally.lock:
        counts = tally.by - warm_counts if warm_rss is not None else tally.by
    by_kind = collections.defaultdict(dict)
    for (k, o), n in sorted(counts.items()):
        by_kind[k][o] = n
    done_answers = sum(n for (k, o), n in counts.items() if k in ("chat", "stream", "spoken") and o == "200")
    growth = (end_rss - warm_rss) / warm_rss * 100 if warm_rss else float("nan")
    report = {
        "minutes": a.minutes, "alive_at_end": alive, "rss_after_warmup_mib": warm_rss, "rss_end_mib": end_rss,
        "rss_growth_pct": round(growth, 1), "rss_max_mib": max(r for _, r in samples) if samples else None,
        "answers_per_min": round(done_answers / max(elapsed / 60, 1e-9), 1), "by_kind": by_kind,
        "cpu": open("/proc/cpuinfo").read().split("model name")[1].split("\n")[0].strip(": \t"),
        "cores": os.cpu_count(), "rss_samples": samples,
    }
    if server.poll() is None:
        server.terminate()
        server.wait(timeout=30)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(report, f, indent=1)
    print(f"soak {a.minutes} min after {a.warmup_s:.0f} s warm-up on {report['cpu']} ({report['cores']} cores)")
    print(f"server alive at the end: {alive}")
    print(f"RSS median over 2 min after warm-up {warm_rss:.0f} MiB, over the last 2 min {end_rss:.0f} MiB "
          f"({growth:+.1f}%), max {report['rss_max_mib']:.0f} MiB")
    print(f"answers (chat, stream, spoken) per minute: {report['answers_per_min']}")
    for k, outcomes in by_kind.items():
        print(f"  {k:<13} " + ", ".join(f"{o}: {n}" for o, n in outcomes.items()))
    ok = alive and warm_rss and growth <= 10
    print("target (no crash, RSS within 10%):", "met" if ok else "NOT met")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

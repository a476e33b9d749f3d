#!/usr/bin/env bash
# `percept serve` under load: requests/s and p50/p99 latency for transcriptions (jfk.wav) and
# short chat answers at 1, 2 and 4 concurrent clients, then the same work done by the CLI
# in-process, and the server's overhead = server p50 at 1 client / CLI time per item - 1
# (target < 5%). The server is stopped before the CLI runs so they never share the CPU.
#
#   benches/server_load.sh [REQUESTS_PER_LEVEL]     (default 8; needs python3, a release build)
set -euo pipefail
cd "$(dirname "$0")/.."

bin=./target/release/percept
audio=assets/audio/jfk.wav
requests=${1:-8}
max_tokens=16
prompt="Write one sentence about the sea."
[ -x "$bin" ] || cargo build --release

work=$(mktemp -d)
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

"$bin" serve --addr 127.0.0.1:0 --queue 8 2>"$work/serve.log" &
server_pid=$!
url=""
for _ in $(seq 1 1200); do
  url=$(sed -n 's/^percept: listening on //p' "$work/serve.log")
  [ -n "$url" ] && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/serve.log" >&2; exit 1; }
  sleep 0.1
done
[ -n "$url" ] || { echo "server_load: no listening line" >&2; exit 1; }
echo "server: $url (pid $server_pid)" >&2

python3 benches/server_load.py "$url" --audio "$audio" --requests "$requests" \
  --max-tokens "$max_tokens" --prompt "$prompt" --json >"$work/server.json"
peak_kb=$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$server_pid/status")
kill "$server_pid"
wait "$server_pid" 2>/dev/null || true
server_pid=""

# Seconds a command takes (its output dropped).
seconds() {
  python3 -c 'import subprocess, sys, time
t = time.perf_counter()
subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
print(time.perf_counter() - t)' "$@"
}
# Transcription per item without the model load: (time for 1+K files - time for 1 file) / K.
k=4
one=$(seconds "$bin" transcribe "$audio")
files=()
for i in $(seq 0 "$k"); do cp "$audio" "$work/jfk$i.wav"; files+=("$work/jfk$i.wav"); done
many=$(seconds "$bin" transcribe "${files[@]}")
echo "$one $many $k" >"$work/cli_transcribe.txt"

# Chat per item: `percept ask --json` reports its own prefill and decode time (load excluded).
for _ in 1 2 3; do
  "$bin" ask "$prompt" --max-tokens "$max_tokens" --json 2>/dev/null
done >"$work/cli_ask.jsonl"

python3 - "$work" "$peak_kb" <<'EOF'
import json, statistics, sys
work, peak_kb = sys.argv[1], int(sys.argv[2] or 0)
rows = json.load(open(f"{work}/server.json"))
one, many, k = open(f"{work}/cli_transcribe.txt").read().split()
cli = {"transcription": (float(many) - float(one)) / int(k)}
asks = [json.loads(l) for l in open(f"{work}/cli_ask.jsonl") if l.strip()]
cli["chat"] = statistics.median((a["prefill_ms"] + a["decode_ms"]) / 1000 for a in asks)
tokens = asks[0]["completion_tokens"]
f = lambda v: f"{v:8.2f}" if v is not None else f"{'-':>8}"
print(f"{'work':<14}{'clients':>8}{'ok':>5}{'429':>5}{'req/s':>8}{'p50 s':>8}{'p99 s':>8}")
for r in rows:
    print(f"{r['work']:<14}{r['concurrency']:>8}{r['ok']:>5}{r['rejected']:>5}"
          f"{f(r['req_per_s'])}{f(r['p50_s'])}{f(r['p99_s'])}")
print(f"server peak RSS: {peak_kb / 1024:.0f} MiB")
for work_name, secs in cli.items():
    p50 = next(r["p50_s"] for r in rows if r["work"] == work_name and r["concurrency"] == 1)
    extra = f" ({tokens} tokens)" if work_name == "chat" else ""
    print(f"{work_name:<14} CLI in-process {secs:.3f} s/item{extra}, server p50 at 1 client {p50:.3f} s: "
          f"overhead {100 * (p50 / secs - 1):+.1f}%")
EOF

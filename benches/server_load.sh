#!/usr/bin/env bash
# `percept serve` under load: requests/s and p50/p99 latency for transcriptions (jfk.wav) and
# short chat answers at 1, 2 and 4 concurrent clients, then the same work done by the CLI
# in-process, and the server's overhead = server time / CLI time - 1 (target < 5%), measured
# A/B in alternating rounds with the server idle while the CLI runs (see server_load.py).
#
#   benches/server_load.sh [REQUESTS_PER_LEVEL] [ROUNDS]   (default 8 and 3; needs python3)
set -euo pipefail
cd "$(dirname "$0")/.."

bin=./target/release/percept
audio=assets/audio/jfk.wav
requests=${1:-8}
rounds=${2:-3}
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
  --max-tokens "$max_tokens" --prompt "$prompt" --cli "$bin" --rounds "$rounds"
echo "server peak RSS: $(($(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$server_pid/status") / 1024)) MiB"

#!/usr/bin/env bash
# Scaling of `percept fleet`: the same folder processed by one worker, then by two, each
# worker with one compute thread (RAYON_NUM_THREADS=1), on a redis-server started here on a
# free loopback port (AOF, appendfsync always). Prints files/s for each.
# Usage: benches/batch_scale.sh [DIR]   (default: 12 copies of jfk.wav and 12 images)
# Needs redis-server (scripts/setup), python3, a release build, whisper-tiny.en and
# efficientnet-lite0. WORKERS="1 2 4" measures other counts.
# The time runs from the workers' start to the last one's exit, so it includes each
# worker's model load (about a second here); a larger folder makes that share smaller.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${PERCEPT_BIN:-$root/target/release/percept}
command -v redis-server >/dev/null || { echo "batch_scale: redis-server is missing; run scripts/setup" >&2; exit 1; }
work=$(mktemp -d)
redis_pid=""
cleanup() { [ -n "$redis_pid" ] && kill "$redis_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
dir=${1:-}
if [ -z "$dir" ]; then
    dir="$work/media"
    mkdir -p "$dir"
    for i in $(seq -w 1 12); do
        cp "$root/assets/audio/jfk.wav" "$dir/speech$i.wav"
    done
    i=0
    for round in 1 2 3; do
        for img in horse chelsea coffee astronaut; do
            i=$((i + 1))
            cp "$root/assets/images/$img.png" "$dir/image$i.png"
        done
    done
fi
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --bind 127.0.0.1 --port "$port" --dir "$work" --appendonly yes --appendfsync always \
    --save "" >"$work/redis.log" 2>&1 &
redis_pid=$!
url="redis://127.0.0.1:$port"
until "$bin" fleet --redis "$url" --run probe --status >/dev/null 2>&1 ||
    grep -q "Ready to accept" "$work/redis.log"; do sleep 0.1; done
files=$(find -L "$dir" -type f | wc -l)
echo "batch_scale: $files files in $dir, $(nproc) cores, 1 compute thread per worker"
for n in ${WORKERS:-1 2}; do
    run="scale$n"
    "$bin" fleet --redis "$url" --run "$run" --enqueue "$dir" 2>/dev/null
    start=$(date +%s.%N)
    pids=()
    for i in $(seq "$n"); do
        # bash's `time` writes the worker's CPU seconds (user + system) to its own file.
        { TIMEFORMAT="%U %S"; time RAYON_NUM_THREADS=1 "$bin" fleet --redis "$url" --run "$run" \
            --work 2>"$work/worker$n-$i.log"; } 2>"$work/cpu$n-$i" &
        pids+=($!)
    done
    for p in "${pids[@]}"; do
        wait "$p" || { echo "batch_scale: a worker failed:" >&2; cat "$work"/worker"$n"-*.log >&2; exit 1; }
    done
    end=$(date +%s.%N)
    cpu=$(cat "$work"/cpu"$n"-* | awk '{ s += $1 + $2 } END { print s }')
    "$bin" fleet --redis "$url" --run "$run" --status --json |
        python3 -c 'import json, sys
s = json.load(sys.stdin); n, start, end, cpu = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
done, errors = s["ok"] + s["error"] + len(s["dead"]), s["error"]; secs = end - start
print(f"{n} worker(s): {done} files in {secs:.1f} s = {done / secs:.2f} files/s ({errors} errors); "
      f"workers used {cpu:.1f} CPU s, {cpu / secs:.2f} cores on average")' \
            "$n" "$start" "$end" "$cpu"
done

#!/usr/bin/env bash
# percept vs faster-whisper (int8 and float32, greedy, 2 CPU threads) on the same ~2-minute file
# (jfk.wav repeated 11 times with sox) and the same CTranslate2 model directory, in one run.
# Needs: sox, python3 -m pip install faster-whisper, a release build of percept.
# Usage: benches/whisper_vs_faster_whisper.sh [MODEL_ID] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
model_id=${1:-whisper-tiny.en}
rounds=${2:-2}
model_dir=$(./target/release/percept models path "$model_id" 2>/dev/null || echo "$HOME/.cache/percept/models/$model_id")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
audio="$tmp/jfk_x11.wav"
sox $(for _ in $(seq 11); do printf 'assets/audio/jfk.wav '; done) "$audio"
export OMP_NUM_THREADS=2 RAYON_NUM_THREADS=2
fw() {
  python3 - "$model_dir" "$audio" "$1" <<'PY'
import sys, time, faster_whisper
m = faster_whisper.WhisperModel(sys.argv[1], device="cpu", compute_type=sys.argv[3], cpu_threads=2)
t = time.perf_counter()
segs, _ = m.transcribe(sys.argv[2], beam_size=1, best_of=1, vad_filter=False)
n = sum(len(s.text.split()) for s in segs)
print(f"{time.perf_counter() - t:.3f} {n}")
PY
}
best() { sort -n | head -1; }
declare -A t
for name in fw_int8 fw_float32 percept; do t[$name]=""; done
for r in $(seq "$rounds"); do
  t[fw_int8]+="$(fw int8 | cut -d' ' -f1)"$'\n'
  t[fw_float32]+="$(fw float32 | cut -d' ' -f1)"$'\n'
  t[percept]+="$(./target/release/percept bench whisper --model "$model_id" --audio "$audio" --json \
    | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["total_s"], 3))')"$'\n'
done
i8=$(printf '%s' "${t[fw_int8]}" | best); f32=$(printf '%s' "${t[fw_float32]}" | best); pc=$(printf '%s' "${t[percept]}" | best)
echo "audio: $(soxi -D "$audio") s, model $model_id, best of $rounds, 2 threads"
echo "faster-whisper int8:    $i8 s"
echo "faster-whisper float32: $f32 s"
echo "percept (f32, candle):  $pc s"
python3 -c "i8,f32,pc=$i8,$f32,$pc; print(f'percept speed vs float32: {f32/pc:.2f}x (target >= 1.0)'); print(f'percept speed vs int8:    {i8/pc:.2f}x (target >= 0.75)')"

#!/usr/bin/env bash
# percept vs faster-whisper (int8 and float32) on about 3 minutes of varied long-form speech,
# with the same CTranslate2 model directory and the same decoding defaults, reporting each
# side's time and word error rate (WER) against the known transcript.
#
# Why varied speech: the old version of this bench fed jfk.wav repeated 11 times. On repeated
# text faster-whisper's compression-ratio check fires and it re-decodes with sampling, so the
# ratio measured its temperature fallback rather than the two decoders. Here the input is the
# clips in tests/fixtures/whisper/speech/ (text in sentences.tsv), assets/audio/jfk.wav once,
# and distinct English sentences synthesised with espeak-ng in several voices and rates, each
# resampled to 16 kHz mono and joined with sox with 0.7 s of silence between clips. The
# reference transcript is those sentences in order, so WER shows that a speed-up is not bought
# with accuracy.
#
# Same defaults on both sides: greedy (beam_size=1, best_of=1), timestamps on (both sides'
# default), temperature fallback left at each side's default, no VAD (percept's energy gate
# only skips windows that are silent throughout; every window here holds speech), 2 threads
# (OMP_NUM_THREADS=2 RAYON_NUM_THREADS=2, cpu_threads=2). Times include loading the model on
# both sides: percept is the whole `percept transcribe` process's wall time; faster-whisper is
# timed from constructing WhisperModel to the last segment (its Python import is left out).
# WER is the word-level Levenshtein distance after lowercasing and stripping punctuation,
# divided by the reference's word count.
#
# Targets (issue 14): percept >= 1.0x faster-whisper int8's speed; percept's WER within 0.02
# of faster-whisper float32's.
#
# Needs: sox, espeak-ng, a Python with faster-whisper (python3 by default; PYTHON=... to use
# another), a release build of percept (./target/release/percept).
# percept runs its default precision (Q8_0 decoder, f32 encoder); PERCEPT_PRECISION=int8-all
# quantises the encoder too, the same work as faster-whisper's int8.
# Usage: benches/whisper_vs_faster_whisper.sh [MODEL_ID] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
model_id=${1:-whisper-tiny.en}
rounds=${2:-2}
py=${PYTHON:-python3}
percept=./target/release/percept
fixtures=tests/fixtures/whisper/speech
model_dir=$("$percept" models path "$model_id" 2>/dev/null || echo "$HOME/.cache/percept/models/$model_id")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# --- Build the audio and its reference transcript -------------------------------------------
# Synthesised sentences: voice|rate (words per minute)|text. No numbers, contractions or
# hyphens, so the normalisation needs no number or spelling rules.
synth=$(cat <<'EOF'
en-us|165|The library on the corner opens early on weekdays and closes late on Friday evenings.
en-gb|150|My uncle grows tomatoes, beans and peppers in a small garden behind his house.
en-us+f3|175|When the train finally arrived, the passengers hurried onto the platform with their bags.
en-gb-scotland|140|She poured a cup of hot tea and sat by the window to watch the rain.
en-us|185|The museum has a new exhibition about ancient ships and the sailors who built them.
en-gb|160|Before you leave the house, please remember to lock the door and turn off the lights.
en-us+f3|145|Our teacher asked us to write a short story about a journey through the mountains.
en-gb-scotland|170|The baker wakes up before sunrise to prepare fresh bread for the morning customers.
en-us|150|A small boat drifted slowly across the lake while the fishermen waited for a bite.
en-gb|180|The city council will discuss the new bicycle lanes at the meeting next month.
en-us+f3|160|He forgot his umbrella at the office, so he walked home through the heavy rain.
en-gb-scotland|155|The doctor told her to drink more water and get plenty of sleep every night.
en-us|170|Farmers in the valley harvest apples and pears at the end of every summer.
en-gb|145|We watched the sun go down over the ocean as the waves rolled onto the sand.
en-us+f3|185|The old clock in the hallway stopped working after the storm last winter.
en-gb-scotland|160|Please bring a warm jacket because the evenings in the desert can be very cold.
en-us|155|The students cleaned the classroom and stacked the chairs before the holiday began.
en-gb|170|My grandmother keeps every letter she has ever received in a wooden box.
en-us+f3|150|The pilot announced that the flight would land a little earlier than expected.
en-gb-scotland|175|Music drifted from the open windows as people danced in the village square.
en-us|145|The engineer explained how the bridge was designed to survive strong winds and floods.
en-gb|165|After dinner we played cards in the kitchen and listened to the radio.
en-us+f3|170|The puppy chased a red ball around the yard until it fell asleep in the shade.
en-gb-scotland|150|Scientists are studying how birds find their way home across thousands of miles.
en-us|160|The market was crowded with families buying fruit, cheese and flowers on Saturday morning.
en-gb|155|Her brother repaired the broken fence and painted it white before the guests arrived.
en-us+f3|165|The lighthouse keeper climbed the stairs every evening to light the great lamp.
EOF
)
jfk_text="And so my fellow Americans ask not what your country can do for you ask what you can do for your country"

clips=() # 16 kHz mono wavs in order, with silence between them
n=0
silence="$tmp/silence.wav"
sox -q -n -r 16000 -c 1 -b 16 "$silence" trim 0 0.7
: >"$tmp/reference.txt"
add_clip() { # add_clip SOURCE_AUDIO TEXT
  n=$((n + 1))
  local out
  out=$(printf '%s/clip_%02d.wav' "$tmp" "$n")
  sox -q -G "$1" -r 16000 -c 1 -b 16 "$out"
  if [ ${#clips[@]} -gt 0 ]; then clips+=("$silence"); fi
  clips+=("$out")
  printf '%s\n' "$2" >>"$tmp/reference.txt"
}
# The fixture clips first (their formats vary: mp3, flac, ogg, 8 kHz wav, 44.1 kHz stereo).
while IFS=$'\t' read -r file text; do
  [ "$file" = file ] && continue
  add_clip "$fixtures/$file" "$text"
done <"$fixtures/sentences.tsv"
# Then the synthesised sentences, with jfk.wav once in the middle.
i=0
while IFS='|' read -r voice rate text; do
  i=$((i + 1))
  espeak-ng -v "$voice" -s "$rate" -w "$tmp/espeak.wav" "$text"
  add_clip "$tmp/espeak.wav" "$text"
  if [ "$i" = 12 ]; then add_clip assets/audio/jfk.wav "$jfk_text"; fi
done <<<"$synth"
audio="$tmp/speech.wav"
sox -q "${clips[@]}" "$audio"

# --- Helpers ---------------------------------------------------------------------------------
cat >"$tmp/fw.py" <<'PY'
import json, sys, time
import faster_whisper
model_dir, audio, compute_type = sys.argv[1:4]
t = time.perf_counter()
m = faster_whisper.WhisperModel(model_dir, device="cpu", compute_type=compute_type, cpu_threads=2)
segs, _ = m.transcribe(audio, beam_size=1, best_of=1, vad_filter=False, without_timestamps=False)
text = " ".join(s.text.strip() for s in segs)  # decoding happens while iterating
print(json.dumps({"s": time.perf_counter() - t, "text": text}))
PY
cat >"$tmp/wer.py" <<'PY'
import re, sys
def words(s):
    return re.sub(r"[^a-z0-9' ]+", " ", s.lower()).replace("'", "").split()
def wer(ref, hyp):
    r, h = words(ref), words(hyp)
    prev = list(range(len(h) + 1))
    for i, rw in enumerate(r, 1):
        cur = [i] + [0] * len(h)
        for j, hw in enumerate(h, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (rw != hw))
        prev = cur
    return prev[-1] / max(len(r), 1)
ref = open(sys.argv[1]).read()
print(f"{wer(ref, open(sys.argv[2]).read()):.4f}")
PY
export OMP_NUM_THREADS=2 RAYON_NUM_THREADS=2
fw() { # fw COMPUTE_TYPE ROUND: prints seconds, writes the transcript
  "$py" "$tmp/fw.py" "$model_dir" "$audio" "$1" >"$tmp/fw_$1.json"
  "$py" -c 'import json,sys; d=json.load(open(sys.argv[1])); open(sys.argv[2],"w").write(d["text"]); print("%.3f" % d["s"])' \
    "$tmp/fw_$1.json" "$tmp/hyp_fw_$1.txt"
}
pc() { # prints seconds, writes the transcript
  local t0 t1
  t0=$EPOCHREALTIME
  "$percept" transcribe "$audio" --model "$model_dir" --format json \
    ${PERCEPT_PRECISION:+--precision "$PERCEPT_PRECISION"} >"$tmp/percept.json"
  t1=$EPOCHREALTIME
  "$py" -c 'import json,sys; open(sys.argv[2],"w").write(json.load(open(sys.argv[1]))["text"])' \
    "$tmp/percept.json" "$tmp/hyp_percept.txt"
  "$py" -c "print(f'{$t1 - $t0:.3f}')"
}

# --- Run -------------------------------------------------------------------------------------
best() { sort -n | head -1; }
declare -A t
for name in fw_int8 fw_float32 percept; do t[$name]=""; done
for _ in $(seq "$rounds"); do
  t[fw_int8]+="$(fw int8)"$'\n'
  t[fw_float32]+="$(fw float32)"$'\n'
  t[percept]+="$(pc)"$'\n'
done
i8=$(printf '%s' "${t[fw_int8]}" | best)
f32=$(printf '%s' "${t[fw_float32]}" | best)
p=$(printf '%s' "${t[percept]}" | best)
w_i8=$("$py" "$tmp/wer.py" "$tmp/reference.txt" "$tmp/hyp_fw_int8.txt")
w_f32=$("$py" "$tmp/wer.py" "$tmp/reference.txt" "$tmp/hyp_fw_float32.txt")
w_p=$("$py" "$tmp/wer.py" "$tmp/reference.txt" "$tmp/hyp_percept.txt")

cpu=$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
echo "audio: $(soxi -D "$audio") s ($n clips: $(wc -w <"$tmp/reference.txt") reference words), model $model_id"
echo "cpu: $cpu; 2 threads, greedy, timestamps on, best of $rounds round(s)"
printf '%-26s %8s s   WER %s\n' "faster-whisper int8:" "$i8" "$w_i8"
printf '%-26s %8s s   WER %s\n' "faster-whisper float32:" "$f32" "$w_f32"
printf '%-26s %8s s   WER %s\n' "percept:" "$p" "$w_p"
"$py" - "$i8" "$f32" "$p" "$w_f32" "$w_p" <<'PY'
import sys
i8, f32, p, w_f32, w_p = map(float, sys.argv[1:])
print(f"percept speed vs int8:    {i8 / p:.2f}x (target >= 1.0) {'ok' if i8 / p >= 1.0 else 'MISSED'}")
print(f"percept speed vs float32: {f32 / p:.2f}x")
d = w_p - w_f32
print(f"percept WER - float32 WER: {d:+.4f} (target <= +0.02) {'ok' if d <= 0.02 else 'MISSED'}")
PY

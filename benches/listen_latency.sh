#!/usr/bin/env bash
# End of speech -> first answer token on the live path (`percept bench listen`), with four
# spoken turns made here by espeak-ng (16 kHz) and played in real time. PAUSE (default 5 s)
# between turns leaves time for each answer, as a speaker waiting for it would.
# Usage: benches/listen_latency.sh [extra `percept bench listen` options]
# Needs espeak-ng, sox, a release build and whisper-tiny.en + smollm2-135m-instruct.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${PERCEPT_BIN:-$root/target/release/percept}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sox -n -r 16000 -c 1 -b 16 "$work/pause.wav" trim 0 "${PAUSE:-5}"
parts=("$work/pause.wav")
i=0
for s in "My name is Alice." "What is my name?" "What is the capital of France?" "Tell me a short joke."; do
    espeak-ng -w "$work/raw$i.wav" "$s"
    sox "$work/raw$i.wav" -r 16000 -c 1 -b 16 "$work/s$i.wav"
    parts+=("$work/s$i.wav" "$work/pause.wav")
    i=$((i + 1))
done
sox "${parts[@]}" "$work/turns.wav"
"$bin" bench listen --input "$work/turns.wav" --max-tokens 32 "$@" 

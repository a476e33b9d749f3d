#!/usr/bin/env bash
# percept vs llama.cpp's llama-bench on the same GGUF, 2 threads, in one run: prefill and
# decode tokens/s, peak RSS, and their ratios (targets: decode >= 1.0x, prefill >= 0.8x,
# peak RSS <= 1.2x). The "candle" row is the same binary on candle-transformers' models
# (PERCEPT_LLM_ENGINE=candle), percept's engine before its own decoder.
#
# llama-bench comes from the llama.cpp sources that the llama-cpp-python 0.3.36 sdist vendors,
# built once into target/llamacpp (cmake and a C++ compiler needed; ~15 min on 2 cores).
# GGML_NATIVE=ON builds for this CPU; on a CPU that lists AMX (a KVM Xeon here), a native
# build dies with an illegal instruction even with ggml's AMX options off (-march=native
# turns them back on), so there it is built for AVX-512 with VNNI and BF16 named one by one.
# LLAMA_CMAKE_ARGS overrides both (e.g. "-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON").
# LLAMA_BENCH=/path/to/llama-bench uses a build you already have.
# Usage: benches/llm_vs_llamacpp.sh [MODEL_ID] [PROMPT_TOKENS] [GEN_TOKENS]
set -euo pipefail
cd "$(dirname "$0")/.."
model_id=${1:-smollm2-135m-instruct}
pp=${2:-128}
tg=${3:-128}
gguf=$(find "$(./target/release/percept models path "$model_id")" -name '*.gguf' | head -1)
build=target/llamacpp
bench=${LLAMA_BENCH:-$build/build/bin/llama-bench}
native_args() {
  if grep -qw amx_tile /proc/cpuinfo; then
    echo "-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON" \
      "-DGGML_AVX512=ON -DGGML_AVX512_VBMI=ON -DGGML_AVX512_VNNI=ON -DGGML_AVX512_BF16=ON"
  else
    echo "-DGGML_NATIVE=ON"
  fi
}
if [ ! -x "$bench" ]; then
  mkdir -p "$build"
  # The sdist only; its build tools (scikit-build-core, cmake) come as wheels: with
  # `--no-binary :all:` pip would build cmake itself from source just to read metadata.
  python3 -m pip download --no-deps --no-binary llama-cpp-python llama-cpp-python==0.3.36 -d "$build" >&2
  tar xzf "$build"/llama_cpp_python-0.3.36.tar.gz -C "$build"
  src="$build/llama_cpp_python-0.3.36/vendor/llama.cpp"
  cmake -S "$src" -B "$build/build" -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF \
    ${LLAMA_CMAKE_ARGS:-$(native_args)} >&2
  cmake --build "$build/build" -j"$(nproc)" --target llama-bench >&2
fi
export RAYON_NUM_THREADS=2
rss=$(mktemp)
lc=$(/usr/bin/time -f %M -o "$rss" "$bench" -m "$gguf" -t 2 -p "$pp" -n "$tg" -r 3 -o json)
lrss=$(cat "$rss")
rm -f "$rss"
run() { ./target/release/percept bench llm --model "$model_id" --prompt-tokens "$pp" --gen-tokens "$tg" --json; }
pc=$(run)
pq=$(PERCEPT_LLM_ENGINE=candle run)
python3 - "$lc" "$pc" "$pp" "$tg" "$pq" "$lrss" <<'PY'
import json, sys
lc, pc, pp, tg, pq = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3], sys.argv[4], json.loads(sys.argv[5])
lrss = int(sys.argv[6]) / 1024
def rate(kind):
    for r in lc:
        if (kind == "pp" and r["n_prompt"] > 0 and r["n_gen"] == 0) or (kind == "tg" and r["n_gen"] > 0 and r["n_prompt"] == 0):
            return r["avg_ts"]
lpp, ltg = rate("pp"), rate("tg")
print(f"model {pc['model']} ({pc['arch']}), 2 threads, pp{pp} tg{tg}")
print(f"llama.cpp    prefill {lpp:8.1f} tok/s   decode {ltg:7.1f} tok/s   peak RSS {lrss:.0f} MiB")
for name, p in (("percept", pc), ("candle", pq)):
    print(f"{name:12} prefill {p['prefill_tok_s']:8.1f} tok/s   decode {p['decode_tok_s']:7.1f} tok/s   peak RSS {p['peak_rss_mib']:.0f} MiB  ({p['engine']} decoder)")
    print(f"  ratio:    prefill {p['prefill_tok_s']/lpp:8.2f}x (target >= 0.8)   decode {p['decode_tok_s']/ltg:5.2f}x (target >= 1.0)   RSS {p['peak_rss_mib']/lrss:.2f}x (target <= 1.2)")
PY

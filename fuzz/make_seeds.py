#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora under fuzz/corpus/<target>/ (kept in the repo).

Small valid inputs of every format each target reads, so the fuzzer starts inside the
parsers instead of guessing magic numbers: audio and images made with ffmpeg from a sine
and assets/images/horse.png; hand-built GGUF, CTranslate2 and safetensors models with
tiny tensors (the layouts percept's loaders expect); the first bytes of the real models
in ~/.cache/percept/models when they are there; the classifier fixture checkpoint; chat
request bodies; the bundled pipelines. Needs python3 and ffmpeg; run from anywhere:

    python3 fuzz/make_seeds.py [TARGET...]    (default: every target)
"""

import json
import math
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

FUZZ = Path(__file__).resolve().parent
ROOT = FUZZ.parent
CORPUS = FUZZ / "corpus"
MODELS = Path.home() / ".cache" / "percept" / "models"


def put(target, name, data):
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)


def ffmpeg(args, out_name):
    """Runs ffmpeg writing to a temporary file named like out_name; returns the bytes."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / out_name
        subprocess.run(
            ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args, str(out)],
            check=True,
        )
        return out.read_bytes()


# ---------------------------------------------------------------- video


def video_seeds():
    # One second of a moving test pattern at 64x48, 5 fps, with a tone where the container
    # takes one: every container and codec pair percept's video tests use, and AVI.
    pic = ["-f", "lavfi", "-i", "testsrc=size=64x48:rate=5:duration=1"]
    tone = ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=16000:duration=1"]
    cases = [
        ("h264_aac.mp4", pic + tone + ["-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-b:a", "16k"]),
        ("vp9_opus.mkv", pic + tone + ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-c:a", "libopus", "-b:a", "16k"]),
        ("vp8_vorbis.webm", pic + tone + ["-c:v", "libvpx", "-deadline", "realtime", "-c:a", "libvorbis"]),
        ("mjpeg_pcm.avi", pic + tone + ["-c:v", "mjpeg", "-q:v", "31", "-ar", "8000", "-c:a", "pcm_u8"]),
        ("mpeg4_mp3.mov", pic + tone + ["-c:v", "mpeg4", "-q:v", "20", "-c:a", "libmp3lame", "-b:a", "32k"]),
        ("silent_h264.mp4", pic + ["-c:v", "libx264", "-preset", "ultrafast"]),
    ]
    for name, args in cases:
        put("video", name, ffmpeg(args, name))


# ---------------------------------------------------------------- audio


def audio_seeds():
    # 0.05 s of 440 Hz at 8 kHz, 16-bit mono: 800 bytes of samples.
    frames = b"".join(
        struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / 8000)))
        for i in range(400)
    )
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "s.wav"
        with wave.open(str(p), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(8000)
            w.writeframes(frames)
        put("audio", "sine_8k_s16.wav", p.read_bytes())
    # Issue 13's F1: a WAV declaring 4294967295 Hz.
    pcm = b"\0" * 64
    f1 = (
        b"RIFF"
        + struct.pack("<I", 36 + len(pcm))
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, 4294967295, 4294967294, 2, 16)
        + b"data"
        + struct.pack("<I", len(pcm))
        + pcm
    )
    put("audio", "f1_rate_4294967295.wav", f1)
    sine = ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=16000:duration=0.1"]
    sine_st = [
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=44100:duration=0.05",
        "-ac",
        "2",
    ]
    cases = [
        ("stereo_44k_f32.wav", sine_st + ["-c:a", "pcm_f32le"]),
        ("adpcm_ms.wav", sine + ["-c:a", "adpcm_ms"]),
        ("sine.flac", sine + ["-c:a", "flac"]),
        ("sine.mp3", sine + ["-c:a", "libmp3lame", "-b:a", "32k"]),
        ("sine.ogg", sine + ["-c:a", "libvorbis", "-q:a", "0"]),
        ("sine.opus", sine + ["-c:a", "libopus", "-b:a", "16k"]),
        ("sine.webm", sine + ["-c:a", "libopus", "-b:a", "16k"]),
        ("sine.m4a", sine + ["-c:a", "aac", "-b:a", "32k"]),
        ("alac.m4a", sine + ["-c:a", "alac"]),
        ("sine.aiff", sine + ["-c:a", "pcm_s16be"]),
    ]
    for name, args in cases:
        put("audio", name, ffmpeg(args, name))


# ---------------------------------------------------------------- images


def exif_app1(orientation):
    """An APP1 segment with EXIF orientation, a camera make and GPS coordinates."""
    entries_ifd0 = []
    extra = b""
    # Offsets below are from the start of the TIFF header.
    make = b"FuzzCam\0"
    ifd0_count = 3
    ifd0_size = 2 + 12 * ifd0_count + 4
    make_off = 8 + ifd0_size
    gps_off = make_off + len(make)
    entries_ifd0.append(struct.pack("<HHII", 0x010F, 2, len(make), make_off))
    entries_ifd0.append(struct.pack("<HHIHH", 0x0112, 3, 1, orientation, 0))
    entries_ifd0.append(struct.pack("<HHII", 0x8825, 4, 1, gps_off))
    ifd0 = struct.pack("<H", ifd0_count) + b"".join(entries_ifd0) + struct.pack("<I", 0)
    gps_count = 4
    gps_size = 2 + 12 * gps_count + 4
    lat_off = gps_off + gps_size
    lon_off = lat_off + 24
    gps = (
        struct.pack("<H", gps_count)
        + struct.pack("<HHI4s", 1, 2, 2, b"N\0\0\0")
        + struct.pack("<HHII", 2, 5, 3, lat_off)
        + struct.pack("<HHI4s", 3, 2, 2, b"E\0\0\0")
        + struct.pack("<HHII", 4, 5, 3, lon_off)
        + struct.pack("<I", 0)
    )
    rationals = struct.pack("<6I", 48, 1, 51, 1, 24, 1) + struct.pack("<6I", 2, 1, 21, 1, 7, 1)
    extra = make + gps + rationals
    tiff = b"II*\0" + struct.pack("<I", 8) + ifd0 + extra
    body = b"Exif\0\0" + tiff
    return b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body


def with_exif(jpeg, orientation):
    assert jpeg[:2] == b"\xff\xd8"
    return jpeg[:2] + exif_app1(orientation) + jpeg[2:]


def image_seeds():
    src = ROOT / "assets" / "images" / "horse.png"
    small = ["-i", str(src), "-vf", "scale=16:12"]
    jpg = ffmpeg(small + ["-q:v", "8"], "small.jpg")
    put("image", "small.jpg", jpg)
    put("image", "exif_rotated_gps.jpg", with_exif(jpg, 6))
    put("image", "truncated.jpg", jpg[: len(jpg) // 2])
    cases = [
        ("small.png", small),
        ("gray.png", small + ["-pix_fmt", "gray"]),
        ("rgba.png", small + ["-pix_fmt", "rgba"]),
        ("rgb48.png", ["-i", str(src), "-vf", "scale=6:4", "-pix_fmt", "rgb48be"]),
        ("palette.gif", small),
        ("small.bmp", small),
        ("small.tiff", small),
        ("lossless.webp", small + ["-c:v", "libwebp", "-lossless", "1"]),
        ("lossy.webp", small + ["-c:v", "libwebp", "-q:v", "20"]),
    ]
    for name, args in cases:
        put("image", name, ffmpeg(args, name))


# ---------------------------------------------------------------- GGUF

GGUF_U32, GGUF_I32, GGUF_F32, GGUF_BOOL, GGUF_STRING, GGUF_ARRAY = 4, 5, 6, 7, 8, 9


def gguf_str(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def gguf_value(v):
    """(type, bytes) for a Python value: str, bool, int (u32), float (f32), list."""
    if isinstance(v, bool):
        return GGUF_BOOL, struct.pack("<?", v)
    if isinstance(v, str):
        return GGUF_STRING, gguf_str(v)
    if isinstance(v, int):
        return GGUF_U32, struct.pack("<I", v)
    if isinstance(v, float):
        return GGUF_F32, struct.pack("<f", v)
    if isinstance(v, tuple) and v[0] == "i32s":
        return GGUF_ARRAY, struct.pack("<IQ", GGUF_I32, len(v[1])) + b"".join(
            struct.pack("<i", x) for x in v[1]
        )
    if isinstance(v, list):
        return GGUF_ARRAY, struct.pack("<IQ", GGUF_STRING, len(v)) + b"".join(
            gguf_str(x) for x in v
        )
    raise TypeError(v)


def gguf(meta, tensors, align=32):
    """GGUF v3: meta is a list of (key, value); tensors a list of (name, dims, f32 values),
    dims in ggml order (fastest first)."""
    out = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(meta))
    for k, v in meta:
        t, b = gguf_value(v)
        out += gguf_str(k) + struct.pack("<I", t) + b
    offset = 0
    blobs = []
    for name, dims, values in tensors:
        out += gguf_str(name) + struct.pack("<I", len(dims))
        out += b"".join(struct.pack("<Q", d) for d in dims)
        out += struct.pack("<IQ", 0, offset)  # type 0 = f32
        blob = b"".join(struct.pack("<f", x) for x in values)
        blob += b"\0" * (-len(blob) % align)
        blobs.append(blob)
        offset += len(blob)
    out += b"\0" * (-len(out) % align)
    return out + b"".join(blobs)


def byte_level_tokens():
    """GPT-2's byte-to-unicode table, so every byte is one token."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for _, c in sorted(zip(bs, cs))]


SMOLLM2_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful AI assistant named SmolLM, trained by "
    "Hugging Face<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def tiny_llama_gguf():
    """A whole llama model (1 layer, width 8, 2 heads) with a byte-level BPE vocabulary:
    small enough to seed the fuzzer, complete enough that percept loads it."""
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    merges = ["Ġ t", "h e", "i n", "Ġt he"]
    tokens = specials + byte_level_tokens() + ["Ġt", "he", "in", "Ġthe"]
    types = [3] * len(specials) + [1] * (len(tokens) - len(specials))
    n_embd, n_ff, n_vocab = 8, 16, len(tokens)
    meta = [
        ("general.architecture", "llama"),
        ("general.name", "tiny fuzz seed"),
        ("llama.block_count", 1),
        ("llama.context_length", 64),
        ("llama.embedding_length", n_embd),
        ("llama.feed_forward_length", n_ff),
        ("llama.attention.head_count", 2),
        ("llama.attention.head_count_kv", 1),
        ("llama.rope.freq_base", 10000.0),
        ("llama.attention.layer_norm_rms_epsilon", 1e-5),
        ("llama.rope.dimension_count", 4),
        ("tokenizer.ggml.model", "gpt2"),
        ("tokenizer.ggml.pre", "smollm"),
        ("tokenizer.ggml.tokens", tokens),
        ("tokenizer.ggml.token_type", ("i32s", types)),
        ("tokenizer.ggml.merges", merges),
        ("tokenizer.ggml.bos_token_id", 1),
        ("tokenizer.ggml.eos_token_id", 2),
        ("tokenizer.ggml.add_bos_token", False),
        ("tokenizer.chat_template", SMOLLM2_TEMPLATE),
    ]

    def w(*dims):
        n = 1
        for d in dims:
            n *= d
        return [((i * 37) % 17 - 8) / 64 for i in range(n)]

    kv = n_embd // 2  # 1 kv head of width 4
    tensors = [
        ("token_embd.weight", [n_embd, n_vocab], w(n_embd, n_vocab)),
        ("output_norm.weight", [n_embd], [1.0] * n_embd),
        ("blk.0.attn_norm.weight", [n_embd], [1.0] * n_embd),
        ("blk.0.attn_q.weight", [n_embd, n_embd], w(n_embd, n_embd)),
        ("blk.0.attn_k.weight", [n_embd, kv], w(n_embd, kv)),
        ("blk.0.attn_v.weight", [n_embd, kv], w(n_embd, kv)),
        ("blk.0.attn_output.weight", [n_embd, n_embd], w(n_embd, n_embd)),
        ("blk.0.ffn_norm.weight", [n_embd], [1.0] * n_embd),
        ("blk.0.ffn_gate.weight", [n_embd, n_ff], w(n_embd, n_ff)),
        ("blk.0.ffn_up.weight", [n_embd, n_ff], w(n_embd, n_ff)),
        ("blk.0.ffn_down.weight", [n_ff, n_embd], w(n_ff, n_embd)),
    ]
    return gguf(meta, tensors)


def gguf_seeds():
    tiny = tiny_llama_gguf()
    # Also the chat target's tokenizer and template (fuzz_targets/chat.rs).
    put("gguf", "tiny_llama.gguf", tiny)
    put("gguf", "header_only.gguf", gguf([("general.architecture", "qwen2")], []))
    real = MODELS / "smollm2-135m-instruct" / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if real.is_file():
        # The real header is 1.7 MB (the vocabulary); its first 32 KB are the fields
        # before it and the start of the token list.
        put("gguf", "smollm2_prefix.gguf", real.read_bytes()[: 32 << 10])


# ---------------------------------------------------------------- CTranslate2


def ct2_string(s):
    b = s.encode() + b"\0"
    return struct.pack("<H", len(b)) + b


def ct2(variables, version=6):
    """model.bin: variables are (name, shape, dtype code, raw bytes)."""
    out = struct.pack("<I", version) + ct2_string("WhisperSpec") + struct.pack("<I", 3)
    out += struct.pack("<I", len(variables))
    for name, shape, dtype, raw in variables:
        out += ct2_string(name) + struct.pack("<B", len(shape))
        out += b"".join(struct.pack("<I", d) for d in shape)
        out += struct.pack("<BI", dtype, len(raw)) + raw
    return out


def f32s(n):
    return b"".join(struct.pack("<f", ((i * 7) % 5 - 2) / 10) for i in range(n))


def f16s(n):
    return b"".join(struct.pack("<e", ((i * 7) % 5 - 2) / 10) for i in range(n))


def ct2_seeds():
    state, mels, ctx, vocab = 4, 2, 3, 5
    var = [
        ("encoder/num_heads", [], 1, b"\x02"),
        ("decoder/num_heads", [], 1, b"\x02"),
        ("encoder/conv1/weight", [state, mels, 3], 0, f32s(state * mels * 3)),
        ("encoder/conv1/bias", [state], 4, f16s(state)),
        ("encoder/position_encodings/encodings", [ctx, state], 0, f32s(ctx * state)),
        ("encoder/layer_0/ffn/linear_0/weight", [8, state], 0, f32s(8 * state)),
        ("encoder/layer_0/self_attention/linear_0/weight", [3 * state, state], 4, f16s(12 * state)),
        ("encoder/layer_0/self_attention/layer_norm/gamma", [state], 0, f32s(state)),
        ("decoder/embeddings/weight", [vocab, state], 0, f32s(vocab * state)),
        ("decoder/position_encodings/encodings", [ctx, state], 0, f32s(ctx * state)),
        ("decoder/layer_0/ffn/linear_0/weight", [8, state], 0, f32s(8 * state)),
        ("decoder/layer_0/attention/linear_1/weight", [2 * state, state], 0, f32s(8 * state)),
        ("decoder/layer_0/attention/linear_1/bias", [2 * state], 5, b"\0\x3f" * (2 * state)),
        ("decoder/alignment_heads", [2, 2], 3, struct.pack("<4i", 0, 1, 0, 0)),
        ("decoder/scale_embeddings", [], 2, struct.pack("<h", 1)),
    ]
    put("ct2", "tiny_whisper.bin", ct2(var))
    put("ct2", "version4_empty.bin", ct2([], version=4))
    real = MODELS / "whisper-tiny.en" / "model.bin"
    if real.is_file():
        put("ct2", "whisper_tiny_en_prefix.bin", real.read_bytes()[:4096])


# ---------------------------------------------------------------- safetensors


def safetensors(tensors, metadata=None):
    """tensors: (name, dtype, shape, raw bytes)."""
    header = {}
    if metadata:
        header["__metadata__"] = metadata
    offset = 0
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(t[3] for t in tensors)


def safetensors_seeds():
    state, mels, ctx, vocab = 4, 2, 3, 5
    t = [
        ("model.encoder.conv1.weight", "F32", [state, mels, 3], f32s(state * mels * 3)),
        ("model.encoder.embed_positions.weight", "F16", [ctx, state], f16s(ctx * state)),
        ("model.encoder.layers.0.fc1.weight", "F32", [8, state], f32s(8 * state)),
        ("model.decoder.embed_tokens.weight", "BF16", [vocab, state], b"\0\x3f" * (vocab * state)),
        ("model.decoder.embed_positions.weight", "F32", [ctx, state], f32s(ctx * state)),
        ("decoder.layers.0.fc1.weight", "F32", [8, state], f32s(8 * state)),
        ("proj_out.weight", "I64", [2], struct.pack("<2q", 1, -1)),
        ("scalar", "U8", [], b"\x07"),
        ("empty", "F32", [0, 3], b""),
    ]
    put("safetensors", "tiny_whisper.safetensors", safetensors(t, {"format": "pt"}))
    put("safetensors", "empty.safetensors", safetensors([]))


# ---------------------------------------------------------------- pickle


def pickle_seeds():
    put("pickle", "tiny_legacy.pth", (ROOT / "tests" / "fixtures" / "classify" / "tiny_legacy.pth").read_bytes())
    real = MODELS / "efficientnet-lite0" / "efficientnet-lite0.pth"
    if real.is_file():
        put("pickle", "efficientnet_lite0_prefix.pth", real.read_bytes()[:1024])


# ---------------------------------------------------------------- chat

PNG_1PX = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


def chat_seeds():
    bodies = {
        "plain.json": {"messages": [{"role": "user", "content": "What is the capital of France?"}]},
        "conversation.json": {
            "model": "smollm2-135m-instruct",
            "messages": [
                {"role": "system", "content": "Answer in one word."},
                {"role": "developer", "content": "Be kind."},
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello! <|im_end|>"},
                {"role": "assistant", "content": None},
                {"role": "user", "content": [{"type": "text", "text": "And <data label=\"x\">now</data>?"}]},
            ],
            "temperature": 0.7,
            "top_p": 0.9,
            "max_tokens": 16,
            "seed": 7,
            "stop": ["\n", "END"],
            "stream": True,
            "stream_options": {"include_usage": True},
            "n": 1,
        },
        "media.json": {
            "messages": [
                {"role": "user", "content": [
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64," + PNG_1PX}},
                    {"type": "text", "text": "earlier"},
                ]},
                {"role": "user", "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64," + PNG_1PX}},
                    {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
                    {"type": "image_url", "image_url": {"url": "file:///tmp/../etc/x%2e.png"}},
                ]},
            ],
            "max_completion_tokens": 8,
            "stop": "x",
        },
        "file_localhost.json": {
            "messages": [{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": "file://localhost/nope.png"}},
            ]}],
        },
    }
    for name, body in bodies.items():
        put("chat", name, json.dumps(body).encode())


# ---------------------------------------------------------------- pipeline TOML


def pipeline_seeds():
    for p in sorted((ROOT / "pipelines").glob("*.toml")):
        put("pipeline_toml", p.name, p.read_bytes())
    put(
        "pipeline_toml",
        "devices.toml",
        b'description = "x"\nwhisper = "whisper-tiny.en"\nllm = "smollm2-135m-instruct"\nclip = "clip-vit-base-patch32"\n'
        b'device = "cpu"\n[devices]\nspeech = "cuda:1"\nllm = "metal"\n[runtime]\nchannel_capacity = 2\n'
        b"threads = 3\nmax_audio_s = 30\n[sampling]\ntop_k = 5\nmin_p = 0.1\nseed = 3\n"
        b'[speech]\nlanguage = "en"\n[vision]\ntags = 2\n[probe]\nenabled = false\n',
    )


SEEDS = {
    "audio": audio_seeds,
    "video": video_seeds,
    "image": image_seeds,
    "gguf": gguf_seeds,
    "ct2": ct2_seeds,
    "safetensors": safetensors_seeds,
    "pickle": pickle_seeds,
    "chat": chat_seeds,
    "pipeline_toml": pipeline_seeds,
}


def main():
    # Targets named on the command line are rewritten alone (encoders are not bit-exact
    # across versions, so rewriting every corpus would churn the kept seeds).
    targets = sys.argv[1:] or list(SEEDS)
    for t in targets:
        if t not in SEEDS:
            sys.exit(f"unknown target {t} (known: {' '.join(SEEDS)})")
        if (CORPUS / t).is_dir():
            shutil.rmtree(CORPUS / t)
        SEEDS[t]()
    for d in sorted(CORPUS.iterdir()):
        files = list(d.iterdir())
        print(f"{d.name}: {len(files)} seeds, {sum(f.stat().st_size for f in files)} bytes")


if __name__ == "__main__":
    main()

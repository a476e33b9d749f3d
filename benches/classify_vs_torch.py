#!/usr/bin/env python3
"""percept vs PyTorch (float32, 2 threads) on EfficientNet-Lite0, batch 8, 224x224, the same
weights (the manifest's `efficientnet-lite0`), alternating rounds in one run.

PyTorch runs the plain-PyTorch network of scripts/fixtures/efficientnet_reference.py (the
parity reference) on the batch percept would see, in both NCHW and channels-last memory
formats, and the faster of the two counts; percept runs the example binary of
percept-classify (forward pass on a preprocessed batch, median of --repeats, after a
warm-up). Both sides time the forward pass only; percept's preprocessing time is printed
beside it.

Each round prints median rates; the last line compares the best single forward of each
side over all rounds, which a machine shared with other work disturbs least. On such a
machine PyTorch's OpenMP threads spin-wait for each other and lose most of their speed at
2 threads: run with OMP_WAIT_POLICY=PASSIVE to give PyTorch its best case there.

Needs: pip install torch numpy pillow; the model (`percept models fetch efficientnet-lite0`);
  cargo build --release -p percept-classify --example classify
Usage: python3 benches/classify_vs_torch.py [--batch 8] [--rounds 2] [--repeats 3] [--threads 2]
"""
import argparse
import json
import os
import subprocess
import sys
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts", "fixtures"))
import efficientnet_reference as ref  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--batch", type=int, default=8)
ap.add_argument("--rounds", type=int, default=2)
ap.add_argument("--repeats", type=int, default=3)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--weights")
args = ap.parse_args()

torch.set_num_threads(args.threads)
weights = args.weights or ref.store_weights()
model = ref.Lite0().eval()
model.load_state_dict(torch.load(weights, map_location="cpu"), strict=True)
images = [os.path.join(ROOT, "assets", "images", f) for f in ref.IMAGES]
crops = [ref.crop_rgb(p) for p in images]
x = torch.stack([ref.pixels(crops[i % len(crops)]) for i in range(args.batch)])
binary = os.path.join(ROOT, "target", "release", "examples", "classify")
if not os.path.exists(binary):
    sys.exit(f"{binary} is missing: cargo build --release -p percept-classify --example classify")


model_cl = ref.Lite0().eval().to(memory_format=torch.channels_last)
model_cl.load_state_dict(model.state_dict())
x_cl = x.to(memory_format=torch.channels_last)


best = {"torch": float("inf"), "percept": float("inf")}


def torch_rate(m, inp):
    with torch.inference_mode():
        m(inp)  # warm-up
        times = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            m(inp)
            times.append(time.perf_counter() - t)
    best["torch"] = min(best["torch"], min(times))
    return args.batch / sorted(times)[len(times) // 2]


def percept_run():
    env = dict(os.environ, RAYON_NUM_THREADS=str(args.threads))
    cmd = [binary, "--model", weights, "--batch", str(args.batch), "--repeats", str(args.repeats),
           "--json", *images]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    result = json.loads(out.strip().splitlines()[-1])
    best["percept"] = min(best["percept"], result["best_s"])
    return result


print(f"EfficientNet-Lite0, batch {args.batch}, 224x224, {args.threads} threads, "
      f"torch {torch.__version__}, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}")
rows = []
for r in range(args.rounds):
    nchw, cl = torch_rate(model, x), torch_rate(model_cl, x_cl)
    t = max(nchw, cl)
    p = percept_run()
    rows.append((t, p["images_per_s"]))
    print(f"round {r + 1}: PyTorch float32 {t:.1f} images/s (NCHW {nchw:.1f}, channels-last {cl:.1f}), percept {p['images_per_s']:.1f} images/s "
          f"(ratio {p['images_per_s'] / t:.2f}x; percept preprocessing "
          f"{p['preprocess_s'] * 1e3 / args.batch:.1f} ms/image)")
med_t = sorted(t for t, _ in rows)[len(rows) // 2]
med_p = sorted(p for _, p in rows)[len(rows) // 2]
print(f"median of rounds: PyTorch {med_t:.1f} images/s, percept {med_p:.1f} images/s, "
      f"ratio {med_p / med_t:.2f}x")
bt, bp = args.batch / best["torch"], args.batch / best["percept"]
print(f"best forward: PyTorch {bt:.1f} images/s, percept {bp:.1f} images/s, ratio {bp / bt:.2f}x")

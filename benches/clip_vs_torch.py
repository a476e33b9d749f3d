#!/usr/bin/env python3
"""percept vs transformers (PyTorch float32, 2 threads) on CLIP ViT-B/32's image tower, batch 8,
224x224, random weights (same compute as the real model), alternating in one run.

Needs: pip install torch transformers; a release build of percept.
Usage: python3 benches/clip_vs_torch.py [--batch 8] [--rounds 2]
"""
import argparse, json, os, subprocess, time

import torch
from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ap = argparse.ArgumentParser()
ap.add_argument("--batch", type=int, default=8)
ap.add_argument("--rounds", type=int, default=2)
args = ap.parse_args()

torch.set_num_threads(2)
cfg = CLIPVisionConfig(hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                       num_attention_heads=12, image_size=224, patch_size=32, projection_dim=512)
model = CLIPVisionModelWithProjection(cfg).eval()
x = torch.randn(args.batch, 3, 224, 224)


def torch_rate():
    with torch.inference_mode():
        model(pixel_values=x)  # warm-up
        times = []
        for _ in range(3):
            t = time.perf_counter()
            model(pixel_values=x)
            times.append(time.perf_counter() - t)
    return args.batch / sorted(times)[1]


def percept_rate():
    out = subprocess.run([os.path.join(root, "target/release/percept"), "bench", "clip", "--random",
                          "vit-b-32", "--batch", str(args.batch), "--repeats", "3", "--json"],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)["images_per_s"]


best_t, best_p = 0.0, 0.0
for _ in range(args.rounds):
    best_t = max(best_t, torch_rate())
    best_p = max(best_p, percept_rate())
print(f"batch {args.batch}, 224x224, 2 threads, best of {args.rounds}")
print(f"pytorch float32: {best_t:.1f} images/s")
print(f"percept:         {best_p:.1f} images/s")
print(f"percept vs pytorch: {best_p / best_t:.2f}x (target >= 0.75)")

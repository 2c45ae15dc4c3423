"""Rendering a generation: 40 codes in memory -> 40 encoded JPEGs, per generator, on this machine's device.

evostim's path: one batched decode under inference mode (channels-last; half precision on CUDA when it stays
within 2/255 of fp32), uint8 conversion on the device, then JPEG encoding on the GPU (nvJPEG) or by PIL in
parallel threads on the CPU. The baseline, run in the same script: the plain fp32 module, one image at a time,
encoded one by one with PIL. deepsim-fc6 uses the lab's weights when EVOSTIM_WEIGHTS_DIR has them, otherwise
random weights of the same architecture (the time does not depend on the values).
Target (DESIGN.md): fc6 40 x 256x256 JPEG <= 50 ms on an H100; dcgan-faces <= 100 ms on CPU.
The last line reads `dcgan-faces: N images/s, speed-up R x over baseline`.
"""

from __future__ import annotations

import argparse
import copy
import io
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from evostim import generators
from evostim.generators import GeneratorWeightsMissing, ImageGenerator
from evostim.server.media.renderer import Renderer

BATCH = 40
TARGETS_MS = {("deepsim-fc6", "cuda"): 50.0, ("dcgan-faces", "cpu"): 100.0}


def load(name: str, device: str) -> tuple[ImageGenerator, str]:
    weights_dir = Path(os.environ.get("EVOSTIM_WEIGHTS_DIR", "weights"))
    try:
        return generators.load_generator(name, device, weights_dir), "lab weights"
    except GeneratorWeightsMissing:
        spec = generators.generator_spec(name)
        torch_device = generators.resolve_device(device)
        module = {"deepsim-fc6": generators.deepsim_fc6.DeepSimFc6}[name]()
        return ImageGenerator(spec, module.to(torch_device), torch_device), "random weights"


def evostim_render(generator: ImageGenerator, codes: np.ndarray) -> list[bytes]:
    """The server's own renderer, with an empty cache: one batched decode, one batched encode."""
    renderer = Renderer(lambda _name: generator, cache_bytes=256 * 2**20)
    return renderer.render(generator.spec.name, list(codes), "jpg")


def baseline_render(module: torch.nn.Module, device: torch.device, codes: np.ndarray) -> list[bytes]:
    encoded = []
    with torch.no_grad():
        for code in codes:
            image = module(torch.as_tensor(code[None], dtype=torch.float32, device=device)).clamp(0, 1)
            pixels = (image[0] * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
            buffer = io.BytesIO()
            Image.fromarray(pixels).save(buffer, format="JPEG", quality=95)
            encoded.append(buffer.getvalue())
    return encoded


def timed(function: object, repeats: int, device: torch.device) -> float:
    """Median milliseconds of ``function()`` over ``repeats`` runs after one warm-up."""
    function()  # type: ignore[operator]
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        function()  # type: ignore[operator]
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append((time.perf_counter() - started) * 1e3)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="3 repeats")
    parser.add_argument("--generators", default="deepsim-fc6,dcgan-faces", help="comma-separated (dcgan-faces last)")
    args = parser.parse_args()
    repeats = 3 if args.quick else args.repeats
    device = generators.resolve_device(args.device)
    print(f"decode + JPEG-encode {BATCH} images on {device} ({torch.get_num_threads()} CPU threads)")
    print(f"{'generator':<14}{'weights':>15}{'evostim ms':>12}{'images/s':>10}{'baseline ms':>13}{'speed-up':>10}"
          f"{'target':>9}{'half-precision err':>20}")  # fmt: skip
    results = {}
    for name in args.generators.split(","):
        generator, weights = load(name, str(device))
        # The baseline runs the same weights as a plain fp32, contiguous-layout module.
        plain = copy.deepcopy(generator.module).to(memory_format=torch.contiguous_format).float()
        codes = np.random.default_rng(0).standard_normal((BATCH, generator.latent_dim))
        codes *= generator.spec.typical_norm / np.sqrt(generator.latent_dim)
        ours = timed(lambda g=generator, c=codes: evostim_render(g, c), repeats, device)
        base = timed(lambda m=plain, c=codes: baseline_render(m, device, c), max(1, repeats // 3), device)
        target = TARGETS_MS.get((name, device.type))
        error = "-" if generator.half_precision_error is None else f"{generator.half_precision_error:.2f}/255"
        print(f"{name:<14}{weights:>15}{ours:>12.1f}{BATCH / ours * 1e3:>10.0f}{base:>13.1f}{base / ours:>9.1f}x"
              f"{(f'{target:g} ms' if target else '-'):>9}{error:>20}", flush=True)  # fmt: skip
        results[name] = (BATCH / ours * 1e3, base / ours)
    name = list(results)[-1]
    rate, speed_up = results[name]
    print(f"{name}: {rate:.0f} images/s, speed-up {speed_up:.1f} x over baseline")


if __name__ == "__main__":
    main()

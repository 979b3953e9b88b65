"""How much faster are bf16 matrix products than float32 ones on this CPU, at the evaluation's shapes?

Greedy generation of the embedded model multiplies a batch of 48 hidden states (d = 576) by
each layer's weights (the largest: 576 x 1536) and by the 49,152-wide output layer. Times each
product in float32 and in bfloat16 (median of 50 after 3 warm-up calls, on the threads torch
uses) and prints the ratio: what a bf16 path could gain, before any question of whether its
answers stay the same.

    .venv/bin/python bench/bf16_products.py
"""

import statistics
import time

import torch

SHAPES = {"MLP product (48 x 576 x 1536)": (48, 576, 1536), "output layer (48 x 576 x 49152)": (48, 576, 49152)}


def median_ms(x: torch.Tensor, w: torch.Tensor, repeats: int = 50) -> float:
    for _ in range(3):
        torch.nn.functional.linear(x, w)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        torch.nn.functional.linear(x, w)
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def main() -> None:
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"CPU capability {torch.backends.cpu.get_cpu_capability()}")
    for name, (rows, d, out) in SHAPES.items():
        x, w = torch.randn(rows, d), torch.randn(out, d)
        fp32 = median_ms(x, w)
        bf16 = median_ms(x.bfloat16(), w.bfloat16())
        print(f"{name:34s} float32 {fp32:7.2f} ms   bfloat16 {bf16:7.2f} ms   {fp32 / bf16:.2f}x")


if __name__ == "__main__":
    main()

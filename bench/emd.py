"""EMD benchmark: closed form vs POT's LP, lower bound vs closed form, peak memory.

Everything is measured side by side in one run on the same random problems (|V| tokens,
d = 576 like SmolLM2, peaked next-token distributions, one-hot targets). Run:

    .venv/bin/python bench/emd.py            # full run, ~2-4 min on 2 cores
    .venv/bin/python bench/emd.py --quick    # smaller sizes, a smoke test

Targets (issue 2): closed form >= 1000x faster than ot.emd2 at |V| = 49152 and equal to 1e-6;
lower bound within 1.5x the closed form's time; peak extra memory < 2x the (positions x |V|)
probability tensor.
"""

import argparse
import subprocess
import sys
import time

import numpy as np
import ot
import torch

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))
from semsafe.cost import SemanticCost  # noqa: E402
from semsafe.emd import emd_lower_bound, emd_to_token  # noqa: E402

D = 576


def problem(v, n, seed=0):
    g = torch.Generator().manual_seed(seed)
    cost = SemanticCost.from_embeddings(torch.randn(v, D, generator=g))
    p = torch.softmax(4 * torch.randn(n, v, generator=g), -1)
    y = torch.randint(v, (n,), generator=g)
    return cost, p, y


def best_of(fn, repeat=3):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def lp_dense(p, y, cost, n_lp):
    """ot.emd2 as a POT user writes it: full |V| x |V| cost matrix, one-hot b over |V|."""
    M = cost.submatrix(torch.arange(cost.vocab_size)).double().numpy()
    vals = []
    for i in range(n_lp):
        b = np.zeros(cost.vocab_size)
        b[y[i]] = 1.0
        a = p[i].double().numpy()
        vals.append(ot.emd2(a / a.sum(), b, M))
    return np.array(vals)


def lp_column(p, y, cost, n_lp):
    """ot.emd2 on the target's support only: M is the |V| x 1 cost column (built outside)."""
    cols = [cost.column(int(y[i])).double().numpy()[:, None] for i in range(n_lp)]
    vals = []
    t = time.perf_counter()
    for i in range(n_lp):
        a = p[i].double().numpy()
        vals.append(ot.emd2(a / a.sum(), np.ones(1), cols[i]))
    return np.array(vals), time.perf_counter() - t


def compare_lp(sizes, n_closed, n_lp):
    print(f"\n1) emd_to_token vs ot.emd2 (float64 LP), d={D}; closed form batched over "
          f"{n_closed} positions, LP one call per position ({n_lp} calls)")
    print(f"{'|V|':>7} {'closed/pos':>11} {'LP dense/pos':>13} {'ratio':>9} "
          f"{'LP column/pos':>14} {'ratio':>8} {'max |diff|':>11}")
    for v in sizes:
        cost, p, y = problem(v, n_closed)
        t_closed, closed = best_of(lambda: emd_to_token(p, y, cost))
        per_closed = t_closed / n_closed
        cost64 = SemanticCost(cost.unit.double())  # the LP's float64 reference
        p64 = p.double() / p.double().sum(-1, keepdim=True)  # exactly normalised for both
        closed64 = emd_to_token(p64, y, cost64)
        col_vals, t_col = lp_column(p64, y, cost64, n_lp)
        per_col = t_col / n_lp
        diff = np.abs(col_vals - closed64[:n_lp].numpy()).max()
        dense_txt, ratio_txt = "(no room)", "n/a"
        if v * v * 8 <= 2.2e9:  # the dense matrix must fit comfortably in 24 GB with copies
            t = time.perf_counter()
            dense_vals = lp_dense(p64, y, cost64, min(n_lp, 3))
            per_dense = (time.perf_counter() - t) / min(n_lp, 3)
            diff = max(diff, np.abs(dense_vals - closed64[:len(dense_vals)].numpy()).max())
            dense_txt, ratio_txt = f"{per_dense * 1e3:10.1f} ms", f"{per_dense / per_closed:.0f}x"
        print(f"{v:>7} {per_closed * 1e3:8.3f} ms {dense_txt:>13} {ratio_txt:>9} "
              f"{per_col * 1e3:11.2f} ms {per_col / per_closed:>7.1f}x {diff:>11.1e}")
        float32_diff = np.abs(closed[:n_lp].double().numpy() - col_vals).max()
        print(f"{'':>7} (float32 closed form vs LP: max |diff| {float32_diff:.1e})")


def compare_bound(v, n):
    cost, p, y = problem(v, n)
    q = torch.softmax(4 * torch.randn(n, v, generator=torch.Generator().manual_seed(1)), -1)
    t_closed, _ = best_of(lambda: emd_to_token(p, y, cost), 5)
    t_bound, _ = best_of(lambda: emd_lower_bound(p, q, cost), 5)
    t_bound_ids, _ = best_of(lambda: emd_lower_bound(p, y, cost), 5)
    print(f"\n2) lower bound vs closed form, |V|={v}, {n} positions")
    print(f"   emd_to_token              {t_closed * 1e3:8.1f} ms")
    print(f"   emd_lower_bound(p, q)     {t_bound * 1e3:8.1f} ms   ratio {t_bound / t_closed:.2f}x "
          "(q a full distribution, as in the emd_lb objective)")
    print(f"   emd_lower_bound(p, ids)   {t_bound_ids * 1e3:8.1f} ms   ratio {t_bound_ids / t_closed:.2f}x")


MEMORY_CHILD = """
import sys, torch
sys.path.insert(0, {root!r})
from semsafe.cost import SemanticCost
from semsafe.measure import PeakRSS
from semsafe.emd import emd_lower_bound, emd_to_token
g = torch.Generator().manual_seed(0)
cost = SemanticCost.from_embeddings(torch.randn({v}, 576, generator=g))
logits = torch.randn({n}, {v}, generator=g)
p = torch.softmax(logits, -1).requires_grad_({backward})
q = torch.softmax(torch.randn({n}, {v}, generator=g), -1)
y = torch.randint({v}, ({n},), generator=g)
cost.centroid(p[:1].detach())  # warm-up: allocator, BLAS buffers
with PeakRSS() as peak:
    out = emd_to_token(p, y, cost) if {which!r} == "emd_to_token" else emd_lower_bound(p, q, cost)
    if {backward}:
        out.sum().backward()
print(peak.extra_bytes)
"""


def compare_memory(v, n):
    size = n * v * 4
    root = str(__import__("pathlib").Path(__file__).resolve().parents[1])
    print(f"\n3) peak extra memory, |V|={v}, d={D}, {n} positions "
          f"(probability tensor {size / 1e6:.0f} MB; each in a fresh process)")
    for which in ("emd_to_token", "emd_lower_bound"):
        for backward in (False, True):
            code = MEMORY_CHILD.format(root=root, v=v, n=n, which=which, backward=backward)
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
            extra = int(out.stdout.strip().splitlines()[-1])
            label = f"{which}{' + backward' if backward else ''}"
            print(f"   {label:<28} {extra / 1e6:8.1f} MB  = {extra / size:.2f}x the probability tensor")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, a smoke test")
    args = parser.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    print(f"torch {torch.__version__}, POT {ot.__version__}, threads {torch.get_num_threads()}")
    if args.quick:
        compare_lp([1000, 4000], n_closed=32, n_lp=4)
        compare_bound(4000, 64)
        compare_memory(4000, 64)
    else:
        compare_lp([1000, 4000, 16000, 49152], n_closed=512, n_lp=16)
        compare_bound(49152, 512)
        compare_memory(49152, 512)


if __name__ == "__main__":
    main()

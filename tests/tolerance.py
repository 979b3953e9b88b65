"""Float tolerances derived from the dtype and the length of the sums being compared.

A sum of n terms in floating point is off by at most γ_n · Σ|x_i| with γ_n = n·u/(1 − n·u),
u = eps/2 the unit roundoff (Higham, *Accuracy and Stability of Numerical Algorithms*, §4.2).
Every quantity compared in the tests (a centroid, an EMD, an LP's objective) is a short chain
of such sums, so the tolerance is a small multiple of that bound, not a number seen in one run.
"""

import torch


def sum_tolerance(dtype, n: int, magnitude: float = 1.0, chain: int = 4) -> float:
    """Worst-case rounding error of ``chain`` successive sums of ``n`` terms of total absolute
    size ``magnitude``, computed in ``dtype``."""
    u = torch.finfo(dtype).eps / 2
    gamma = n * u / (1 - n * u)
    return chain * gamma * magnitude

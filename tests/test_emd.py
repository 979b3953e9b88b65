"""EMD functions against POT's LP with an explicitly built cost matrix, and closed forms."""

import numpy as np
import ot
import pytest
import torch

from semsafe.cost import SemanticCost
from semsafe.emd import emd_exact, emd_lower_bound, emd_to_token
from semsafe.errors import SemsafeError
from tolerance import sum_tolerance

V, D = 40, 6
KINDS = ["uniform", "peaked", "sparse", "onehot", "flat-ish"]
TOL = sum_tolerance(torch.float64, V, magnitude=2.0)  # closed forms: sums over the vocabulary
LP_TOL = sum_tolerance(torch.float64, V * V, magnitude=2.0)  # an LP objective: sum over V x V cells


def make_cost(seed=0, v=V, d=D):
    g = torch.Generator().manual_seed(seed)
    return SemanticCost.from_embeddings(torch.randn(v, d, generator=g, dtype=torch.float64))


def full_matrix(cost):
    return cost.submatrix(range(cost.vocab_size)).numpy()


def random_dist(kind, g, v=V):
    if kind == "uniform":
        return torch.full((v,), 1.0 / v, dtype=torch.float64)
    if kind == "peaked":
        return torch.softmax(8 * torch.randn(v, generator=g, dtype=torch.float64), 0)
    if kind == "sparse":
        w = torch.zeros(v, dtype=torch.float64)
        ids = torch.randperm(v, generator=g)[:4]
        w[ids] = torch.rand(4, generator=g, dtype=torch.float64) + 0.1
        return w / w.sum()
    if kind == "onehot":
        w = torch.zeros(v, dtype=torch.float64)
        w[torch.randint(v, (1,), generator=g)] = 1.0
        return w
    return torch.softmax(torch.randn(v, generator=g, dtype=torch.float64), 0)


def cases(n_per_kind=8, seed=0):
    """(p, q) pairs over every pair of kinds, plus identical and disjoint-support pairs."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for kp in KINDS:
        for kq in KINDS:
            for _ in range(n_per_kind // 4 or 1):
                out.append((random_dist(kp, g), random_dist(kq, g)))
    for _ in range(n_per_kind):
        p = random_dist("peaked", g)
        out.append((p, p.clone()))  # identical
        perm = torch.randperm(V, generator=g)
        a, b = torch.zeros(V, dtype=torch.float64), torch.zeros(V, dtype=torch.float64)
        a[perm[:V // 2]] = torch.rand(V // 2, generator=g, dtype=torch.float64)
        b[perm[V // 2:]] = torch.rand(V - V // 2, generator=g, dtype=torch.float64)
        out.append((a / a.sum(), b / b.sum()))  # disjoint supports
    return out


@pytest.mark.parametrize("kind", KINDS)
def test_emd_to_token_equals_pot_lp(kind):
    cost = make_cost(1)
    M = full_matrix(cost)
    g = torch.Generator().manual_seed(7)
    p = torch.stack([random_dist(kind, g) for _ in range(16)])
    y = torch.randint(V, (16,), generator=g)
    ours = emd_to_token(p, y, cost)
    for i in range(16):
        ref = ot.emd2(p[i].numpy(), np.eye(V)[y[i]], M)
        assert abs(ours[i].item() - ref) <= sum_tolerance(p.dtype, V, magnitude=2.0)


def test_emd_to_token_batched_shapes_and_float32():
    cost = make_cost(2)
    g = torch.Generator().manual_seed(3)
    p = torch.softmax(torch.randn(3, 5, V, generator=g), -1)  # float32 input
    y = torch.randint(V, (3, 5), generator=g)
    out = emd_to_token(p, y, cost)
    assert out.shape == (3, 5) and out.dtype == torch.float32
    ref = emd_to_token(p.double(), y, cost)
    # float32 against float64: the float32 sums over V terms dominate the difference
    assert torch.allclose(out.double(), ref, rtol=0, atol=sum_tolerance(torch.float32, V, magnitude=2.0))


def test_exact_matches_pot_and_bound_holds_on_all_cases():
    cost = make_cost(3)
    M = full_matrix(cost)
    checked = 0
    for p, q in cases():
        exact = emd_exact(p, q, cost)
        ref = ot.emd2(p.numpy(), q.numpy(), M)
        assert abs(exact.value - ref) <= LP_TOL
        # the plan is a coupling of p and q
        assert np.allclose(exact.plan.sum(1), p[exact.row_ids].numpy(), atol=LP_TOL)
        assert np.allclose(exact.plan.sum(0), q[exact.col_ids].numpy(), atol=LP_TOL)
        bound = emd_lower_bound(p, q, cost).item()
        assert -LP_TOL <= bound <= exact.value + LP_TOL
        checked += 1
    assert checked > 40


def test_bound_equals_exact_for_one_hot_pairs():
    cost = make_cost(4)
    for u in range(0, V, 3):
        for y in range(0, V, 5):
            p = torch.zeros(V, dtype=torch.float64)
            q = torch.zeros(V, dtype=torch.float64)
            p[u], q[y] = 1.0, 1.0
            c_uy = cost.block([u], [y]).item()
            assert emd_exact(p, q, cost).value == pytest.approx(c_uy, abs=LP_TOL)
            assert emd_lower_bound(p, q, cost).item() == pytest.approx(c_uy, abs=TOL)
            assert emd_to_token(p, torch.tensor(y), cost).item() == pytest.approx(c_uy, abs=TOL)


def test_gap_to_one_hot_is_half_one_minus_centroid_norm():
    cost = make_cost(5)
    g = torch.Generator().manual_seed(5)
    p = torch.softmax(3 * torch.randn(20, V, generator=g, dtype=torch.float64), -1)
    y = torch.randint(V, (20,), generator=g)
    gap = emd_to_token(p, y, cost) - emd_lower_bound(p, y, cost)
    mu = cost.centroid(p)
    assert torch.allclose(gap, 0.5 * (1 - (mu * mu).sum(-1)), atol=TOL)
    # token-id q and one-hot distribution q give the same bound
    onehot = torch.nn.functional.one_hot(y, V).double()
    assert torch.allclose(emd_lower_bound(p, y, cost), emd_lower_bound(p, onehot, cost), atol=TOL)


def test_two_token_vocabulary_closed_form():
    # With two tokens, all excess mass moves across the single off-diagonal cost.
    cost = make_cost(6, v=2, d=3)
    c01 = cost.block([0], [1]).item()
    for a, b in [(0.1, 0.9), (0.5, 0.5), (1.0, 0.0), (0.3, 0.7)]:
        p = torch.tensor([a, 1 - a], dtype=torch.float64)
        q = torch.tensor([b, 1 - b], dtype=torch.float64)
        assert emd_exact(p, q, cost).value == pytest.approx(abs(a - b) * c01, abs=LP_TOL)


def test_identical_distributions_have_zero_distance():
    cost = make_cost(7)
    p = torch.softmax(torch.randn(V, dtype=torch.float64), 0)
    assert emd_exact(p, p, cost).value == pytest.approx(0.0, abs=LP_TOL)
    assert emd_lower_bound(p, p, cost).item() == pytest.approx(0.0, abs=TOL)


def test_gradients_match_finite_differences():
    cost = make_cost(8)
    g = torch.Generator().manual_seed(8)
    logits = torch.randn(4, V, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randint(V, (4,), generator=g)
    q = torch.softmax(torch.randn(4, V, generator=g, dtype=torch.float64), -1)
    assert torch.autograd.gradcheck(lambda z: emd_to_token(z.softmax(-1), y, cost), (logits,))
    assert torch.autograd.gradcheck(lambda z: emd_lower_bound(z.softmax(-1), q, cost), (logits,))
    # the closed-form gradient d EMD / d logit_u = P(u) (c(u, y) - EMD)
    logits.grad = None
    p = logits.softmax(-1)
    emd = emd_to_token(p, y, cost)
    emd.sum().backward()
    expected = torch.stack([p[i] * (cost.column(y[i]) - emd[i]) for i in range(4)]).detach()
    assert torch.isfinite(logits.grad).all()
    assert torch.allclose(logits.grad, expected, atol=TOL)


def test_one_optimiser_step_on_negative_emd_increases_emd():
    cost = make_cost(9)
    g = torch.Generator().manual_seed(9)
    logits = torch.randn(8, V, generator=g, requires_grad=True)
    y = torch.randint(V, (8,), generator=g)
    opt = torch.optim.SGD([logits], lr=1.0)
    before = emd_to_token(logits.softmax(-1), y, cost).detach()
    (-emd_to_token(logits.softmax(-1), y, cost).mean()).backward()
    opt.step()
    after = emd_to_token(logits.softmax(-1), y, cost).detach()
    assert after.mean() > before.mean()
    assert (after >= before - 1e-6).all()


def test_top_k_truncation_is_reported():
    cost = make_cost(10)
    g = torch.Generator().manual_seed(10)
    p = torch.softmax(torch.randn(V, generator=g, dtype=torch.float64), 0)
    q = torch.softmax(torch.randn(V, generator=g, dtype=torch.float64), 0)
    full = emd_exact(p, q, cost)
    cut = emd_exact(p, q, cost, top_k=5)
    assert not full.truncated and cut.truncated
    assert len(cut.row_ids) == 5 and len(cut.col_ids) == 5
    assert 0 < cut.mass_kept_p < 1 and cut.plan.sum() == pytest.approx(1.0)
    assert emd_exact(p, q, cost, top_k=V).value == pytest.approx(full.value, abs=LP_TOL)


def test_bad_inputs_give_clear_errors():
    cost = make_cost(12)
    p = torch.full((V,), 1.0 / V, dtype=torch.float64)
    with pytest.raises(SemsafeError, match="one token id per distribution"):
        emd_to_token(p.expand(3, V), torch.tensor([1, 2]), cost)
    with pytest.raises(SemsafeError, match="sums to"):
        emd_exact(p * 2, p, cost)
    with pytest.raises(SemsafeError, match="negative"):
        emd_exact(p - 1.0 / V * (torch.arange(V) == 0), p, cost)
    with pytest.raises(SemsafeError, match="vocabulary"):
        emd_exact(p[:10] * 4, p, cost)
    with pytest.raises(SemsafeError, match="same shape"):
        emd_lower_bound(p, p[:10], cost)


def test_huge_lp_asks_for_top_k():
    big = SemanticCost.from_embeddings(torch.randn(6000, 4))
    p = torch.full((6000,), 1.0 / 6000)
    with pytest.raises(SemsafeError, match="top_k"):
        emd_exact(p, p, big)
    assert emd_exact(p, p, big, top_k=50).value >= 0

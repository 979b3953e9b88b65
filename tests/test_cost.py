"""SemanticCost against an explicit cosine computation, and its memory bound."""

import subprocess
import sys
import textwrap

import pytest
import torch

from semsafe.cost import SemanticCost
from semsafe.errors import SemsafeError
from tolerance import sum_tolerance

# costs are dot products of d = 12 unit vectors, float64; the LP below sums over 60 x 2 cells
TOL = sum_tolerance(torch.float64, 12, magnitude=2.0)
LP_TOL = sum_tolerance(torch.float64, 60 * 60, magnitude=2.0)


def explicit(E):
    En = E / E.norm(dim=1, keepdim=True)
    return 1 - En @ En.T


@pytest.fixture
def emb():
    return torch.randn(60, 12, generator=torch.Generator().manual_seed(0), dtype=torch.float64)


def test_queries_match_explicit_matrix(emb):
    cost = SemanticCost.from_embeddings(emb)
    C = explicit(emb)
    assert torch.allclose(cost.column(17), C[:, 17], atol=TOL)
    ids = [3, 9, 40, 3]
    assert torch.allclose(cost.submatrix(ids), C[ids][:, ids], atol=TOL)
    assert torch.allclose(cost.block([1, 2], [5, 6, 7]), C[[1, 2]][:, [5, 6, 7]], atol=TOL)
    sub = cost.submatrix(range(60))
    assert torch.allclose(sub, sub.T) and (sub.diagonal().abs() < TOL).all()
    assert sub.min() >= 0 and sub.max() <= 2
    # c(u, v) = ½ ||ê_u - ê_v||², the identity the lower bound rests on
    diff = cost.unit[:, None, :] - cost.unit[None, :, :]
    assert torch.allclose(sub, 0.5 * (diff ** 2).sum(-1), atol=TOL)


def test_nearest_matches_brute_force(emb):
    cost = SemanticCost.from_embeddings(emb)
    C = explicit(emb)
    ids = torch.tensor([0, 5, 59])
    nb = cost.nearest(ids, k=4, chunk=2)  # chunk smaller than the query: exercises chunking
    for row, i in enumerate(ids):
        order = [j for j in C[i].argsort().tolist() if j != i][:4]
        assert nb.ids[row].tolist() == order
        assert torch.allclose(nb.costs[row], C[i, order], atol=TOL)
    with_self = cost.nearest([5], k=1, include_self=True)
    assert with_self.ids.item() == 5 and with_self.costs.item() == pytest.approx(0, abs=TOL)


def test_from_model_input_and_output(tiny):
    model, _ = tiny
    a = SemanticCost.from_model(model)
    b = SemanticCost.from_model(model, which="output")
    assert a.vocab_size == model.config.vocab_size and a.dim == model.config.hidden_size
    assert torch.equal(a.unit, b.unit)  # tied embeddings
    with pytest.raises(SemsafeError, match="'input' or 'output'"):
        SemanticCost.from_model(model, which="middle")


def test_embedded_model_cost_is_semantic(embedded):
    model, tok = embedded
    cost = SemanticCost.from_model(model)
    assert cost.vocab_size == 49152 and cost.dim == 576
    cat, dog, tax = (tok(w, add_special_tokens=False)["input_ids"][0] for w in [" cat", " dog", " tax"])
    assert cost.block([cat], [dog]).item() < cost.block([cat], [tax]).item()


def test_zero_embedding_rows_cost_one_and_keep_the_bound_valid(emb):
    from semsafe.emd import emd_exact, emd_lower_bound

    padded = emb.clone()
    padded[4] = 0  # e.g. a padding row
    cost = SemanticCost.from_embeddings(padded)
    assert torch.allclose(cost.column(4), torch.ones(60, dtype=torch.float64))
    g = torch.Generator().manual_seed(2)
    for _ in range(10):
        p = torch.softmax(3 * torch.randn(60, generator=g, dtype=torch.float64), 0)
        q = torch.zeros(60, dtype=torch.float64)
        q[4] = 0.7
        q[9] = 0.3
        assert emd_lower_bound(p, q, cost).item() <= emd_exact(p, q, cost).value + LP_TOL


def test_bad_embeddings_and_ids(emb):
    bad = emb.clone()
    bad[4] = float("nan")
    with pytest.raises(SemsafeError, match="NaN"):
        SemanticCost.from_embeddings(bad)
    cost = SemanticCost.from_embeddings(emb)
    with pytest.raises(SemsafeError, match="token ids must lie"):
        cost.column(60)
    with pytest.raises(SemsafeError, match="share a tokenizer"):
        cost.centroid(torch.ones(3, 59))


def test_peak_memory_stays_bounded_at_full_vocabulary():
    """At |V| = 49152 the full float32 matrix is 9.7 GB; every query must stay far below."""
    script = textwrap.dedent("""
        import torch
        from semsafe.cost import SemanticCost
        from semsafe.emd import emd_to_token, emd_lower_bound
        from semsafe.measure import PeakRSS
        torch.manual_seed(0)
        cost = SemanticCost.from_embeddings(torch.randn(49152, 576))
        p = torch.softmax(torch.randn(64, 49152), -1)
        y = torch.randint(49152, (64,))
        with PeakRSS() as peak:
            cost.column(5); cost.submatrix(list(range(500))); cost.nearest(list(range(300)), k=10)
            emd_to_token(p, y, cost); emd_lower_bound(p, p.flip(0), cost)
        with PeakRSS() as control:  # the check must see a real allocation: 2 GB, touched
            big = torch.ones(500_000_000)
        print(peak.extra_bytes, control.extra_bytes)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    extra, control = map(int, out.stdout.strip().splitlines()[-1].split())
    assert control > 1_900_000_000, "the memory probe failed to see a 2 GB allocation"
    # chunk x |V| similarities (256 x 49152 x 4 B = 50 MB) dominate; 1 GB leaves wide slack
    # while a full matrix (9.7 GB) or even a 10% slice of it would fail.
    assert extra < 1_000_000_000, f"queries grew peak memory by {extra / 1e9:.2f} GB"

import itertools

import pytest
import torch

from wsas import losses
from wsas.captions import slots


@pytest.fixture
def mags():
    torch.manual_seed(0)
    sources = torch.rand(3, 2, 17, 11)  # (B, K, F, T)
    return sources, sources.sum(1)


def test_perfect_mask_gives_zero_reconstruction_loss(mags):
    sources, mix = mags
    masks = sources / mix.unsqueeze(1)
    assert losses.reconstruction_loss(masks, mix, sources) == pytest.approx(0, abs=1e-6)
    assert losses.reconstruction_loss(torch.full_like(masks, 0.5), mix, sources) > 0.01


def test_spectral_weight_is_clamped():
    w = losses.spectral_weight(torch.tensor([0.0, 1.0, 1e9]))
    assert w[0] == pytest.approx(1e-3) and w[1] == pytest.approx(0.6931, abs=1e-4) and w[2] == 10


def pairwise_l1(est, tgt):
    return (est - tgt).abs().mean(dim=(-2, -1))


@pytest.mark.parametrize("n", [2, 3, 4])
def test_pit_is_permutation_invariant(n):
    torch.manual_seed(n)
    targets = torch.rand(4, n, 8, 5)
    estimates = targets + 0.01 * torch.randn_like(targets)
    base, _ = losses.pit(estimates, targets, pairwise_l1)
    for perm in itertools.permutations(range(n)):
        permuted, best = losses.pit(estimates[:, list(perm)], targets, pairwise_l1)
        assert permuted == pytest.approx(base.item(), abs=1e-6)
        assert torch.equal(best[0], torch.tensor(perm).argsort())


@pytest.mark.parametrize("m", [2, 3, 4])
def test_mixit_finds_the_partition_and_is_permutation_invariant(m):
    torch.manual_seed(m)
    sources = torch.rand(2, m, 6, 5)
    # the first source forms mixture 0, the rest mixture 1
    mixtures = torch.stack([sources[:, :1].sum(1), sources[:, 1:].sum(1)], dim=1)
    loss, assign = losses.mixit(sources, mixtures, pairwise_l1)
    assert loss == pytest.approx(0, abs=1e-6)
    assert assign[0].tolist() == [0] + [1] * (m - 1)
    shuffled, _ = losses.mixit(sources.flip(1), mixtures, pairwise_l1)
    assert shuffled == pytest.approx(0, abs=1e-6)


def test_alpha_weighted_clause_sums_equal_the_mixture():
    clauses, alpha = slots(["a dog barks", "rain falls"], 5)
    source = {"a dog barks": torch.rand(10), "rain falls": torch.rand(10)}
    combined = sum(a * source[c] for c, a in zip(clauses, alpha))
    assert torch.allclose(combined, source["a dog barks"] + source["rain falls"])


def test_consistency_loss_zero_when_clauses_add_up(mags):
    sources, mix = mags  # one mixture of two sources, padded to 3 slots
    masks = sources / mix.unsqueeze(1)
    clause_masks = torch.stack([masks[:, 0], masks[:, 1], masks[:, 0]], dim=1).unsqueeze(
        1
    )  # (B, 1, 3, F, T)
    alpha = torch.tensor([0.5, 1.0, 0.5]).expand(3, 1, 3)
    assert losses.consistency_loss(clause_masks, alpha, mix, mix.unsqueeze(1)) == pytest.approx(
        0, abs=1e-6
    )


def test_similarity_loss_falls_when_estimates_match_their_clauses():
    torch.manual_seed(0)
    text = torch.nn.functional.normalize(torch.randn(2, 3, 16), dim=-1)
    matched = losses.clap_similarity_loss(text, text, torch.tensor(20.0))
    swapped = losses.clap_similarity_loss(text.roll(1, dims=1), text, torch.tensor(20.0))
    assert matched < swapped


def test_similarity_loss_ignores_duplicate_slots():
    text = torch.nn.functional.normalize(torch.randn(1, 2, 8), dim=-1)
    dup = torch.cat([text, text[:, :1]], dim=1)  # slot 2 repeats slot 0
    same = torch.tensor([[[True, False, True], [False, True, False], [True, False, True]]])
    loss = losses.clap_similarity_loss(dup, dup, torch.tensor(50.0), same)
    assert torch.isfinite(loss) and loss < 0.1


def test_weak_loss_combines_its_parts(mags):
    sources, mix = mags
    masks = sources / mix.unsqueeze(1)
    emb = torch.nn.functional.normalize(torch.randn(3, 2, 8), dim=-1)
    parts = losses.weak_loss(
        masks, masks.unsqueeze(2), torch.ones(3, 2, 1), mix, sources, emb, emb, torch.tensor(10.0)
    )
    assert parts["mixture"] == pytest.approx(0, abs=1e-6) and parts["consistency"] == pytest.approx(
        0, abs=1e-6
    )
    assert parts["total"] == pytest.approx(0.5 * parts["similarity"].item(), rel=1e-5)
    ablated = losses.weak_loss(  # without the CLAP term: reconstruction only, no audio heard
        masks, masks.unsqueeze(2), torch.ones(3, 2, 1), mix, sources, None, emb, 10.0, sim_weight=0
    )
    assert "similarity" not in ablated and ablated["total"] == pytest.approx(0, abs=1e-5)
    with pytest.raises(ValueError, match="needs audio embeddings"):
        losses.weak_loss(
            masks, masks.unsqueeze(2), torch.ones(3, 2, 1), mix, sources, None, emb, 10.0
        )


def test_si_sdr():
    ref = torch.randn(2, 1000)
    assert (losses.si_sdr(ref * 3, ref) > 60).all()
    assert (losses.si_sdr(ref + torch.randn(2, 1000), ref).abs() < 3).all()


def test_snr_is_capped_costs_level_errors_and_is_zero_for_silence():
    ref = torch.randn(3, 1000)
    assert torch.allclose(losses.snr(ref, ref), torch.full((3,), 30.0), atol=1e-3)
    assert torch.allclose(losses.snr(torch.zeros_like(ref), ref), torch.zeros(3), atol=1e-2)
    half = losses.snr(0.5 * ref, ref)  # the error is half the reference: ~6 dB
    assert torch.allclose(half, torch.full((3,), 6.0), atol=0.1)
    assert (losses.si_sdr(0.5 * ref, ref) > 60).all()  # which SI-SDR forgives

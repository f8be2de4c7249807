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


def test_floor_shortfall_is_the_dB_below_the_floor_and_counts_a_padded_clause_once():
    mixture = torch.rand(2, 2, 17, 11) + 0.1  # (B, G, F, T)
    loud = mixture.unsqueeze(2).expand(2, 2, 3, 17, 11)  # every clause as loud as its mixture
    ones = torch.ones(2, 2, 3)
    assert losses.floor_shortfall(loud, ones, mixture, -12.0) == 0
    quiet = loud * 10 ** (-20 / 20)  # -20 dB: 8 dB below a -12 dB floor
    assert losses.floor_shortfall(quiet, ones, mixture, -12.0).item() == pytest.approx(8, abs=1e-3)
    one_loud = torch.cat([loud[:, :, :1], quiet[:, :, 1:]], dim=2)  # 1 of 3 clauses audible
    short = losses.floor_shortfall(one_loud, ones, mixture, -12.0).item()
    assert short == pytest.approx(16 / 3, rel=1e-4)
    # the quiet clause padded into two slots (alpha 1/2 each): 1 of 2 clauses audible
    padded = torch.tensor([1.0, 0.5, 0.5]).expand(2, 2, 3)
    short = losses.floor_shortfall(one_loud, padded, mixture, -12.0).item()
    assert short == pytest.approx(4, rel=1e-4)
    near_silent = torch.full_like(loud, 1e-4, requires_grad=True)  # finite; its gradient lifts it
    loss = losses.floor_shortfall(near_silent, ones, mixture, -12.0)
    loss.backward()
    assert torch.isfinite(loss) and (near_silent.grad < 0).all()


def test_energy_balance_is_zero_when_clause_energies_add_up_to_the_mixtures():
    torch.manual_seed(0)
    mixture = torch.rand(2, 2, 17, 11) + 0.1  # (B, G, F, T)
    split = torch.rand(2, 2, 1, 17, 11).round()  # disjoint binary masks: energies add up
    clauses = torch.cat([split, 1 - split], dim=2) * mixture.unsqueeze(2)
    halves = torch.ones(2, 2, 2)
    assert losses.energy_balance(clauses, halves, mixture).item() == pytest.approx(0, abs=1e-5)
    shared = 0.5 * mixture.unsqueeze(2).expand(2, 2, 2, 17, 11)  # both hold half of every bin
    assert losses.energy_balance(shared, halves, mixture).item() == pytest.approx(3.01, abs=0.01)
    # a clause padded into two slots (alpha 1/2 each) counts once
    padded = torch.cat([clauses[:, :, :1], clauses[:, :, :1], clauses[:, :, 1:]], dim=2)
    alpha = torch.tensor([0.5, 0.5, 1.0]).expand(2, 2, 3)
    assert losses.energy_balance(padded, alpha, mixture).item() == pytest.approx(0, abs=1e-5)


def test_weak_loss_adds_a_clause_level_target_only_when_asked(mags):
    sources, mix = mags
    masks = 0.01 * sources / mix.unsqueeze(1)  # clause estimates 40 dB below their mixtures
    emb = torch.nn.functional.normalize(torch.randn(3, 2, 8), dim=-1)
    args = (masks, masks.unsqueeze(2), torch.ones(3, 2, 1), mix, sources, emb, emb, 10.0)
    plain = losses.weak_loss(*args)
    floor = losses.weak_loss(*args, clause_level="floor", level_weight=0.5, floor_db=-12.0)
    energy = losses.weak_loss(*args, clause_level="energy")
    assert "floor" not in plain and "energy" not in plain
    assert floor["floor"].item() == pytest.approx(28, abs=1e-3)
    assert floor["total"].item() == pytest.approx(plain["total"].item() + 14, rel=1e-5)
    assert energy["energy"].item() == pytest.approx(40, abs=1e-3)
    assert list(energy)[-1] == "total"


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

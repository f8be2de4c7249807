import pytest
import torch

from wsas.models.separator import MaskSeparator
from wsas.models.unet import ConditionalUNet, UNetConfig


@pytest.mark.parametrize("conditioning", ["deep", "late", "cross"])
def test_masks_shape_and_range(conditioning):
    net = ConditionalUNet(
        UNetConfig(channels=4, levels=3, cond_dim=16, conditioning=conditioning)
    ).eval()
    masks = net(torch.randn(2, 37, 29), torch.randn(2, 3, 16))
    assert masks.shape == (2, 3, 37, 29)
    assert masks.min() >= 0 and masks.max() <= 1


@pytest.mark.parametrize("conditioning", ["deep", "late", "cross"])
def test_batched_queries_equal_one_pass_per_query(conditioning):
    torch.manual_seed(0)
    net = ConditionalUNet(
        UNetConfig(channels=4, levels=2, cond_dim=8, conditioning=conditioning)
    ).eval()
    for p in net.parameters():  # FiLM starts at identity: perturb it so queries matter
        p.data += 0.1 * torch.randn_like(p)
    log_mag, queries = torch.randn(2, 16, 12), torch.randn(2, 3, 8)
    together = net(log_mag, queries)
    apart = torch.cat([net(log_mag, queries[:, k : k + 1]) for k in range(3)], dim=1)
    assert torch.allclose(together, apart, atol=1e-5)
    assert not torch.allclose(together[:, 0], together[:, 1])


def test_bad_conditioning_is_rejected():
    with pytest.raises(ValueError, match="conditioning"):
        ConditionalUNet(UNetConfig(conditioning="middle"))


def test_separator_returns_one_wave_per_query():
    sep = MaskSeparator(UNetConfig(channels=4, levels=2, cond_dim=8), 8000).eval()
    out = sep(torch.randn(2, 4000), torch.randn(2, 3, 8))
    assert out.shape == (2, 3, 4000)


def test_paper_configuration_builds():
    net = ConditionalUNet(UNetConfig(n_fft=1022, hop=256, channels=32, levels=7, cond_dim=512))
    assert sum(p.numel() for p in net.parameters()) > 10_000_000


def test_decoder_block_is_a_convolution_over_the_concatenated_skip():
    from wsas.models.unet import DecoderBlock

    torch.manual_seed(0)
    block = DecoderBlock(4, 1).eval()
    up, skip = torch.randn(6, 4, 8, 8), torch.randn(2, 4, 8, 8)  # 3 queries per mixture
    joint = torch.nn.Conv2d(8, 4, 3, padding=1, bias=False)
    joint.weight.data = torch.cat([block.up_conv.weight, block.skip_conv.weight], dim=1)
    plain = block.rest(joint(torch.cat([up, skip.repeat_interleave(3, dim=0)], dim=1)))
    assert torch.allclose(block(up, block.skip_conv(skip)), plain, atol=1e-5)


def test_late_masks_weigh_the_heads_maps_per_query():
    torch.manual_seed(0)
    net = ConditionalUNet(UNetConfig(channels=4, levels=2, cond_dim=8, conditioning="late"))
    log_mag, queries = torch.randn(2, 17, 13), torch.randn(2, 3, 8)
    maps = net.head(net.decode(net.encode(log_mag), None))  # (B, late_channels, F', T')
    w = net.query_to_weights(queries)  # the weights fold into the head; the maps' sum is it
    plain = torch.einsum("bkc,bcft->bkft", w[..., :-1], maps) + w[..., -1:, None]
    masks = net(log_mag, queries)
    assert torch.allclose(masks, torch.sigmoid(plain[..., :17, :13]), atol=1e-6)
    masks.sum().backward()  # the head learns though its maps are never computed
    assert net.head.weight.grad.abs().sum() > 0 and net.head.bias.grad.abs().sum() > 0


@pytest.mark.parametrize("conditioning", ["deep", "late"])
def test_masks_do_not_depend_on_the_input_level(conditioning):
    torch.manual_seed(0)
    net = ConditionalUNet(UNetConfig(channels=4, levels=2, cond_dim=8, conditioning=conditioning))
    log_mag, queries = torch.randn(2, 17, 13), torch.randn(2, 3, 8)  # odd sizes: padded
    net.eval()
    assert torch.allclose(net(log_mag, queries), net(log_mag + 3.0, queries), atol=1e-5)
    other = log_mag.flip(-1)  # the same values elsewhere in time: other masks
    assert not torch.allclose(net(log_mag, queries), net(other, queries), atol=1e-3)


def test_grid_samples_fill_the_unets_grid_in_time():
    from wsas.audio import stft

    tiny = UNetConfig(n_fft=510, hop=128, levels=4)
    assert tiny.grid_samples(16384) == 16383  # 129 frames (padded to 144) -> 128
    assert stft(torch.zeros(16383), 510, 128).shape[-1] == 128
    assert tiny.grid_samples(16383) == 16383  # already on the grid
    assert tiny.grid_samples(16300) == 16300
    assert tiny.grid_samples(1000) == 1000  # shorter than one grid: left whole
    paper = UNetConfig(n_fft=1022, hop=256, levels=7)
    assert paper.grid_samples(131070) == 131070  # 512 frames already
    small = UNetConfig(hop=4, levels=2)  # frames a multiple of 4: 4 frames up to 15 samples
    for samples in range(12, 60):
        got = small.grid_samples(samples)
        assert got <= samples and (1 + got // 4) % 4 == 0
        assert all((1 + longer // 4) % 4 for longer in range(got + 1, samples + 1))


def _cross_net(seed: int = 0, **config) -> ConditionalUNet:
    """A cross-attention U-Net with its weights perturbed (the attention's output projection
    starts at zero, which would hide the queries)."""
    torch.manual_seed(seed)
    config = {"channels": 4, "levels": 3, "cond_dim": 8, "conditioning": "cross", **config}
    net = ConditionalUNet(UNetConfig(**config)).eval()
    for p in net.parameters():
        p.data += 0.1 * torch.randn_like(p)
    return net


def _token_queries(b: int, k: int, length: int, dim: int, valid: list[int]) -> torch.Tensor:
    """Cross queries ``(b, k, length, dim + 1)``: random states, ``valid[j]`` real tokens in
    query ``j`` and the rest padding (random states too, flagged 0)."""
    states = torch.randn(b, k, length, dim)
    flags = (torch.arange(length)[None, :] < torch.tensor(valid)[:, None]).float()
    return torch.cat([states, flags.expand(b, k, length)[..., None]], dim=-1)


def test_cross_attention_sees_every_real_token_and_no_padding():
    net = _cross_net()
    log_mag = torch.randn(2, 37, 29)
    queries = _token_queries(2, 2, 6, 8, valid=[4, 6])
    masks = net(log_mag, queries)
    assert masks.shape == (2, 2, 37, 29)
    for token in range(4):  # every real token of query 0 moves its mask, not query 1's
        changed = queries.clone()
        changed[:, 0, token, :-1] += torch.randn(2, 8)
        out = net(log_mag, changed)
        assert (out[:, 0] - masks[:, 0]).abs().max() > 1e-4
        assert torch.equal(out[:, 1], masks[:, 1])
    for token in (4, 5):  # padding of query 0: any state there changes nothing
        changed = queries.clone()
        changed[:, 0, token, :-1] = 100 * torch.randn(2, 8)
        assert torch.equal(net(log_mag, changed), masks)


def test_cross_padding_to_any_length_gives_the_same_masks():
    net = _cross_net()
    log_mag, short = torch.randn(1, 16, 24), _token_queries(1, 2, 3, 8, valid=[3, 2])
    padded = torch.nn.functional.pad(short, (0, 0, 0, 5))  # five more padding tokens
    assert torch.allclose(net(log_mag, short), net(log_mag, padded), atol=1e-6)


def test_a_pooled_query_is_a_one_token_cross_query():
    net = _cross_net()
    log_mag, pooled = torch.randn(2, 16, 24), torch.randn(2, 3, 8)
    one_token = torch.cat([pooled, torch.ones(2, 3, 1)], dim=-1)[:, :, None]
    assert torch.equal(net(log_mag, pooled), net(log_mag, one_token))


def test_cross_attends_at_the_inner_levels_only():
    net = ConditionalUNet(UNetConfig(channels=4, levels=3, cond_dim=8, conditioning="cross"))
    widths = [block.attn.embed_dim for block in net.cross]
    assert widths == [32, 16]  # the bottleneck and the coarsest decoder level (attn_levels 2)
    assert net.cross[0].attn.kdim == 8  # keys and values: the token-state width
    with pytest.raises(ValueError, match="heads"):
        ConditionalUNet(UNetConfig(channels=4, levels=3, conditioning="cross", heads=3))


@pytest.mark.parametrize("conditioning", ["deep", "cross"])
def test_the_encoder_runs_once_per_mixture_whatever_the_queries(conditioning):
    net = ConditionalUNet(
        UNetConfig(channels=4, levels=3, cond_dim=8, conditioning=conditioning)
    ).eval()
    seen = []
    net.down[0].register_forward_hook(lambda module, args, out: seen.append(args[0].shape[0]))
    net.bottleneck.register_forward_hook(lambda module, args, out: seen.append(args[0].shape[0]))
    queries = (
        _token_queries(2, 5, 4, 8, [4] * 5) if conditioning == "cross" else torch.randn(2, 5, 8)
    )
    net(torch.randn(2, 16, 24), queries)
    assert seen == [2, 2]  # two mixtures in, five queries each


# the paper's setup (Mahmud et al., ICLR 2024, Sec. 4 and App. C), in one place
PAPER = {
    "sample_rate": 16_000,
    "clip_samples": 131_070,
    "n_fft": 1022,
    "hop": 256,
    "downsamplings": 7,
    "base_channels": 32,
    "conditioning": "cross",
    "heads": 8,
    "batch_size": 16,
    "optimizer": "Adam",
    "lr": 1e-4,
    "clap": "laion",
    "clap_sample_rate": 48_000,
}


def test_the_paper_preset_is_the_papers_setup(smoke_corpus, tmp_path):
    from wsas.clap import clap_class
    from wsas.clap.tiny import TinyClap
    from wsas.data.datasets import load_embedded
    from wsas.presets import get_preset
    from wsas.train import Trainer

    p = get_preset("paper")
    unet = p.unet()
    ours = {
        "sample_rate": p.sr,
        "clip_samples": p.clip_samples,
        "n_fft": unet.n_fft,
        "hop": unet.hop,
        "downsamplings": unet.levels,
        "base_channels": unet.channels,
        "conditioning": unet.conditioning,
        "heads": unet.heads,
        "batch_size": p.train_config("weak").batch_size,
        "lr": p.train_config("weak").lr,
        "clap": p.clap,
        "clap_sample_rate": clap_class(p.clap).sample_rate,
    }
    config = p.train_config("supervised", steps=1, unet={"channels": 4, "levels": 2})
    train = load_embedded(smoke_corpus, "train")
    trainer = Trainer(config, TinyClap({"sample_rate": train.sr}).freeze(), tmp_path, train)
    ours["optimizer"] = type(trainer.opt).__name__
    assert ours == PAPER

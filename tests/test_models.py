import pytest
import torch

from wsas.models.separator import MaskSeparator
from wsas.models.unet import ConditionalUNet, UNetConfig


@pytest.mark.parametrize("conditioning", ["deep", "late"])
def test_masks_shape_and_range(conditioning):
    net = ConditionalUNet(
        UNetConfig(channels=4, levels=3, cond_dim=16, conditioning=conditioning)
    ).eval()
    masks = net(torch.randn(2, 37, 29), torch.randn(2, 3, 16))
    assert masks.shape == (2, 3, 37, 29)
    assert masks.min() >= 0 and masks.max() <= 1


@pytest.mark.parametrize("conditioning", ["deep", "late"])
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

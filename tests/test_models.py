"""Models against the DCGAN paper's rules and against a reference 64x64 DCGAN written out layer by layer."""

import pytest
import torch
from torch import nn

from dcgan_utils.engine.device import seed_everything
from dcgan_utils.engine.losses import discriminator_loss, generator_loss
from dcgan_utils.engine.config import SIZES
from dcgan_utils.engine.models import Discriminator, Generator, count_parameters, init_weights

CASES = [(size, channels) for size in SIZES for channels in (1, 3)]


def reference_dcgan_64(nz=100, ngf=64, ndf=64, nc=3):
    """The 64x64 DCGAN as PyTorch's examples/dcgan lays it out (4x4 kernels, width 64; the paper's own code: 5x5, 128)."""
    g = nn.Sequential(
        nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 8), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),
        nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh(),
    )
    d = nn.Sequential(
        nn.Conv2d(nc, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True),
        nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 2), nn.LeakyReLU(0.2, True),
        nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 4), nn.LeakyReLU(0.2, True),
        nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 8), nn.LeakyReLU(0.2, True),
        nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False),  # the reference ends in a Sigmoid; ours returns the logit
    )
    return g, d


def layout(module):
    """(layer type, parameter shapes, stride, padding, slope) for every leaf layer."""
    rows = []
    for m in module.modules():
        if len(list(m.children())) == 0:
            shapes = tuple(tuple(p.shape) for p in m.parameters())
            rows.append((type(m).__name__, shapes, getattr(m, "stride", None), getattr(m, "padding", None),
                         getattr(m, "negative_slope", None)))
    return rows


def test_64x64_models_match_the_reference_architecture():
    ref_g, ref_d = reference_dcgan_64()
    g, d = Generator(64, 3, 100, 64), Discriminator(64, 3, 64)
    assert layout(g) == layout(ref_g)
    assert layout(d) == layout(ref_d)
    assert count_parameters(g) == count_parameters(ref_g) and count_parameters(d) == count_parameters(ref_d)


@pytest.mark.parametrize("size, channels", CASES)
def test_shapes_and_output_range(size, channels):
    g, d = Generator(size, channels, latent_dim=16, width=8), Discriminator(size, channels, width=8)
    images = g(torch.randn(5, 16))
    assert images.shape == (5, channels, size, size)
    assert images.min() >= -1 and images.max() <= 1
    assert g(torch.randn(5, 16, 1, 1)).shape == images.shape  # (N, latent, 1, 1) noise works too
    logits = d(images)
    assert logits.shape == (5,)


@pytest.mark.parametrize("size, channels", CASES)
def test_paper_rules(size, channels):
    g, d = Generator(size, channels, width=8), Discriminator(size, channels, width=8)
    for model in (g, d):
        kinds = {type(m) for m in model.modules()}
        assert not kinds & {nn.Linear, nn.MaxPool2d, nn.AvgPool2d}, "no pooling, no fully-connected layers"
    g_layers, d_layers = list(g.net), list(d.net)
    # G: transposed convs only, ReLU inside, Tanh at the end, no BatchNorm on the output layer
    assert all(not isinstance(m, nn.Conv2d) for m in g_layers)
    assert isinstance(g_layers[-1], nn.Tanh) and isinstance(g_layers[-2], nn.ConvTranspose2d)
    assert all(not isinstance(m, nn.LeakyReLU) for m in g_layers)
    # D: strided convs, LeakyReLU(0.2), no BatchNorm right after the input layer, a conv (not a sigmoid) last
    assert all(not isinstance(m, nn.ConvTranspose2d) for m in d_layers)
    assert isinstance(d_layers[0], nn.Conv2d) and isinstance(d_layers[1], nn.LeakyReLU)
    assert all(m.negative_slope == 0.2 for m in d_layers if isinstance(m, nn.LeakyReLU))
    assert isinstance(d_layers[-1], nn.Conv2d) and not any(isinstance(m, (nn.Sigmoid, nn.ReLU)) for m in d_layers)
    # every hidden conv is followed by BatchNorm: count them
    assert sum(isinstance(m, nn.BatchNorm2d) for m in g_layers) == sum(isinstance(m, nn.ConvTranspose2d) for m in g_layers) - 1
    assert sum(isinstance(m, nn.BatchNorm2d) for m in d_layers) == sum(isinstance(m, nn.Conv2d) for m in d_layers) - 2


@pytest.mark.parametrize("size", SIZES)
def test_generator_doubles_the_side_at_every_transposed_conv(size):
    g = Generator(size, 1, width=4)
    sides = []
    for m in g.net:
        if isinstance(m, nn.ConvTranspose2d):
            m.register_forward_hook(lambda mod, inp, out: sides.append(out.shape[-1]))
    g(torch.randn(2, 100))
    assert sides[-1] == size
    assert all(b == 2 * a for a, b in zip(sides, sides[1:])), sides


def test_initialisation_statistics():
    seed_everything(0)
    g, d = Generator(64, 3), Discriminator(64, 3)
    convs = [m.weight for model in (g, d) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    norms = [m for model in (g, d) for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    w = torch.cat([p.flatten() for p in convs])
    assert abs(w.mean()) < 1e-3 and abs(w.std() - 0.02) < 1e-3
    scale = torch.cat([m.weight for m in norms])
    assert abs(scale.mean() - 1) < 5e-3 and abs(scale.std() - 0.02) < 5e-3
    assert all(torch.all(m.bias == 0) for m in norms)


def test_init_weights_resets_a_layer_with_bias():
    conv = nn.Conv2d(3, 8, 3)  # PyTorch's default init: uniform, with a non-zero bias
    init_weights(conv)
    assert torch.all(conv.bias == 0) and abs(conv.weight.std() - 0.02) < 0.01


def test_seeded_construction_and_forward_are_deterministic():
    def run():
        seed_everything(7)
        g = Generator(32, 3, width=8)
        return g(torch.randn(4, 100))

    torch.testing.assert_close(run(), run(), rtol=0, atol=0)


def test_one_training_step_reaches_every_parameter():
    g, d = Generator(28, 1, width=8), Discriminator(28, 1, width=8)
    real, fake = torch.rand(8, 1, 28, 28) * 2 - 1, g(torch.randn(8, 100))
    discriminator_loss(d(real), d(fake.detach())).backward()
    generator_loss(d(fake)).backward()
    for name, p in list(g.named_parameters()) + list(d.named_parameters()):
        assert p.grad is not None and p.grad.abs().sum() > 0, f"no gradient reaches {name}"


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: Generator(48, 3), "image_size must be one of"),
        (lambda: Discriminator(128, 3), "image_size must be one of"),
        (lambda: Generator(64, 2), "channels must be one of"),
        (lambda: Discriminator(32, 4), "channels must be one of"),
        (lambda: Generator(64, 3, latent_dim=0), "latent_dim must be a positive integer"),
        (lambda: Discriminator(64, 3, width=0), "width must be a positive integer"),
    ],
)
def test_unsupported_settings_are_clear_errors(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_generator_refuses_an_image_instead_of_noise():
    with pytest.raises(ValueError, match="not an image"):
        Generator(64, 3)(torch.randn(2, 3, 64, 64))


def test_discriminator_refuses_the_wrong_image_shape():
    with pytest.raises(ValueError, match=r"expects images of shape \(N, 1, 28, 28\)"):
        Discriminator(28, 1)(torch.randn(2, 1, 32, 32))


# ---- conditional DCGAN ----------------------------------------------------------------------------------------

def test_conditional_models_read_the_label_as_extra_inputs():
    G, D = Generator(28, 1, 16, 8, num_classes=10), Discriminator(28, 1, 8, num_classes=10)
    assert G.net[0].in_channels == 16 + 10 and D.net[0].in_channels == 1 + 10
    z = torch.randn(4, 16)
    images = G.eval()(z, torch.tensor([0, 1, 2, 3]))
    assert images.shape == (4, 1, 28, 28)
    assert D(images, torch.tensor([0, 1, 2, 3])).shape == (4,)


def test_conditional_generator_equals_an_unconditional_one_fed_the_one_hot_label():
    seed_everything(0)
    G = Generator(28, 1, 16, 8, num_classes=10).eval()
    plain = Generator(28, 1, 26, 8).eval()  # latent 16 + 10: the same layers, the label concatenated by hand
    plain.load_state_dict(G.state_dict())
    z, y = torch.randn(5, 16), torch.tensor([3, 3, 0, 9, 5])
    by_hand = torch.cat([z, nn.functional.one_hot(y, 10).float()], 1)
    assert torch.equal(G(z, y), plain(by_hand))


def test_the_label_changes_the_image_and_the_logit():
    seed_everything(0)
    G, D = Generator(28, 1, 16, 8, num_classes=10).eval(), Discriminator(28, 1, 8, num_classes=10).eval()
    z = torch.randn(1, 16).repeat(2, 1)
    images = G(z, torch.tensor([1, 7]))
    assert (images[0] - images[1]).abs().max() > 1e-4
    logits = D(images[:1].repeat(2, 1, 1, 1), torch.tensor([1, 7]))
    assert logits[0] != logits[1]


def test_discriminator_label_planes_follow_channels_last():
    seed_everything(0)
    D = Discriminator(28, 1, 8, num_classes=10).eval()
    x, y = torch.randn(3, 1, 28, 28), torch.tensor([0, 4, 9])
    fast = D.to(memory_format=torch.channels_last)(x.contiguous(memory_format=torch.channels_last), y)
    assert torch.allclose(fast, D(x, y), atol=1e-5)


@pytest.mark.parametrize("call, message", [
    (lambda G, D: G(torch.randn(2, 16)), r"conditional \(num_classes=10\): pass labels"),
    (lambda G, D: G(torch.randn(2, 16), torch.tensor([0, 10])), r"labels must lie in \[0, 10\)"),
    (lambda G, D: G(torch.randn(2, 16), torch.tensor([0.0, 1.0])), "labels must be integers of shape"),
    (lambda G, D: G(torch.randn(2, 16), torch.tensor([0, 1, 2])), r"shape \(2,\)"),
    (lambda G, D: D(torch.randn(2, 1, 28, 28)), "Discriminator is conditional"),
    (lambda G, D: Generator(28, 1, 16, 8)(torch.randn(2, 16), torch.tensor([0, 1])), "unconditional"),
    (lambda G, D: Generator(28, 1, 16, 8, num_classes=-1), "num_classes must be an integer >= 0"),
])
def test_conditional_mistakes_are_clear_errors(call, message):
    G, D = Generator(28, 1, 16, 8, num_classes=10), Discriminator(28, 1, 8, num_classes=10)
    with pytest.raises(ValueError, match=message):
        call(G, D)


def test_minibatch_std_appends_the_spread_of_each_group_of_four():
    from dcgan_utils.engine.models import MinibatchStd

    torch.manual_seed(0)
    x = torch.randn(8, 3, 2, 2)
    out = MinibatchStd()(x)
    assert out.shape == (8, 4, 2, 2) and torch.equal(out[:, :3], x)
    for i in range(8):  # Karras et al.'s grouping: image i with images i +- 2, i +- 4, ... (groups of 4 of 8)
        group = x[i % 2::2]
        expected = group.std(dim=0, unbiased=False).mean()  # per feature and position, then averaged
        torch.testing.assert_close(out[i, 3], expected.expand(2, 2), atol=1e-6, rtol=1e-5)
    three = MinibatchStd()(x[:3])  # fewer than 4 images: one group of all of them (Karras et al.'s min(4, N))
    torch.testing.assert_close(three[:, 3], x[:3].std(dim=0, unbiased=False).mean().expand(3, 2, 2), atol=1e-6,
                               rtol=1e-5)
    with pytest.raises(ValueError, match="multiple of 4"):
        MinibatchStd()(x[:6])
    alike = MinibatchStd()(x[:1].expand(8, -1, -1, -1))
    assert alike[:, 3].max() < 1e-3  # identical images: no spread (sqrt of the 1e-8 that keeps the gradient finite)


def test_minibatch_std_reaches_d_from_the_config_and_the_cli():
    from dcgan_utils.cli import build_parser
    from dcgan_utils.engine.config import TrainConfig
    from dcgan_utils.engine.models import MinibatchStd
    from dcgan_utils.engine.run_state import build_state

    state = build_state(TrainConfig(minibatch_std=True, device="cpu", g_width=8, d_width=8))
    assert any(isinstance(m, MinibatchStd) for m in state.D.modules())
    assert state.D(torch.zeros(4, 1, 28, 28)).shape == (4,)
    assert not any(isinstance(m, MinibatchStd) for m in build_state(TrainConfig(device="cpu")).D.modules())
    assert build_parser().parse_args(["train", "--out", "x", "--minibatch-std"]).minibatch_std is True
    for bad, match in ((dict(batch_size=6), "multiple of 4"), (dict(r1_penalty=1.0, d_norm="layer"), "one or the other"),
                       (dict(gradient_penalty=10.0, d_norm="layer"), "one or the other")):
        with pytest.raises(ValueError, match=match):
            TrainConfig(minibatch_std=True, **bad)
    with pytest.raises(ValueError, match="r1_penalty is a penalty per image, which BatchNorm.*set d_norm='none'"):
        TrainConfig(r1_penalty=1.0)  # the normalisation notebook 06's R1 run uses; 'layer' drew almost no digits there
    with pytest.raises(ValueError, match="gradient_penalty is a penalty per image, which BatchNorm.*set d_norm='layer'"):
        TrainConfig(gradient_penalty=10.0)

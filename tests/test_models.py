import re

import numpy as np
import pytest
import torch
from torch import nn

import reference_spade as ref
from helpers import (DATA, assert_informative, old_form, random_labels, realistic_generator, semantics_for,
                     tiny_config)
from gaugan_sdk.config import GeneratorConfig
from gaugan_sdk.labels import to_semantics
from gaugan_sdk.models import ConvEncoder, SNConv2d, SPADEGenerator, fold_for_inference, reparameterize
from gaugan_sdk.models.batchnorm import recalibrate_batchnorm
from gaugan_sdk.models.profile import count_parameters, generator_macs, is_mask_branch


# ------------------------------------------------------------------------------ the state-dict contract
def reference_keys() -> tuple[list[tuple[str, tuple]], list[tuple[str, tuple]]]:
    """(generator keys of NVlabs cityscapes, encoder keys) with shapes, from the reference key list."""
    sections: list[list[tuple[str, tuple]]] = [[], []]
    current = None
    for line in (DATA / "nvlabs_generator_keys.txt").read_text().splitlines():
        if line.startswith("# SPADEGenerator"):
            current = sections[0]
        elif line.startswith("# ConvEncoder"):
            current = sections[1]
        elif current is not None and line and not line.startswith("#"):
            key, shape, _dtype = line.split("\t")
            current.append((key, tuple(int(d) for d in re.findall(r"\d+", shape))))
    return sections[0], sections[1]


def expected_generator_keys(preset: str, use_vae: bool) -> list[tuple[str, tuple]]:
    """The cityscapes list with the documented per-preset differences applied (semantic_nc; VAE fc)."""
    keys, _ = reference_keys()
    cfg = GeneratorConfig.preset(preset, use_vae=use_vae)
    out = []
    for key, shape in keys:
        if key == "fc.weight" or key.endswith("mlp_shared.0.weight"):
            shape = (shape[0], cfg.semantic_nc, *shape[2:])
        if use_vae and key == "fc.weight":
            shape = (16 * 64 * cfg.latent_size[0] * cfg.latent_size[1], cfg.z_dim)
        if use_vae and key == "fc.bias":
            shape = (16 * 64 * cfg.latent_size[0] * cfg.latent_size[1],)
        out.append((key, shape))
    return out


def meta_state(module_cls, cfg) -> list[tuple[str, tuple]]:
    with torch.device("meta"):
        return [(k, tuple(v.shape)) for k, v in module_cls(cfg).state_dict().items()]


@pytest.mark.parametrize("preset, use_vae", [("cityscapes", False), ("ade20k", False), ("coco", False),
                                             ("cityscapes", True)])
def test_generator_keys_and_shapes_equal_the_reference(preset, use_vae):
    ours = meta_state(SPADEGenerator, GeneratorConfig.preset(preset, use_vae=use_vae))
    assert len(ours) == 234
    assert ours == expected_generator_keys(preset, use_vae)  # same names, shapes and order


def test_encoder_keys_and_shapes_equal_the_reference():
    _, encoder_keys = reference_keys()
    assert len(encoder_keys) == 22
    assert meta_state(ConvEncoder, GeneratorConfig.preset("cityscapes", use_vae=True)) == encoder_keys


@pytest.mark.parametrize("preset, use_vae, params", [
    ("cityscapes", False, 93_048_003), ("ade20k", False, 96_492_483), ("coco", False, 97_480_899),
    ("cityscapes", True, 101_136_579),
])
def test_trainable_parameter_counts(preset, use_vae, params):
    with torch.device("meta"):
        assert count_parameters(SPADEGenerator(GeneratorConfig.preset(preset, use_vae=use_vae))) == params


def test_encoder_parameters_and_generator_buffers():
    cfg = GeneratorConfig.preset("cityscapes", use_vae=True)
    with torch.device("meta"):
        assert count_parameters(ConvEncoder(cfg)) == 10_463_424
        generator = SPADEGenerator(GeneratorConfig.preset("cityscapes"))
    assert sum(b.numel() for b in generator.buffers()) == 114_066


def test_cityscapes_macs_and_mask_branch_share():
    report = generator_macs(GeneratorConfig.preset("cityscapes"))
    mask = report.total_where(is_mask_branch)
    print(f"cityscapes 256x512: {report.total / 1e9:.2f} GMAC, mask branch {mask / 1e9:.2f} "
          f"({100 * mask / report.total:.1f}%)")
    assert report.total / 1e9 == pytest.approx(281.28, abs=0.01)
    assert mask / 1e9 == pytest.approx(206.08, abs=0.01)
    assert mask / report.total == pytest.approx(0.733, abs=0.002)
    # MACs scale with the batch
    assert generator_macs(GeneratorConfig.preset("cityscapes"), batch=2).total == 2 * report.total


# ------------------------------------------------------------------------------ the reference math
@pytest.mark.parametrize("preset, overrides", [
    ("cityscapes", {}), ("ade20k", {}), ("coco", {}),
    ("cityscapes", dict(num_upsampling_layers="normal")), ("ade20k", dict(num_upsampling_layers="most")),
    ("coco", dict(param_free_norm="instance")), ("ade20k", dict(spectral_norm=False, param_free_norm="batch")),
    ("cityscapes", dict(use_vae=True)),
])
def test_generator_matches_the_functional_reference(preset, overrides):
    cfg = tiny_config(preset, **overrides)
    model = realistic_generator(cfg)
    seg = semantics_for(cfg)
    z = torch.randn(2, cfg.z_dim) if cfg.use_vae else None
    with torch.no_grad():
        ours = model(seg, z)
        theirs = ref.generator(model.state_dict(), seg, sh=cfg.latent_size[0], sw=cfg.latent_size[1],
                               num_upsampling_layers=cfg.num_upsampling_layers, norm=cfg.param_free_norm, z=z)
    assert ours.shape == (2, 3, *cfg.image_size)
    assert_informative(ours)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6)


@pytest.mark.parametrize("size", [(256, 256), (100, 80)])
def test_encoder_matches_the_functional_reference(size):
    torch.manual_seed(0)
    cfg = tiny_config("cityscapes", use_vae=True)
    encoder = ConvEncoder(cfg).eval()
    style = torch.rand(2, 3, *size) * 2 - 1
    with torch.no_grad():
        mu, logvar = encoder(style)
        ref_mu, ref_logvar = ref.encoder(encoder.state_dict(), style)
    assert mu.shape == logvar.shape == (2, cfg.z_dim)
    torch.testing.assert_close(mu, ref_mu, rtol=0, atol=1e-6)
    torch.testing.assert_close(logvar, ref_logvar, rtol=0, atol=1e-6)


def legacy_sn_conv(conv: SNConv2d) -> nn.Conv2d:
    """The same layer built with torch's legacy spectral_norm, the one NVlabs trained with."""
    legacy = nn.utils.spectral_norm(nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size,
                                              stride=conv.stride, padding=conv.padding, bias=conv.bias is not None))
    legacy.load_state_dict(conv.state_dict())
    return legacy


def test_spectral_norm_equals_torch_legacy_in_eval_and_training():
    torch.manual_seed(0)
    ours = SNConv2d(6, 5, 3, padding=1)
    legacy = legacy_sn_conv(ours)
    assert list(ours.state_dict()) == list(legacy.state_dict()) == ["bias", "weight_orig", "weight_u", "weight_v"]
    x = torch.randn(2, 6, 7, 7)
    torch.testing.assert_close(ours.eval()(x), legacy.eval()(x), rtol=0, atol=0)
    ours.train(), legacy.train()
    for _ in range(3):  # one power iteration per call, u and v updated in place
        out, out_legacy = ours(x), legacy(x)
        torch.testing.assert_close(out, out_legacy, rtol=0, atol=1e-7)
    torch.testing.assert_close(ours.weight_u, legacy.weight_u, rtol=0, atol=1e-7)
    out.square().sum().backward(), out_legacy.square().sum().backward()
    torch.testing.assert_close(ours.weight_orig.grad, legacy.weight_orig.grad, rtol=1e-5, atol=1e-6)


def test_old_spectral_norm_key_form_loads_and_reproduces_outputs():
    cfg = tiny_config("cityscapes")
    model = realistic_generator(cfg)
    old = old_form(model.state_dict())
    assert not any(k.endswith("weight_v") for k in old) and "head_0.conv_0.weight" in old
    fresh = SPADEGenerator(cfg).eval()
    fresh.load_state_dict(old)  # strict
    seg = semantics_for(cfg)
    with torch.no_grad():
        expected = model(seg)
        assert_informative(expected)
        torch.testing.assert_close(fresh(seg), expected, rtol=0, atol=1e-5)
    # The recovered v reproduces the stored weight, at least as closely as torch's own converter (the legacy
    # hook, which solves in float32 through pinverse(W^T W); v itself is only fixed up to W_mat's null space).
    conv = fresh.head_0.conv_0
    legacy = nn.utils.spectral_norm(nn.Conv2d(conv.in_channels, conv.out_channels, 3, padding=1)).eval()
    legacy.load_state_dict({k[len("head_0.conv_0."):]: v for k, v in old.items() if k.startswith("head_0.conv_0.")})
    x = torch.randn(1, conv.in_channels, 8, 8)
    with torch.no_grad():
        exact = nn.functional.conv2d(x, old["head_0.conv_0.weight"], conv.bias, padding=1)
        ours, torchs = (conv(x) - exact).abs().max().item(), (legacy(x) - exact).abs().max().item()
    print(f"old spectral-norm form: max |error| ours {ours:.2g}, torch legacy hook {torchs:.2g}")
    assert ours <= max(torchs, 1e-6)
    torch.testing.assert_close(conv.normalized_weight(), old["head_0.conv_0.weight"], rtol=1e-5, atol=1e-7)


# ------------------------------------------------------------------------------ training and export paths
@pytest.mark.parametrize("mode", ["normal", "more", "most"])
@pytest.mark.parametrize("preset", ["cityscapes", "ade20k", "coco"])
def test_forward_and_backward_every_preset_and_upsampling_mode(preset, mode):
    torch.manual_seed(0)
    cfg = tiny_config(preset, num_upsampling_layers=mode)
    model = SPADEGenerator(cfg).train()
    image = model(semantics_for(cfg))
    assert image.shape == (2, 3, *cfg.image_size)
    assert image.abs().max() <= 1
    image.mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_vae_forward_and_backward_through_encoder():
    torch.manual_seed(0)
    cfg = tiny_config("coco", use_vae=True)
    generator, encoder = SPADEGenerator(cfg).train(), ConvEncoder(cfg).train()
    mu, logvar = encoder(torch.rand(2, 3, *cfg.image_size) * 2 - 1)
    image = generator(semantics_for(cfg), reparameterize(mu, logvar))
    (image.mean() + mu.square().mean()).backward()
    assert all(p.grad is not None for p in encoder.parameters())


def test_state_dict_round_trip_gives_identical_outputs():
    cfg = tiny_config("coco", use_vae=True)
    model = realistic_generator(cfg)  # running stats and spectral-norm vectors moved as in training
    seg, z = semantics_for(cfg), torch.randn(2, cfg.z_dim)
    fresh = SPADEGenerator(cfg).eval()
    fresh.load_state_dict(model.state_dict())  # strict
    with torch.no_grad():
        expected = model(seg, z)
        assert_informative(expected)
        assert torch.equal(fresh(seg, z), expected)


def test_fold_for_inference_is_exact_and_leaves_plain_layers():
    cfg = tiny_config("cityscapes")
    model = realistic_generator(cfg)
    folded = fold_for_inference(model)
    assert not any(isinstance(m, (SNConv2d, nn.SyncBatchNorm)) for m in folded.modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    assert "head_0.conv_0.weight" in folded.state_dict()
    assert not any(p.requires_grad for p in folded.parameters()) and not folded.training
    assert any(isinstance(m, SNConv2d) for m in model.modules())  # the original is untouched
    seg = semantics_for(cfg)
    with torch.no_grad():
        expected = model(seg)
        assert_informative(expected)
        diff = (folded(seg) - expected).abs().max().item()
    print(f"fold_for_inference max |diff| = {diff:.3g}")
    assert diff <= 1e-6


def test_eval_output_does_not_depend_on_the_batch():
    cfg = tiny_config("ade20k")
    model = realistic_generator(cfg)
    seg = semantics_for(cfg, batch=3)
    with torch.no_grad():
        alone = model(seg[1:2])
        assert_informative(alone)
        # 1e-5: the CPU conv kernels block the work differently for another batch size (float reordering)
        torch.testing.assert_close(model(seg)[1:2], alone, rtol=0, atol=1e-5)


def test_one_mask_many_styles_is_a_broadcast():
    cfg = tiny_config("cityscapes", use_vae=True)
    model = realistic_generator(cfg)
    seg, z = semantics_for(cfg, batch=1), torch.randn(3, cfg.z_dim)
    with torch.no_grad():
        broadcast = model(seg, z)
        assert_informative(broadcast)
        # 1e-5: batch-1 and batch-3 mask convs run through differently blocked CPU kernels (float reordering)
        torch.testing.assert_close(broadcast, model(seg.expand(3, -1, -1, -1), z), rtol=0, atol=1e-5)


def test_latent_size_override_runs_fully_convolutionally():
    torch.manual_seed(0)
    cfg = tiny_config("cityscapes")
    model = SPADEGenerator(cfg).eval()
    sh, sw = cfg.latent_size
    seg = torch.from_numpy(to_semantics(*random_labels(tiny_config("cityscapes", crop_size=256), batch=1), cfg))
    with torch.no_grad():
        assert model(seg).shape[-2:] == cfg.image_size  # reference: the latent grid is fixed by the config
        assert model(seg, latent_size=(2 * sh, 2 * sw)).shape[-2:] == (2 * cfg.image_size[0], 2 * cfg.image_size[1])
        same = semantics_for(cfg, batch=1)
        assert torch.equal(model(same, latent_size=(sh, sw)), model(same))


def test_generator_input_errors_are_clear():
    cfg = tiny_config("cityscapes")
    model = SPADEGenerator(cfg).eval()
    with pytest.raises(ValueError, match=r"semantics must be \(N, 36, H, W\)"):
        model(torch.zeros(1, 35, *cfg.image_size))
    with pytest.raises(ValueError, match="no style input"):
        model(semantics_for(cfg, batch=1), torch.zeros(1, 256))
    vae = SPADEGenerator(tiny_config("cityscapes", use_vae=True)).eval()
    with pytest.raises(ValueError, match=r"z must be \(N, 256\)"):
        vae(semantics_for(cfg, batch=1), torch.zeros(1, 255))
    with pytest.raises(ValueError, match="latent_size cannot change"):
        vae(semantics_for(cfg, batch=1), torch.zeros(1, 256), latent_size=(2, 4))
    with pytest.raises(ValueError, match="RGB batch"):
        ConvEncoder(cfg)(torch.zeros(1, 4, 32, 32))


def test_vae_without_z_samples_on_cpu():
    # The reference samples with device=input.get_device(), which fails on CPU; here z ~ N(0, I) on the input's device.
    model = SPADEGenerator(tiny_config("ade20k", use_vae=True)).eval()
    seg = semantics_for(model.cfg, batch=2)
    torch.manual_seed(1)
    first = model(seg)
    torch.manual_seed(1)
    assert torch.equal(model(seg), first)
    assert not torch.equal(model(seg), first)


def test_reparameterize():
    mu, logvar, eps = torch.tensor([1.0, -2.0]), torch.log(torch.tensor([4.0, 0.25])), torch.tensor([0.5, 2.0])
    torch.testing.assert_close(reparameterize(mu, logvar, eps), torch.tensor([2.0, -1.0]))
    np.testing.assert_allclose(reparameterize(mu, logvar).shape, (2,))


@pytest.mark.slow  # full size; the tiny models of every preset and mode run the same comparison by default
@pytest.mark.parametrize("preset, use_vae", [("cityscapes", False), ("ade20k", False), ("coco", False),
                                             ("cityscapes", True)])
def test_full_size_generator_matches_the_functional_reference(preset, use_vae):
    """The real geometry (ngf 64, 1024 channels, 256x512 for cityscapes), random weights, batch 1."""
    cfg = GeneratorConfig.preset(preset, use_vae=use_vae)
    model = realistic_generator(cfg)
    seg = semantics_for(cfg, batch=1)
    z = torch.randn(1, cfg.z_dim) if use_vae else None
    with torch.no_grad():
        ours = model(seg, z)
        theirs = ref.generator(model.state_dict(), seg, sh=cfg.latent_size[0], sw=cfg.latent_size[1],
                               num_upsampling_layers=cfg.num_upsampling_layers, norm=cfg.param_free_norm, z=z)
    diff = (ours - theirs).abs().max().item()
    print(f"{preset} use_vae={use_vae} {tuple(ours.shape)}: max |ours - reference| = {diff:.3g}")
    assert ours.shape == (1, 3, *cfg.image_size)
    assert_informative(ours)
    assert diff <= 1e-5


def test_recalibrate_batchnorm_sets_statistics_and_restores_the_model():
    cfg = tiny_config("cityscapes")
    torch.manual_seed(0)
    model = SPADEGenerator(cfg).eval()
    seg = semantics_for(cfg, batch=2)
    recalibrate_batchnorm(model, [(seg,), (seg.flip(-1),)])
    norm = model.head_0.norm_0.param_free_norm
    assert not model.training and norm.momentum == 0.1  # mode and momentum restored
    assert norm.num_batches_tracked.item() == 2 and not torch.equal(norm.running_var, torch.ones_like(norm.running_var))
    with torch.no_grad():
        assert_informative(model(seg))  # activations stay in range: tanh is not saturated

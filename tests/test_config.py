import pytest

from gaugan_sdk.config import GeneratorConfig


@pytest.mark.parametrize("preset, semantic_nc, image_size, latent, up", [
    ("cityscapes", 36, (256, 512), (4, 8), "more"),
    ("ade20k", 151, (256, 256), (8, 8), "normal"),
    ("coco", 184, (256, 256), (8, 8), "normal"),
])
def test_presets_match_reference_geometry(preset, semantic_nc, image_size, latent, up):
    cfg = GeneratorConfig.preset(preset)
    assert cfg.semantic_nc == semantic_nc
    assert cfg.image_size == image_size
    assert cfg.latent_size == latent
    assert cfg.num_upsampling_layers == up
    assert cfg.norm_G == "spectralspadesyncbatch3x3"
    assert (cfg.ngf, cfg.z_dim, cfg.use_vae) == (64, 256, False)


def test_overrides_and_round_trip():
    cfg = GeneratorConfig.preset("cityscapes", use_vae=True, param_free_norm="instance", spectral_norm=False)
    assert cfg.use_vae and cfg.norm_G == "spadeinstance3x3"
    assert GeneratorConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.replace(ngf=32).ngf == 32


@pytest.mark.parametrize("mode, size", [("normal", (256, 512)), ("more", (256, 512)), ("most", (256, 512))])
def test_upsampling_modes_keep_the_output_size(mode, size):
    # The crop size fixes the output; more/most only move the latent grid (docs/design.md, "The model").
    assert GeneratorConfig.preset("cityscapes", num_upsampling_layers=mode).image_size == size


@pytest.mark.parametrize("kwargs, message", [
    (dict(num_upsampling_layers="lots"), "accepted: normal, more, most"),
    (dict(param_free_norm="group"), "accepted: syncbatch, batch, instance"),
    (dict(label_nc=0), "label_nc=0 must be an integer >= 1"),
    (dict(crop_size=64), "crop_size must be >= 128"),
    (dict(aspect_ratio=-1.0), "aspect_ratio=-1.0"),
    (dict(use_vae="yes"), "use_vae='yes' must be True or False"),
    (dict(spade_kernel_size=4), "must be odd"),
    (dict(num_upsampling_layers="most", ngf=7, crop_size=512), "ngf=7 must be even"),
])
def test_bad_values_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GeneratorConfig.preset("cityscapes", **kwargs)


def test_unknown_preset_and_fields():
    with pytest.raises(ValueError, match="unknown preset 'kitti'; accepted: ade20k, cityscapes, coco"):
        GeneratorConfig.preset("kitti")
    with pytest.raises(ValueError, match="unknown override for preset 'coco': 'label_ncc'"):
        GeneratorConfig.preset("coco", label_ncc=3)
    with pytest.raises(ValueError, match="unknown GeneratorConfig key: 'future_field'"):
        GeneratorConfig.from_dict({**GeneratorConfig.preset("coco").to_dict(), "future_field": 1})


def test_parse_overrides_types_and_errors():
    from gaugan_sdk.config import parse_overrides

    assert parse_overrides(["use_vae=true", "ngf=32", "aspect_ratio=2", "label_set=none"]) == \
        {"use_vae": True, "ngf": 32, "aspect_ratio": 2.0, "label_set": None}
    with pytest.raises(ValueError, match="expected KEY=VALUE with KEY one of"):
        parse_overrides(["colour=red"])
    with pytest.raises(ValueError, match="ngf takes an integer"):
        parse_overrides(["ngf=wide"])
    with pytest.raises(ValueError, match="use_vae takes true or false"):
        parse_overrides(["use_vae=maybe"])

"""Latent-space tools: encoding, interpolation, Gaussian / PCA fits, neighbours, files, SIREN export."""

import dataclasses
import math

import numpy as np
import pytest
import torch

import hypersiren as hs
from hypersiren.latent import (
    GaussianFit,
    LatentPrior,
    LatentSet,
    decode_and_render,
    direction_sweep,
    encode_dataset,
    fit_gaussian,
    fit_pca,
    interpolate_latents,
    interpolate_params,
    load_latent_prior,
    load_latents,
    nearest_neighbours,
    save_latents,
    write_projector,
)
from hypersiren.modalities.image import ImageData, ImageModality, ImagePrior
from hypersiren.runs import save_checkpoint

RES = 8


def small_prior(heads="low_rank", seed=0) -> ImagePrior:
    torch.manual_seed(seed)
    config = hs.HyperSirenConfig(value_dim=1, latent_dim=16, siren_hidden=16, siren_depth=3, encoder_hidden=16,
                                 heads=heads, encoder="posterior" if heads == "basis" else "set", head_hidden=16,
                                 rank=8, w0_first=10.0, w0=10.0)
    return ImagePrior(hs.HyperSiren(config).eval(), resolution=RES)


def images(n=6, seed=0):
    return torch.rand(n, RES, RES, 1, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def prior():
    return small_prior()


def test_image_prior_implements_the_protocol_and_encodes_like_the_model(prior):
    assert isinstance(prior, LatentPrior) and prior.latent_dim == 16 and prior.resolution == RES
    assert prior.siren == hs.SirenConfig(2, 1, hidden_dim=16, depth=3, w0_first=10.0, w0=10.0)
    x = images()
    coords, values = hs.image_to_points(x * 2 - 1)
    full = hs.Context(coords, values, torch.ones(coords.shape[:2], dtype=torch.bool))
    with torch.no_grad():
        torch.testing.assert_close(prior.encode(x), prior.model.encode(full), rtol=0, atol=0)
        one = torch.Generator().manual_seed(3)
        context = hs.prior.fixed_context(coords, values, 10, generator=torch.Generator().manual_seed(3))
        torch.testing.assert_close(prior.encode(x, context_size=10, generator=one), prior.model.encode(context))
        params = prior.decode(prior.encode(x))
        rendered = prior.render(params, resolution=11)  # [B, 11, 11, 1] in [0, 1] units
        raw = prior.model.render(params, hs.grid((11, 11)).expand(6, -1, -1))
    assert rendered.shape == (6, 11, 11, 1)
    torch.testing.assert_close(rendered, hs.points_to_image((raw + 1) / 2, 11, 11))
    with pytest.raises(ValueError, match=r"ImagePrior.encode: expected images \[B, H, W, 1\]"):
        prior.encode(torch.rand(2, RES, RES, 3))
    with pytest.raises(ValueError, match="ImagePrior.render: expected SIRENs with batch shape"):
        prior.render(params.map(lambda t: t[0]))
    with pytest.raises(ValueError, match="ImagePrior: resolution must be a positive int"):
        ImagePrior(prior.model, resolution=0)
    with pytest.raises(ValueError, match="ImagePrior.load_signals: this prior has no data configuration"):
        prior.load_signals()


def test_image_prior_loads_image_sources_at_its_resolution(tmp_path, prior):
    from PIL import Image

    rgb = np.random.default_rng(0).integers(0, 256, size=(3, 10, 12, 3), dtype=np.uint8)
    np.savez(tmp_path / "rgb.npz", images=rgb)
    loaded = prior.load_signals(str(tmp_path / "rgb.npz"))  # colour -> grey for a grey prior
    assert loaded.shape == (3, RES, RES, 1)
    torch.testing.assert_close(loaded, hs.io.square_resize(rgb, RES).mean(-1, keepdim=True))
    Image.fromarray(rgb[1]).save(tmp_path / "one.png")
    torch.testing.assert_close(prior.load_signals(str(tmp_path / "one.png")), loaded[1:2])
    with pytest.raises(ValueError, match="ImagePrior.load_signals: split='heldout' selects from the run's own data"):
        prior.load_signals(str(tmp_path / "rgb.npz"), split="heldout")
    np.savez(tmp_path / "grey.npz", images=rgb[..., :1])
    colour = ImagePrior(hs.HyperSiren(hs.HyperSirenConfig(value_dim=3, latent_dim=4, encoder_hidden=4, siren_hidden=4,
                                                          head_hidden=4, heads="low_rank", rank=2)), resolution=RES)
    with pytest.raises(ValueError, match=r"ImagePrior.load_signals: load_images: the prior models 3 channel\(s\) but .* has 1"):
        colour.load_signals(str(tmp_path / "grey.npz"))
    data = ImageData(source=str(tmp_path / "grey.npz"), resolution=RES, holdout=1)
    with_run = ImagePrior(prior.model, resolution=RES, modality=ImageModality(data))
    assert with_run.load_signals().shape[0] == 2 and with_run.load_signals(split="heldout").shape[0] == 1
    torch.testing.assert_close(with_run.load_signals(split="all"), hs.io.square_resize(rgb[..., :1], RES))
    with pytest.raises(ValueError, match="ImagePrior.load_signals: split must be one of"):
        with_run.load_signals(split="test")
    with pytest.raises(ValueError, match="ImagePrior: expected a prior over 2-D coordinates, got coord_dim=3"):
        ImagePrior(hs.HyperSiren(hs.HyperSirenConfig(coord_dim=3, latent_dim=4, encoder_hidden=4, siren_hidden=4,
                                                     head_hidden=4, heads="low_rank", rank=2)), resolution=RES)
    with pytest.raises(ValueError, match=r"decode_and_render: expected latents \[B, 16\]"):
        decode_and_render(prior, torch.zeros(2, 3))


def test_encode_dataset_is_batch_size_invariant_and_names_its_latents(prior):
    x = images(7)
    whole = encode_dataset(prior, x, batch_size=7)
    assert whole.latents.shape == (7, 16) and whole.ids == tuple("0123456") and whole.meta == {}
    torch.testing.assert_close(encode_dataset(prior, x, batch_size=3).latents, whole.latents, rtol=0, atol=1e-6)
    named = encode_dataset(prior, x[:2], ids=["a", "b"], meta={"seed": 1})
    assert named.ids == ("a", "b") and named.meta == {"seed": 1}
    with pytest.raises(ValueError, match="encode_dataset: batch_size must be a positive int"):
        encode_dataset(prior, x, batch_size=0)
    with pytest.raises(ValueError, match="encode_dataset: expected 7 string ids"):
        encode_dataset(prior, x, ids=["a"])
    with pytest.raises(ValueError, match=r"encode_dataset: expected signals \[N, ...\] with N >= 1"):
        encode_dataset(prior, x[:0])


@pytest.mark.parametrize("heads", ["low_rank", "per_tensor", "basis"])
def test_interpolation_endpoints_reproduce_the_direct_decodes(heads):
    prior = small_prior(heads)
    with torch.no_grad():
        za, zb = torch.randn(2, 16, generator=torch.Generator().manual_seed(0))  # far apart: ReLUs switch between
        by_latent = interpolate_latents(za, zb, 5)  # [5, Z]
        direct = prior.decode(torch.stack([za, zb]))
        pa, pb = direct.map(lambda t: t[:1]), direct.map(lambda t: t[1:])
        by_weight = interpolate_params(pa, pb, 5)
        decoded = prior.decode(by_latent)
        render_latent, render_weight = prior.render(decoded), prior.render(by_weight)
        render_direct = prior.render(direct)
    assert torch.equal(by_latent[0], za) and torch.equal(by_latent[-1], zb)
    torch.testing.assert_close(by_latent[2], (za + zb) / 2)
    flat = by_weight.flatten()  # [5, P]
    assert by_weight.batch_shape == (5,)
    assert torch.equal(flat[0], pa.flatten()[0]) and torch.equal(flat[-1], pb.flatten()[0])
    torch.testing.assert_close(flat[1], 0.75 * pa.flatten()[0] + 0.25 * pb.flatten()[0])
    for ends in ((0, 0), (-1, 1)):
        torch.testing.assert_close(decoded.flatten()[ends[0]], direct.flatten()[ends[1]], rtol=0, atol=1e-6)
        torch.testing.assert_close(render_latent[ends[0]], render_direct[ends[1]], rtol=0, atol=1e-6)
        torch.testing.assert_close(render_weight[ends[0]], render_direct[ends[1]], rtol=0, atol=1e-6)
    if heads == "basis":  # linear in the latent: both paths are the same SIRENs all the way
        torch.testing.assert_close(render_latent, render_weight, rtol=0, atol=1e-5)
    else:
        assert (render_latent[2] - render_weight[2]).abs().max() > 1e-6  # the decoder is not linear in between


def test_interpolation_rejects_bad_arguments(prior):
    z = torch.zeros(16)
    with pytest.raises(ValueError, match="interpolate_latents: steps must be an int >= 2"):
        interpolate_latents(z, z, 1)
    with pytest.raises(ValueError, match="interpolate_latents: expected two latents of one size, got 16 and 8"):
        interpolate_latents(z, torch.zeros(8), 3)
    two = prior.decode(torch.zeros(2, 16))
    with pytest.raises(ValueError, match=r"interpolate_params: expected one SIREN each \(batch shape \(\) or \(1,\)\)"):
        interpolate_params(two, two, 3)
    other = hs.Siren(2, 1, hidden_dim=8, depth=3).params()
    with pytest.raises(ValueError, match="interpolate_params: expected two SIRENs of one architecture"):
        interpolate_params(two.map(lambda t: t[:1]), other, 3)
    with pytest.raises(ValueError, match="interpolate_params: steps must be an int >= 2"):
        interpolate_params(other, other, 0)


def random_latents(n=40, z=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(z, z, generator=g)
    return torch.randn(n, z, generator=g) @ mix + torch.arange(z, dtype=torch.float32)


def test_pca_components_are_orthonormal_and_ordered():
    latents = random_latents()
    pca = fit_pca(latents)
    torch.testing.assert_close(pca.components @ pca.components.T, torch.eye(6), rtol=0, atol=1e-6)
    assert (pca.std[:-1] >= pca.std[1:]).all() and pca.explained.sum().item() == pytest.approx(1.0, abs=1e-6)
    coords = pca.project(latents)  # [N, K]
    torch.testing.assert_close(coords.std(0), pca.std, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(coords @ pca.components + pca.mean, latents, rtol=0, atol=1e-4)  # all K: exact
    top = fit_pca(latents, components=2)
    torch.testing.assert_close(top.components, pca.components[:2])
    for row in pca.components:  # deterministic sign: the largest entry is positive
        assert row[row.abs().argmax()] > 0
    sweep = direction_sweep(pca, 1, sigmas=(-3, 0, 2))
    assert sweep.shape == (3, 6) and torch.equal(sweep[1], pca.mean)
    torch.testing.assert_close(pca.project(sweep)[:, 1], torch.tensor([-3.0, 0.0, 2.0]) * pca.std[1])
    torch.testing.assert_close(pca.project(sweep)[:, [0, 2, 3]], torch.zeros(3, 3), rtol=0, atol=1e-5)


def test_temperature_zero_samples_decode_as_the_mean_latent(prior):
    latents = random_latents(z=16)
    for fit in (fit_gaussian(latents), fit_pca(latents, components=3)):
        samples = fit.sample(4, temperature=0.0, generator=torch.Generator().manual_seed(0))
        assert torch.equal(samples, fit.mean.expand(4, -1))
        with torch.no_grad():
            mean_decode = decode_and_render(prior, fit.mean[None])  # [1, H, W, C]
            torch.testing.assert_close(decode_and_render(prior, samples), mean_decode.expand(4, -1, -1, -1),
                                       rtol=0, atol=1e-6)


def test_gaussian_fit_matches_the_data_and_temperature_scales_the_spread():
    latents = random_latents(n=400)
    fit = fit_gaussian(latents)
    torch.testing.assert_close(fit.mean, latents.mean(0))
    cov = fit.scale_tril @ fit.scale_tril.T
    torch.testing.assert_close(cov, torch.cov(latents.T), rtol=1e-4, atol=1e-4)
    samples = fit.sample(20000, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(torch.cov(samples.T), cov, rtol=0.1, atol=0.1 * cov.diagonal().max().item())
    hot = fit.sample(5, temperature=1.0, generator=torch.Generator().manual_seed(1))
    cool = fit.sample(5, temperature=0.5, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(cool - fit.mean, 0.5 * (hot - fit.mean))
    pca = fit_pca(latents, components=2)  # PCA samples stay in the span of the kept components
    drawn = pca.sample(50, generator=torch.Generator().manual_seed(2)) - pca.mean
    torch.testing.assert_close(pca.project(drawn + pca.mean) @ pca.components, drawn, rtol=0, atol=1e-4)


def test_fewer_latents_than_dimensions_still_fit():
    latents = random_latents(n=3, z=10)
    fit = fit_gaussian(latents)
    assert torch.isfinite(fit.sample(2, generator=torch.Generator().manual_seed(0))).all()
    pca = fit_pca(latents)
    assert pca.components.shape == (3, 10) and pca.std[-1] < 1e-5  # 3 centred points span 2 directions


def test_fits_reject_bad_arguments():
    latents = random_latents()
    with pytest.raises(ValueError, match=r"fit_gaussian: expected latents \[N, Z\] of floats with N >= 2"):
        fit_gaussian(latents[:1])
    with pytest.raises(ValueError, match="fit_gaussian: jitter must be >= 0"):
        fit_gaussian(latents, jitter=-1.0)
    with pytest.raises(ValueError, match="fit_gaussian: the covariance is not positive definite"):
        fit_gaussian(torch.zeros(4, 3), jitter=0.0)
    with pytest.raises(ValueError, match=r"fit_pca: components must be an int in 1..6"):
        fit_pca(latents, components=7)
    fit = fit_gaussian(latents)
    with pytest.raises(ValueError, match="GaussianFit.sample: temperature must be a finite number >= 0"):
        fit.sample(2, temperature=-0.5)
    with pytest.raises(ValueError, match="PCAFit.sample: n must be a positive int"):
        fit_pca(latents).sample(0)
    with pytest.raises(ValueError, match="direction_sweep: expected at least one sigma"):
        direction_sweep(fit_pca(latents), 0, sigmas=())
    with pytest.raises(ValueError, match=r"direction_sweep: component must be an int in 0..1"):
        direction_sweep(fit_pca(latents, components=2), 2)
    assert isinstance(fit, GaussianFit)


def test_nearest_neighbours_match_a_brute_force_search():
    g = torch.Generator().manual_seed(0)
    references = torch.rand(12, 4, 4, 1, generator=g)
    queries = torch.cat([references[[7, 2]], torch.rand(3, 4, 4, 1, generator=g)])
    found = nearest_neighbours(queries, references, k=3)
    assert found.indices.shape == (5, 3) and found.indices[:2, 0].tolist() == [7, 2]
    assert found.distances[:2, 0].abs().max() == 0
    for q in range(5):
        distances = [math.dist(queries[q].flatten().tolist(), r.flatten().tolist()) for r in references]
        expected = sorted(range(12), key=lambda i: distances[i])[:3]
        assert found.indices[q].tolist() == expected
        torch.testing.assert_close(found.distances[q], torch.tensor([distances[i] for i in expected]))
    with pytest.raises(ValueError, match=r"nearest_neighbours: k must be an int in 1..12"):
        nearest_neighbours(queries, references, k=13)
    with pytest.raises(ValueError, match="nearest_neighbours: expected queries .* with the same item shape"):
        nearest_neighbours(queries[:, :2], references)


@pytest.mark.parametrize("suffix", [".pt", ".npz"])
def test_latents_file_round_trips_exactly(tmp_path, suffix):
    latent_set = LatentSet(random_latents(n=5), ("train/0", "train/1", "b", "c", "dé"),
                           {"checkpoint": "runs/x/checkpoint.pt", "context": "full", "seed": 3, "data": None})
    path = save_latents(tmp_path / f"latents{suffix}", latent_set)
    loaded = load_latents(path)
    assert torch.equal(loaded.latents, latent_set.latents) and loaded.latents.dtype == torch.float32
    assert loaded.ids == latent_set.ids and loaded.meta == latent_set.meta


def test_latents_file_errors(tmp_path):
    latent_set = LatentSet(random_latents(n=2), ("a", "b"), {})
    with pytest.raises(ValueError, match="save_latents: expected a path ending in .pt or .npz"):
        save_latents(tmp_path / "latents.txt", latent_set)
    with pytest.raises(ValueError, match="save_latents: expected 2 string ids"):
        save_latents(tmp_path / "latents.pt", LatentSet(latent_set.latents, ("a",), {}))
    with pytest.raises(ValueError, match=r"save_latents: expected latents \[N, Z\] of floats with N >= 1"):
        save_latents(tmp_path / "latents.pt", LatentSet(torch.zeros(2, 3, dtype=torch.long), ("a", "b"), {}))
    with pytest.raises(ValueError, match="save_latents: expected meta to be JSON-like"):
        save_latents(tmp_path / "latents.pt", LatentSet(latent_set.latents, ("a", "b"), {"x": torch.zeros(1)}))
    with pytest.raises(FileNotFoundError, match="load_latents: no latents file at .*missing.pt"):
        load_latents(tmp_path / "missing.pt")
    save_checkpoint(tmp_path / "checkpoint.pt", {"kind": "hypersiren.prior"})
    with pytest.raises(ValueError, match=r"load_latents: .*checkpoint.pt is a file of kind 'hypersiren.pr.*', expected 'hypersiren.latents'"):
        load_latents(tmp_path / "checkpoint.pt")
    np.savez(tmp_path / "images.npz", images=np.zeros((2, 4, 4, 1), np.uint8))
    with pytest.raises(ValueError, match=r"load_latents: .*images.npz is a file of kind None, expected 'hypersiren.latents'"):
        load_latents(tmp_path / "images.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="load_latents: cannot read .*junk.npz as a latents file"):
        load_latents(tmp_path / "junk.npz")
    (tmp_path / "junk.txt").write_text("x")
    with pytest.raises(ValueError, match="load_latents: expected a .pt or .npz file"):
        load_latents(tmp_path / "junk.txt")


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_exported_siren_loads_into_a_plain_siren_and_renders_the_prediction(tmp_path, depth):
    torch.manual_seed(depth)
    config = hs.HyperSirenConfig(value_dim=3, latent_dim=8, siren_hidden=12, siren_depth=depth, encoder_hidden=8,
                                 heads="low_rank", head_hidden=8, rank=4, w0_first=20.0, w0=15.0)
    prior = ImagePrior(hs.HyperSiren(config).eval(), resolution=RES)
    with torch.no_grad():
        params = prior.decode(torch.randn(3, 8))
        one = params.map(lambda t: t[1:2])
        hs.export_siren(one, tmp_path / "siren.pt", config=prior.siren, meta={"id": "x"})
        coords = hs.grid((23, 17))  # any resolution, not square
        expected = prior.model.render(one, coords[None])[0]  # [N, 3]
        siren = hs.load_exported_siren(tmp_path / "siren.pt")
        torch.testing.assert_close(siren(coords), expected, rtol=0, atol=1e-5)
        # the file is plain torch: a hand-built Siren takes its state_dict
        raw = torch.load(tmp_path / "siren.pt", weights_only=True)
        assert raw["kind"] == "hypersiren.siren" and raw["meta"] == {"id": "x"}
        plain = hs.Siren(2, 3, hidden_dim=12, depth=depth, w0_first=20.0, w0=15.0)
        plain.load_state_dict(raw["state_dict"])
        torch.testing.assert_close(plain(coords), expected, rtol=0, atol=1e-5)
    assert siren.config == prior.siren and not siren.training


def test_exported_files_and_fitting_files_share_one_format(tmp_path):
    """`hypersiren.fitting.save_siren` writes the same layout: each loader reads the other's files."""
    from hypersiren.fitting import load_siren, save_siren

    torch.manual_seed(0)
    fitted = hs.Siren(2, 3, hidden_dim=8, depth=3, w0_first=12.0, w0=7.0)
    save_siren(tmp_path / "fitted.pt", fitted)
    hs.export_siren(fitted.params(), tmp_path / "exported.pt", config=fitted.config)
    coords = hs.grid((5, 5))
    with torch.no_grad():
        for siren in (hs.load_exported_siren(tmp_path / "fitted.pt"), load_siren(tmp_path / "exported.pt")):
            assert siren.config == fitted.config
            torch.testing.assert_close(siren(coords), fitted(coords), rtol=0, atol=0)


def test_export_errors(tmp_path, prior):
    params = prior.decode(torch.zeros(2, 16))
    with pytest.raises(ValueError, match=r"siren_state_dict: expected the parameters of one SIREN .*shape \(2,\)"):
        hs.export_siren(params, tmp_path / "s.pt", config=prior.siren)
    with pytest.raises(ValueError, match="export_siren: expected layer shapes"):
        hs.export_siren(params.map(lambda t: t[:1]), tmp_path / "s.pt",
                        config=hs.SirenConfig(2, 1, hidden_dim=8, depth=3))
    with pytest.raises(TypeError, match="export_siren: expected config to be a SirenConfig"):
        hs.export_siren(params.map(lambda t: t[:1]), tmp_path / "s.pt", config={"in_dim": 2})
    save_checkpoint(tmp_path / "prior.pt", {"kind": "hypersiren.prior"})
    with pytest.raises(ValueError, match="load_exported_siren: .*prior.pt is a file of kind 'hypersiren.prior', "
                                         r"expected 'hypersiren.siren' \(written by export_siren\)"):
        hs.load_exported_siren(tmp_path / "prior.pt")
    with pytest.raises(ValueError, match="SirenConfig: depth must be a positive int"):
        hs.SirenConfig(2, 1, depth=0)
    with pytest.raises(ValueError, match="SirenConfig: w0 must be a positive finite number"):
        hs.SirenConfig(2, 1, w0=float("inf"))


def test_load_latent_prior_names_the_wrong_kind(tmp_path):
    save_checkpoint(tmp_path / "shape.pt", {"kind": "hypersiren.shape_prior"})
    with pytest.raises(ValueError, match=r"load_latent_prior: .*shape.pt is a file of kind "
                                         r"'hypersiren.shape_prior', expected a prior of kind 'hypersiren.prior'"):
        load_latent_prior(tmp_path / "shape.pt")
    torch.save(hs.Siren(2, 1, hidden_dim=4, depth=2).state_dict(), tmp_path / "plain.pt")
    with pytest.raises(ValueError, match=r"of kind None, .*no 'kind' entry \(a plain state_dict\?\)"):
        load_latent_prior(tmp_path / "plain.pt")
    one = small_prior().decode(torch.zeros(1, 16))
    hs.export_siren(one, tmp_path / "siren.pt", config=small_prior().siren)
    with pytest.raises(ValueError, match="of kind 'hypersiren.siren'.*load it with hypersiren.load_exported_siren"):
        load_latent_prior(tmp_path / "siren.pt")
    config = hs.HyperSirenConfig(latent_dim=4, encoder_hidden=4, siren_hidden=4, head_hidden=4, heads="low_rank",
                                 rank=2)
    state = {"kind": "hypersiren.prior", "model_config": dataclasses.asdict(config),
             "model": hs.HyperSiren(config).state_dict()}
    save_checkpoint(tmp_path / "old.pt", state)  # an earlier hypersiren's checkpoint: no format, no modality
    with pytest.raises(ValueError, match="old.pt has checkpoint format None.*retrain"):
        load_latent_prior(tmp_path / "old.pt")
    save_checkpoint(tmp_path / "new.pt", {**state, "format": 2, "modality": "image",
                                          "data": dataclasses.asdict(ImageData(resolution=6))})
    loaded = load_latent_prior(tmp_path / "new.pt")  # the checkpoint alone rebuilds its modality's adapter
    assert isinstance(loaded, ImagePrior) and loaded.resolution == 6 and loaded.modality.data.source == "faces"
    save_checkpoint(tmp_path / "odd.pt", {**state, "format": 2, "modality": "sound", "data": {}})
    with pytest.raises(ValueError, match="unknown modality 'sound'; known: image"):
        load_latent_prior(tmp_path / "odd.pt")


def test_projector_writes_latents_labels_and_sprite(tmp_path):
    latents = random_latents(n=5)
    write_projector(tmp_path / "logs", latents, labels=[f"id{i}" for i in range(5)], thumbnails=images(5))
    folder = tmp_path / "logs" / "00000" / "latents"
    config = (tmp_path / "logs" / "projector_config.pbtxt").read_text()
    assert 'tensor_path: "00000/latents/tensors.tsv"' in config and "single_image_dim: 8" in config
    written = torch.tensor(np.loadtxt(folder / "tensors.tsv", dtype=np.float32))
    assert torch.equal(written, latents)
    assert (folder / "metadata.tsv").read_text().split() == [f"id{i}" for i in range(5)]
    assert (folder / "sprite.png").stat().st_size > 0
    with pytest.raises(ValueError, match=r"write_projector: expected latents \[N, Z\] with N >= 1"):
        write_projector(tmp_path / "x", latents[0], labels=["a"] * 6)
    with pytest.raises(ValueError, match="write_projector: expected 5 labels, one per latent, got 4"):
        write_projector(tmp_path / "x", latents, labels=["a"] * 4)
    with pytest.raises(ValueError, match=r"write_projector: expected thumbnails \[5, H, W, C\]"):
        write_projector(tmp_path / "x", latents, labels=["a"] * 5, thumbnails=images(4))


def test_figure_helpers_tile_and_write(tmp_path):
    grid = torch.arange(2 * 3 * 2 * 2, dtype=torch.float32).reshape(2, 3, 2, 2, 1) / 24
    image = hs.figures.tile(grid, pad=1)
    assert image.shape == (5, 8, 1)
    assert torch.equal(image[3:5, 6:8], grid[1, 2]) and torch.equal(image[2], torch.ones(8, 1))
    assert torch.equal(hs.figures.upsample_nearest(grid[0], 4)[1, ::2, ::2], grid[0, 1])
    path = hs.figures.save_png(tmp_path / "f.png", image)
    from PIL import Image

    with Image.open(path) as written:
        assert written.size == (8, 5)
    with pytest.raises(ValueError, match=r"save_png: expected an image \[H, W, C\] with C = 1 or 3"):
        hs.figures.save_png(tmp_path / "g.png", grid)
    with pytest.raises(ValueError, match=r"upsample_nearest: expected images \[B, H, W, C\]"):
        hs.figures.upsample_nearest(grid, 4)
    assert hs.figures.as_rgb(grid[0]).shape == (3, 2, 2, 3)
    with pytest.raises(ValueError, match="as_rgb: expected 1 or 3 channels last"):
        hs.figures.as_rgb(torch.zeros(2, 2))
    with pytest.raises(ValueError, match=r"tile: expected images \[rows, cols, H, W, C\]"):
        hs.figures.tile(grid[0])


class CurvePrior:
    """A toy prior of another kind: 1-D curves `[B, N]`, latent = the curve at 4 points, decoded by a fixed
    linear map into a 1 -> 8 -> 1 SIREN. It implements `LatentPrior` and nothing else."""

    latent_dim, resolution = 4, 12
    siren = hs.SirenConfig(1, 1, hidden_dim=8, depth=2, w0_first=3.0, w0=3.0)

    def __init__(self):
        self.map = torch.randn(4, hs.num_params(self.siren.layer_shapes), generator=torch.Generator().manual_seed(0))

    def encode(self, signals, *, context_size=None, generator=None):
        return signals[:, :: signals.shape[1] // 4][:, :4]

    def decode(self, latent):
        return hs.SirenParams.unflatten(0.3 * latent @ self.map, self.siren.layer_shapes)

    def query_coords(self, resolution=None):
        return hs.grid((resolution or self.resolution,))

    def to_signals(self, values, *, resolution=None):
        return values[..., 0]  # [B, N]

    def render(self, params, *, resolution=None):
        coords = self.query_coords(resolution).expand(params.batch_shape[0], -1, -1)
        return self.to_signals(hs.siren_forward(params, coords, w0_first=3.0, w0=3.0))

    def to_images(self, signals):
        return (signals.sigmoid()[:, None, :, None]).expand(-1, 3, -1, 1)  # [B, 3, N, 1]: a strip per curve

    def load_signals(self, source=None, *, split=None):
        return torch.randn(10, 12, generator=torch.Generator().manual_seed(1))


def test_another_prior_kind_plugs_into_the_same_tools(tmp_path):
    prior = CurvePrior()
    assert isinstance(prior, LatentPrior)
    latent_set = encode_dataset(prior, prior.load_signals(), batch_size=3)
    assert latent_set.latents.shape == (10, 4)
    pca = fit_pca(latent_set.latents)
    curves = decode_and_render(prior, direction_sweep(pca, 0), resolution=30)
    assert curves.shape == (7, 30)
    za, zb = latent_set.latents[:2]
    by_weight = prior.render(interpolate_params(prior.decode(za[None]), prior.decode(zb[None]), 3))
    torch.testing.assert_close(by_weight[-1], decode_and_render(prior, zb[None])[0], rtol=0, atol=1e-6)
    hs.export_siren(prior.decode(za[None]), tmp_path / "curve.pt", config=prior.siren)
    siren = hs.load_exported_siren(tmp_path / "curve.pt")
    expected = decode_and_render(prior, za[None], resolution=30)[0]
    torch.testing.assert_close(siren(prior.query_coords(30))[:, 0], expected, rtol=0, atol=1e-6)
    samples = fit_gaussian(latent_set.latents).sample(2, generator=torch.Generator().manual_seed(0))
    references = prior.to_images(prior.load_signals())
    found = nearest_neighbours(prior.to_images(decode_and_render(prior, samples)), references)
    assert found.indices.shape == (2, 1)
    write_projector(tmp_path / "logs", latent_set.latents, labels=latent_set.ids,
                    thumbnails=prior.to_images(prior.load_signals()))
    assert (tmp_path / "logs" / "projector_config.pbtxt").is_file()

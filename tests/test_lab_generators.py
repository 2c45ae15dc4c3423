"""Generators whose weights a lab provides: the exact published architecture, loaded from a file, clear errors.

No weights ship with evostim: the tests build random state dicts of the published shapes.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

from evostim import generators
from evostim.generators import GeneratorWeightsMismatch, GeneratorWeightsMissing
from tests.test_api import assert_problem

# DeePSiM fc6 as published (Dosovitskiy & Brox 2016; the Caffe model's layer names and shapes).
FC6_SHAPES: dict[str, tuple[int, ...]] = {
    **{f"{name}.weight": (4096, 4096) for name in ("defc7", "defc6", "defc5")},
    **{f"{name}.bias": (4096,) for name in ("defc7", "defc6", "defc5")},
}
for _name, _cin, _cout, _k in [
    ("deconv5", 256, 256, 4), ("conv5_1", 256, 512, 3), ("deconv4", 512, 256, 4), ("conv4_1", 256, 256, 3),
    ("deconv3", 256, 128, 4), ("conv3_1", 128, 128, 3), ("deconv2", 128, 64, 4), ("deconv1", 64, 32, 4),
    ("deconv0", 32, 3, 4),
]:  # fmt: skip
    FC6_SHAPES[f"{_name}.weight"] = (_cin, _cout, _k, _k)  # ConvTranspose2d: (in, out, k, k)
    FC6_SHAPES[f"{_name}.bias"] = (_cout,)


def random_state(shapes: dict[str, tuple[int, ...]], prefix: str = "") -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    state = {}
    for key, shape in shapes.items():
        fan_in = shape[1] if key.endswith("weight") and len(shape) == 2 else (shape[0] * 9 if len(shape) == 4 else 1)
        state[prefix + key] = torch.randn(shape, generator=generator) / math.sqrt(fan_in)
    return state


def write_fc6_weights(folder: Path) -> None:
    """Random DeePSiM fc6 weights of the published shapes, where the lab's weights folder would hold them."""
    torch.save(random_state(FC6_SHAPES), folder / "deepsim-fc6.pt")


@pytest.fixture(scope="module")
def fc6_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("weights")
    write_fc6_weights(folder)
    return folder


def test_deepsim_fc6_decodes_4096_d_codes_to_256_pixel_rgb_images(fc6_weights: Path) -> None:
    fc6 = generators.load_generator("deepsim-fc6", "cpu", fc6_weights)
    codes = np.random.default_rng(0).standard_normal((3, 4096)) * 300 / 64
    images = fc6.decode(codes)
    assert tuple(images.shape) == (3, 3, 256, 256)
    assert float(images.min()) >= 0.0 and float(images.max()) <= 1.0
    assert float(images.std()) > 0.01  # around the mean pixel, not a constant
    np.testing.assert_allclose(fc6.decode(codes[1:2]).numpy()[0], images.numpy()[1], atol=1e-5)
    zero = fc6.decode(np.zeros((1, 4096))).numpy()[0]
    assert zero.shape == (3, 256, 256)
    assert generators.load_generator("deepsim-fc6", "cpu", fc6_weights) is fc6


def test_the_fc6_output_is_bgr_around_the_imagenet_mean_pixel() -> None:
    module = generators.deepsim_fc6.DeepSimFc6()
    for parameter in module.parameters():
        torch.nn.init.zeros_(parameter)
    with torch.no_grad():
        module.get_parameter("G.deconv0.bias").copy_(torch.tensor([10.0, 0.0, -10.0]))  # B, G, R offsets
        image = module(torch.zeros(1, 4096))[0, :, 0, 0] * 255
    np.testing.assert_allclose(image.numpy(), [123.0 - 10, 117.0, 104.0 + 10], atol=1e-4)


@pytest.mark.parametrize("prefix", ["G.", ""])
def test_fc6_loads_the_key_styles_of_the_published_ports(tmp_path: Path, prefix: str) -> None:
    module = generators.deepsim_fc6.DeepSimFc6()
    path = tmp_path / "fc6.pt"
    torch.save({"state_dict": random_state(FC6_SHAPES, prefix)}, path)
    generators.weights.load_state_dict_file(module, path, rename=generators.deepsim_fc6._file_key, label="fc6")
    assert torch.equal(module.get_parameter("G.defc7.bias"), random_state(FC6_SHAPES)["defc7.bias"])


def test_if_a_missing_weights_file_is_named_with_its_expected_path(tmp_path: Path) -> None:
    with pytest.raises(GeneratorWeightsMissing, match=str(tmp_path / "deepsim-fc6.pt")):
        generators.load_generator("deepsim-fc6", "cpu", tmp_path)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda state: state.pop("defc5.bias"), "missing keys: G.defc5.bias"),
        (lambda state: state.update({"defc8.weight": torch.zeros(1)}), "unexpected keys: G.defc8.weight"),
        (lambda state: state.update({"deconv0.bias": torch.zeros(4)}), r"G.deconv0.bias \(4,\) \(expected \(3,\)\)"),
    ],
)
def test_if_a_mismatched_weights_file_names_the_keys_and_shapes(tmp_path: Path, change: Any, message: str) -> None:
    state = random_state({k: v for k, v in FC6_SHAPES.items() if not k.startswith("defc")})
    state.update({k: torch.zeros(v) for k, v in FC6_SHAPES.items() if k.startswith("defc")})
    change(state)
    torch.save(state, tmp_path / "deepsim-fc6.pt")
    with pytest.raises(GeneratorWeightsMismatch, match=message):
        generators.load_generator("deepsim-fc6", "cpu", tmp_path)


def test_if_a_file_that_is_not_a_state_dict_is_refused(tmp_path: Path) -> None:
    (tmp_path / "deepsim-fc6.pt").write_bytes(b"not a torch file")
    with pytest.raises(GeneratorWeightsMismatch, match="not a readable torch state dict"):
        generators.load_generator("deepsim-fc6", "cpu", tmp_path)


def test_a_session_on_fc6_uses_the_published_defaults_and_serves_256_pixel_images(
    make_api: Any, fc6_weights: Path
) -> None:
    api: TestClient = make_api(weights_dir=fc6_weights)
    response = api.post("/v1/sessions", json={"generator": "deepsim-fc6", "population_size": 4, "seed": 1})
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["session"]["config"]["optimizer"]["name"] == "cholesky-cma"  # fc6 has no default of its own
    assert created["session"]["config"]["optimizer"]["params"]["sigma"] == 3.0  # the published fc6 step
    image = api.get(created["generation"]["stimuli"][0]["url"])
    assert image.status_code == 200 and image.content[:8] == b"\x89PNG\r\n\x1a\n"
    import io

    from PIL import Image

    assert Image.open(io.BytesIO(image.content)).size == (256, 256)


def test_metric_cma_refreshed_at_its_mean_is_refused_on_fc6_where_the_exact_metric_is_out_of_reach(
    make_api: Any, fc6_weights: Path
) -> None:
    api: TestClient = make_api(weights_dir=fc6_weights)
    optimizer = {"name": "metric-cma", "params": {"refresh_every": 5, "basis": np.eye(4096)[:8].tolist()}}
    response = api.post("/v1/sessions", json={"generator": "deepsim-fc6", "population_size": 4, "optimizer": optimizer})
    assert_problem(response, 422, "refresh_every", "up to 512-d latent spaces; deepsim-fc6's is 4096-d")
    assert api.get("/v1/sessions").json()["total"] == 0


def test_a_session_on_a_generator_without_weights_is_a_problem_naming_the_file(make_api: Any, tmp_path: Path) -> None:
    api: TestClient = make_api(weights_dir=tmp_path / "empty")
    problem = assert_problem(api.post("/v1/sessions", json={"generator": "deepsim-fc6"}), 422, "deepsim-fc6.pt")
    assert problem["type"] == "/problems/generator-unavailable" and "package" not in problem  # no package to install
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "biggan-deep-256.pt").write_bytes(b"not a torch file")
    problem = assert_problem(api.post("/v1/sessions", json={"generator": "biggan-deep-256"}), 422, "biggan-deep-256.pt")
    assert problem["type"] == "/problems/generator-unavailable"
    unknown = assert_problem(api.post("/v1/sessions", json={"generator": "no-such-gan"}), 422, "no-such-gan")
    assert unknown["type"] == "/problems/invalid-session-config"
    assert api.get("/v1/sessions").json()["total"] == 0


# BigGAN-deep 256 in the layout of the pytorch-pretrained-biggan port: spectral-normalized layers carry
# weight_orig / weight_u / weight_v; batch norms carry statistics for 51 truncations.
BIGGAN_BLOCKS = [(False, 16, 16), (True, 16, 16), (False, 16, 16), (True, 16, 8), (False, 8, 8), (True, 8, 8),
                 (False, 8, 8), (True, 8, 4), (False, 4, 4), (True, 4, 2), (False, 2, 2), (True, 2, 1)]  # fmt: skip


def biggan_port_shapes(ch: int = 128) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {"embeddings.weight": (128, 1000)}

    def sn(name: str, out: int, *rest: int, bias: bool = True) -> None:
        shapes[f"{name}.weight_orig"] = (out, *rest)
        shapes[f"{name}.weight_u"] = (out,)
        shapes[f"{name}.weight_v"] = (int(np.prod(rest)),)
        if bias:
            shapes[f"{name}.bias"] = (out,)

    def batch_norm(name: str, channels: int) -> None:
        shapes[f"{name}.running_means"] = (51, channels)
        shapes[f"{name}.running_vars"] = (51, channels)
        sn(f"{name}.scale", channels, 256, bias=False)
        sn(f"{name}.offset", channels, 256, bias=False)

    sn("generator.gen_z", 4 * 4 * 16 * ch, 256)
    index = 0
    for position, (_, cin, cout) in enumerate(BIGGAN_BLOCKS):
        if position == 8:  # self-attention at 64 x 64
            attention, channels = f"generator.layers.{index}", ch * cin
            sn(f"{attention}.snconv1x1_theta", channels // 8, channels, 1, 1, bias=False)
            sn(f"{attention}.snconv1x1_phi", channels // 8, channels, 1, 1, bias=False)
            sn(f"{attention}.snconv1x1_g", channels // 2, channels, 1, 1, bias=False)
            sn(f"{attention}.snconv1x1_o_conv", channels, channels // 2, 1, 1, bias=False)
            shapes[f"{attention}.gamma"] = (1,)
            index += 1
        block, middle = f"generator.layers.{index}", ch * cin // 4
        batch_norm(f"{block}.bn_0", ch * cin)
        sn(f"{block}.conv_0", middle, ch * cin, 1, 1)
        for k in (1, 2):
            batch_norm(f"{block}.bn_{k}", middle)
            sn(f"{block}.conv_{k}", middle, middle, 3, 3)
        batch_norm(f"{block}.bn_3", middle)
        sn(f"{block}.conv_3", ch * cout, middle, 1, 1)
        index += 1
    shapes["generator.bn.running_means"] = (51, ch)
    shapes["generator.bn.running_vars"] = (51, ch)
    shapes["generator.bn.weight"] = (ch,)
    shapes["generator.bn.bias"] = (ch,)
    sn("generator.conv_to_rgb", ch, ch, 3, 3)
    return shapes


def write_biggan_weights(folder: Path) -> None:
    """Random BigGAN-deep 256 weights in the port's layout (positive variances, small class gains)."""
    state = random_state(biggan_port_shapes())
    for key in state:
        if key.endswith("running_vars"):
            state[key] = state[key].abs() + 1.0
        if key.endswith(("scale.weight_orig", "offset.weight_orig")):
            state[key] = state[key] * 0.1
    torch.save(state, folder / "biggan-deep-256.pt")


@pytest.fixture(scope="module")
def biggan_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("biggan")
    write_biggan_weights(folder)
    return folder


def test_biggan_deep_256_loads_the_port_s_layout_and_decodes_256_d_codes(biggan_weights: Path) -> None:
    biggan = generators.load_generator("biggan-deep-256", "cpu", biggan_weights)
    codes = np.random.default_rng(0).standard_normal((2, 256)) * 0.5
    images = biggan.decode(codes)
    assert tuple(images.shape) == (2, 3, 256, 256)
    assert float(images.min()) >= 0.0 and float(images.max()) <= 1.0 and float(images.std()) > 0.01
    np.testing.assert_allclose(biggan.decode(codes[:1]).numpy()[0], images.numpy()[0], atol=1e-4)


def test_spectral_normalization_is_folded_exactly_into_plain_weights() -> None:
    layer = torch.nn.utils.spectral_norm(torch.nn.Linear(6, 4))
    layer.train()
    for _ in range(20):
        layer(torch.randn(3, 6))  # power iterations settle u and v
    layer.eval()
    folded = generators.biggan_deep.fold_spectral_norm({k: v.detach() for k, v in layer.state_dict().items()})
    plain = torch.nn.Linear(6, 4)
    plain.load_state_dict(folded)
    x = torch.randn(5, 6)
    torch.testing.assert_close(plain(x), layer(x))


def test_if_a_biggan_file_of_another_model_names_the_mismatch(tmp_path: Path) -> None:
    shapes = biggan_port_shapes(ch=64)  # a smaller model's file
    torch.save({key: torch.zeros(shape) for key, shape in shapes.items()}, tmp_path / "biggan-deep-256.pt")
    with pytest.raises(GeneratorWeightsMismatch, match=r"wrong shapes: .*expected"):
        generators.load_generator("biggan-deep-256", "cpu", tmp_path)


def test_the_generator_list_says_which_generators_have_their_weights(make_api: Any, fc6_weights: Path) -> None:
    api: TestClient = make_api(weights_dir=fc6_weights)
    listed = {entry["name"]: entry for entry in api.get("/v1/generators").json()["data"]}
    assert set(listed) == set(generators.GENERATORS)
    assert listed["dcgan-faces"]["available"] and listed["dcgan-faces"]["weights_file"] is None
    assert listed["deepsim-fc6"]["available"] and listed["deepsim-fc6"]["latent_dim"] == 4096
    assert not listed["biggan-deep-256"]["available"]
    assert listed["biggan-deep-256"]["weights_file"] == "biggan-deep-256.pt"
    assert str(fc6_weights / "biggan-deep-256.pt") in listed["biggan-deep-256"]["unavailable_reason"]
    assert listed["deepsim-fc6"]["unavailable_reason"] is None

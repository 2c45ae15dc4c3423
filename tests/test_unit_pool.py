"""The fixed split of the pooled CNN units into tuning and held-out units, and the foreign units outside it."""

from __future__ import annotations

from collections import Counter

import numpy as np
import torch

from evostim.clients.simulation.mtcnn import MTCNN_MAP_SIZES, MTCNN_WIDTHS, load_mtcnn
from evostim.clients.simulation.neurons import UnitSpec
from evostim.clients.sweeps.unit_pool import foreign_layers, pool, responsive_units, split_units


def test_the_split_halves_every_layer_never_changes_and_a_small_panel_spans_all_layers() -> None:
    tuning, held_out = split_units("tuning"), split_units("held-out")
    pooled = [layer for layer in MTCNN_WIDTHS if layer not in foreign_layers()]
    assert len(pool()) == sum(MTCNN_WIDTHS[layer] for layer in pooled) == 812 and len(pooled) == 9
    assert set(tuning).isdisjoint(held_out) and set(tuning) | set(held_out) == set(pool())
    for layer in pooled:
        assert sum(unit.startswith(layer + ".") for unit in tuning) == MTCNN_WIDTHS[layer] // 2
    # Fixed by SPLIT_SEED, not by the time of day, nor by the networks added beside the pool since.
    assert tuning[:3] == ["onet.conv1.16", "onet.conv2.25", "onet.conv3.44"]
    assert held_out[:3] == ["onet.conv1.25", "onet.conv2.48", "onet.conv3.27"]
    first_nine = Counter(unit.rsplit(".", 1)[0] for unit in held_out[:9])
    assert set(first_nine) == set(pooled) and set(first_nine.values()) == {1}
    for unit in held_out[:20]:
        UnitSpec.parse(unit)  # every name is a unit a panel can load


def test_responsive_units_leave_out_units_silent_on_random_images() -> None:
    held_out = split_units("held-out")
    assert held_out[28] == "onet.conv2.9"  # a unit whose centre never fires on random faces
    assert responsive_units("held-out", 29) == held_out[:28] + held_out[29:30]


def test_the_foreign_units_are_pnet_and_the_heads_outside_the_pool() -> None:
    foreign = split_units("foreign")
    assert set(foreign).isdisjoint(pool()) and len(foreign) == len(set(foreign)) == 86  # PNet 64, heads 22
    assert {unit.split(".")[0] for unit in foreign} == {"onet", "rnet", "pnet"}
    assert sum(unit.startswith("pnet.") for unit in foreign) == 10 + 16 + 32 + 2 + 4
    assert "onet.dense6_1.1" in foreign  # ONet's face logit
    for unit in foreign:
        UnitSpec.parse(unit)


def test_every_layer_has_the_width_and_map_the_shipped_networks_compute() -> None:
    images = torch.rand(2, 3, 64, 64)
    for net in ("onet", "rnet", "pnet"):
        with torch.inference_mode():
            outputs = load_mtcnn(net)(images)  # loads every shipped tensor, heads included (strict)
        for layer, values in outputs.items():
            name = f"{net}.{layer}"
            side = MTCNN_MAP_SIZES[name]
            assert values.shape[1:] == ((MTCNN_WIDTHS[name], side, side) if side else (MTCNN_WIDTHS[name],))
    # The heads read the trunk's last layer after its PReLU, as in facenet-pytorch (checked against its own
    # ONet/RNet/PNet once: equal to 1e-4; it is not imported here, its __init__ needs requests).
    for net, last, head in (("onet", "dense5", "dense6_1"), ("pnet", "conv3", "conv4_1")):
        network = load_mtcnn(net)
        with torch.inference_mode():
            outputs = network(images)
            weight, bias = getattr(network, head).weight.reshape(2, -1), getattr(network, head).bias
            by_hand = outputs[last].reshape(2, -1) @ weight.T + bias
        assert np.allclose(by_hand.numpy(), outputs[head].reshape(2, -1).numpy(), atol=1e-5)

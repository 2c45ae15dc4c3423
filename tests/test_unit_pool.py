"""The fixed split of every CNN unit into tuning and held-out units."""

from __future__ import annotations

from collections import Counter

from evostim.clients.simulation.mtcnn import MTCNN_WIDTHS
from evostim.clients.simulation.neurons import UnitSpec
from evostim.clients.sweeps.unit_pool import pool, responsive_units, split_units


def test_the_split_halves_every_layer_never_changes_and_a_small_panel_spans_all_layers() -> None:
    tuning, held_out = split_units("tuning"), split_units("held-out")
    assert len(pool()) == sum(MTCNN_WIDTHS.values()) == 812
    assert set(tuning).isdisjoint(held_out) and set(tuning) | set(held_out) == set(pool())
    for layer, width in MTCNN_WIDTHS.items():
        assert sum(unit.startswith(layer + ".") for unit in tuning) == width // 2
    assert split_units("held-out") == held_out  # fixed by SPLIT_SEED, not by the time of day
    first_nine = Counter(unit.rsplit(".", 1)[0] for unit in held_out[:9])
    assert set(first_nine) == set(MTCNN_WIDTHS) and set(first_nine.values()) == {1}
    for unit in held_out[:20]:
        UnitSpec.parse(unit)  # every name is a unit a panel can load


def test_responsive_units_leave_out_units_silent_on_random_images() -> None:
    held_out = split_units("held-out")
    assert held_out[28] == "onet.conv2.9"  # a unit whose centre never fires on random faces
    assert responsive_units("held-out", 29) == held_out[:28] + held_out[29:30]

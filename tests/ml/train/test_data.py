"""The train/val/test split keeps every source video (and so every identity) on one side."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from ml.train.data import SPLITS, dfdc_items, lfw_items, split_of


def test_no_source_video_on_two_sides(shared_data: Path) -> None:
    items = dfdc_items(shared_data)
    sides: dict[str, set[str]] = defaultdict(set)
    for item in items:
        sides[item.group].add(item.split)
    assert all(len(s) == 1 for s in sides.values())
    # A fake and the real video it was made from share a group, hence a side.
    by_video = {item.path.stem + ".mp4": item for item in items if item.label == 0}
    shared = [item for item in items if item.label == 1 and item.group.removeprefix("dfdc:") in by_video]
    assert shared, "the data set has fakes whose source real is present"
    assert all(item.split == by_video[item.group.removeprefix("dfdc:")].split for item in shared)


def test_split_sizes_are_near_80_10_10(shared_data: Path) -> None:
    items = dfdc_items(shared_data) + lfw_items(shared_data)
    counts = {split: sum(item.split == split for item in items) for split in SPLITS}
    total = sum(counts.values())
    assert 0.77 < counts["train"] / total < 0.83
    assert 0.08 < counts["val"] / total < 0.12
    assert 0.08 < counts["test"] / total < 0.12


def test_split_is_a_pure_function_of_the_group() -> None:
    assert split_of("dfdc:abc.mp4") == split_of("dfdc:abc.mp4")
    assert {split_of(f"g{i}") for i in range(100)} == set(SPLITS)

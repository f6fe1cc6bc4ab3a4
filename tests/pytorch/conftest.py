"""The tests that run exported scripts need PyTorch, which is not a dependency of bpcalc nor
of the default test group. Without it they are skipped, with the reason; with
BPCALC_TORCH_TESTS=require (what CI sets for the torch group) a missing torch is an error,
so a CI run cannot pass by skipping them all."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/pytorch/" in item.nodeid.replace("\\", "/"):
            item.add_marker(pytest.mark.torch)

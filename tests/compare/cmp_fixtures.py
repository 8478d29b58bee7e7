"""Fixtures shared by the output tests of ``uarbench compare``: one results folder (suite
``cmp`` of test_table.build_results: a floor, trained rows with 2-3 seeds, a row missing a
metric in one seed, a failed run) and its comparison table, built once per session. Imported
by the modules that use them (as tests/models/uar_helpers.py): a conftest.py here would shadow
tests/conftest.py for ``from conftest import ...``."""
from __future__ import annotations

import dataclasses

import pytest
from test_table import FAST, build_results

from uarbench.compare.table import build_comparison


@pytest.fixture(scope="session")
def cmp_results(tmp_path_factory):
    return build_results(tmp_path_factory.mktemp("cmp_results"))


@pytest.fixture(scope="session")
def cmp_table(cmp_results):
    root, bench = cmp_results
    return build_comparison(root, benchmark=bench, **FAST)


@pytest.fixture(scope="session")
def lower_is_better():
    """A function: (table, column key) -> the table with that column read as a lower-is-better
    metric (no such metric ships yet, so direction-aware writers are tested this way)."""
    def flip(table, key: str):
        columns = tuple(dataclasses.replace(c, higher_is_better=False) if c.key == key else c
                        for c in table.columns)
        return dataclasses.replace(table, columns=columns)
    return flip

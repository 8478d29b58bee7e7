"""Lazy registry entries ("module:object"): listed without importing their module, imported on
first use, and a built-in's name cannot be taken by another object."""
from __future__ import annotations

import sys

import pytest

from uarbench.errors import UarbenchError
from uarbench.registry import Registry


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    (tmp_path / "lazy_plugin_mod.py").write_text(
        "from uarbench.registry import Registry\n"
        "REG = None\n"
        "def make():\n    return 'made'\n"
        "def other():\n    return 'other'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "lazy_plugin_mod"
    sys.modules.pop("lazy_plugin_mod", None)


def test_lazy_entries_are_listed_before_and_imported_on_use(plugin):
    reg = Registry("thing", lazy={"made": f"{plugin}:make"})
    assert reg.names() == ["made"] and "made" in reg and plugin not in sys.modules
    assert reg.get("made")() == "made" and plugin in sys.modules
    with pytest.raises(UarbenchError, match="unknown thing 'nope'.*use one of: made"):
        reg.get("nope")


def test_a_builtin_name_cannot_be_taken(plugin):
    import importlib
    mod = importlib.import_module(plugin)
    reg = Registry("thing", lazy={"made": f"{plugin}:make"})
    with pytest.raises(ValueError, match="built-in"):
        reg.register("made")(mod.other)
    assert reg.register("made")(mod.make) is mod.make   # its own module registering it
    assert reg.get("made") is mod.make


def test_the_shipped_registries_list_every_builtin():
    from uarbench.conventions import CONVENTIONS, ORDER
    from uarbench.models import MODELS
    assert MODELS.names() == ["base", "constant", "nn_retrieval", "r2gen", "r2gencmn", "uar"]
    assert sorted(CONVENTIONS.names()) == sorted(ORDER)
    assert MODELS.get("r2gencmn").__name__ == "R2GenCMNModel"

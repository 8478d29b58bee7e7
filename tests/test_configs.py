"""The frozen-config base and the one override parser (uarbench.configs): every run config
round-trips through to_dict / from_dict with its nested configs; command-line strings and TOML
tables change fields (nested ones too) with one clear error for a bad field or value."""
from __future__ import annotations

import pytest

from uarbench.configs import FrozenConfig, apply_overrides
from uarbench.data.synth import SynthConfig
from uarbench.errors import UarbenchError
from uarbench.models.uar import UARConfig
from uarbench.training.config import TrainConfig
from uarbench.training.decoding import DecodeConfig


@pytest.mark.parametrize("cfg", [UARConfig.cpu_small(), TrainConfig.cpu_small(), DecodeConfig(),
                                 SynthConfig()], ids=lambda c: type(c).__name__)
def test_every_run_config_round_trips(cfg):
    assert isinstance(cfg, FrozenConfig)
    assert type(cfg).from_dict(cfg.to_dict()) == cfg
    with pytest.raises(UarbenchError, match="unknown .* fields \\['nope'\\]"):
        type(cfg).from_dict({**cfg.to_dict(), "nope": 1})


def test_strings_and_tables_are_one_parser():
    cfg = UARConfig.cpu_small()
    by_cli = apply_overrides(cfg, ["lsu=false", "d_model=64", "vq.steps=20", "dalle_encoder=none"],
                             what="model")
    by_toml = apply_overrides(cfg, {"lsu": False, "d_model": 64, "vq": {"steps": 20}},
                              what="model")
    assert by_cli == by_toml and by_cli.vq.steps == 20 and by_cli.vq.hidden == cfg.vq.hidden
    train = apply_overrides(TrainConfig.cpu_small(), {"lr": 1, "decode": {"beam_size": 5}},
                            what="train")
    assert train.lr == 1.0 and isinstance(train.lr, float) and train.decode.beam_size == 5
    for bad, match in ((["lsu=maybe"], "model.lsu must be true or false"),
                       (["d_model=big"], "model.d_model must be int"),
                       (["nope=1"], "bad override 'nope=1'"), (["lsu.x=1"], "bad override"),
                       ({"d_model": "64"}, "model.d_model must be int"),
                       ({"vq": {"nope": 1}}, "model.vq: unknown field")):
        with pytest.raises(UarbenchError, match=match):
            apply_overrides(cfg, bad, what="model")

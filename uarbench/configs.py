"""Frozen, typed configs: one base for every config a run records (UARConfig, TrainConfig,
DecodeConfig, the encoder-decoder baselines' config, SynthConfig, VQConfig) and ONE override
parser for the two ways users change a field: ``FIELD=VALUE`` strings on the command line
(``--set lsu=false --set vq.steps=20``) and typed TOML tables in benchmark.toml
(``set = { lsu = false, vq = { steps = 20 } }``).

A leaf module: it imports nothing of uarbench but the error type, so every layer can use it.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Sequence, TypeVar

from uarbench.errors import UarbenchError

C = TypeVar("C", bound="FrozenConfig")


class FrozenConfig:
    """Base of the ``@dataclass(frozen=True)`` configs: ``to_dict`` (the ``asdict`` form a
    checkpoint or run record stores), ``from_dict`` (its inverse: unknown keys are an error,
    nested configs are rebuilt from their dicts), ``replace``. Validation is each config's
    ``__post_init__``, so a config that exists is valid."""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls: type[C], data: Mapping[str, Any]) -> C:
        fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise UarbenchError(f"unknown {cls.__name__} fields {unknown}.",
                                fix="remove them or upgrade uarbench to the version that wrote "
                                    "them.")
        values = dict(data)
        defaults = cls()  # every config here has defaults for every field
        for name, value in data.items():
            current = getattr(defaults, name)
            if isinstance(current, FrozenConfig) and isinstance(value, Mapping):
                values[name] = type(current).from_dict(value)
        return cls(**values)

    def replace(self: C, **changes: Any) -> C:
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]


def apply_overrides(cfg: C, overrides: Sequence[str] | Mapping[str, Any], *, what: str) -> C:
    """A copy of ``cfg`` with ``overrides`` applied: ``["lsu=false", "vq.steps=20"]`` (strings,
    each parsed to the type of the field's current value) or a TOML mapping (typed values checked
    against the field's type; an int is accepted for a float; a nested table for a nested
    config). One clear error names ``what``, the field and the fix."""
    if isinstance(overrides, Mapping):
        return _apply_mapping(cfg, overrides, what)
    nested: dict[str, list[str]] = {}
    flat: dict[str, Any] = {}
    known = _field_names(cfg)
    for pair in overrides:
        key, sep, text = pair.partition("=")
        head, dot, rest = key.partition(".")
        if not sep or head not in known or (dot and not isinstance(getattr(cfg, head),
                                                                   FrozenConfig)):
            raise UarbenchError(f"bad override {pair!r} for {what}.",
                                fix=f"use FIELD=VALUE with FIELD one of: "
                                    f"{', '.join(sorted(known))}.")
        if dot:
            nested.setdefault(head, []).append(f"{rest}={text}")
        else:
            flat[key] = parse_like(getattr(cfg, key), text, f"{what}.{key}")
    for head, pairs in nested.items():
        flat[head] = apply_overrides(getattr(cfg, head), pairs, what=f"{what}.{head}")
    return cfg.replace(**flat)


def _field_names(cfg: Any) -> set[str]:
    return {f.name for f in dataclasses.fields(cfg)}


def _apply_mapping(cfg: C, mapping: Mapping[str, Any], what: str) -> C:
    known = _field_names(cfg)
    bad = [k for k in mapping if k not in known]
    if bad:
        raise UarbenchError(f"{what}: unknown field(s) {', '.join(map(repr, bad))}.",
                            fix=f"use fields of {type(cfg).__name__}: {', '.join(sorted(known))}.")
    changes: dict[str, Any] = {}
    for k, v in mapping.items():
        cur = getattr(cfg, k)
        if isinstance(cur, FrozenConfig) and isinstance(v, Mapping):
            changes[k] = _apply_mapping(cur, v, f"{what}.{k}")
            continue
        ok = (cur is None or v is None or type(v) is type(cur)
              or (isinstance(cur, float) and type(v) is int))
        if not ok:
            raise UarbenchError(f"{what}.{k} must be {type(cur).__name__}, got {v!r}.",
                                fix="give a value of that type.")
        changes[k] = float(v) if isinstance(cur, float) and v is not None else v
    return cfg.replace(**changes)


def parse_like(current: Any, text: str, key: str) -> Any:
    """``text`` parsed to the type of ``current`` (bool: true/false/1/0/yes/no/on/off; a str or
    None field: none/null -> None)."""
    if isinstance(current, bool):
        if text.lower() in ("true", "1", "yes", "on"):
            return True
        if text.lower() in ("false", "0", "no", "off"):
            return False
        raise UarbenchError(f"{key} must be true or false, got {text!r}.", fix="use true/false.")
    if current is None or isinstance(current, str):
        return None if text.lower() in ("none", "null") else text
    try:
        return type(current)(text)
    except (TypeError, ValueError):
        raise UarbenchError(f"{key} must be {type(current).__name__}, got {text!r}.",
                            fix="give a value of that type.") from None

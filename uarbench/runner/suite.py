"""Suites: named, versioned declarations in benchmark.toml, expanded into one RunSpec per
(row, seed).

A suite lists rows (one table row each: a registered model plus config overrides) and may set
the dataset, preset, seeds, synth-cxr build and training overrides for all its rows::

    [suites.ablations]
    description = "UAR Table 2"
    rows = [ { name = "base", model = "base" },
             { name = "a", model = "uar", set = { lsu = true, cra_integration = false } } ]

Precedence for every value: command line > row > suite > [runner] defaults > code defaults.
Every problem in the file is reported with its key, all at once (``uarbench validate``).
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any

from uarbench.conventions.base import DEFAULT_CONVENTION
from uarbench.benchmark import BenchmarkFile, load_benchmark
from uarbench.configs import apply_overrides
from uarbench.errors import UarbenchError

PRESETS = ("cpu-small", "paper")
ROW_NAME = re.compile(r"^[A-Za-z0-9_.+-]+$")
SUITE_KEYS = {"description", "rows", "dataset", "preset", "seeds", "synth", "train", "set"}
ROW_KEYS = {"name", "model", "set", "train", "params", "description"}


@dataclass(frozen=True)
class Row:
    name: str
    model: str
    set: dict = field(default_factory=dict)       # model config overrides (trained models)
    train: dict = field(default_factory=dict)     # TrainConfig overrides
    params: dict = field(default_factory=dict)    # constructor arguments (floors)
    description: str = ""


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    rows: tuple[Row, ...]
    dataset: str
    preset: str
    seeds: tuple[int, ...]
    synth: dict
    train: dict
    set: dict


@dataclass(frozen=True)
class RunSpec:
    """Everything one run needs, picklable (it travels to worker processes and Ray tasks)."""

    suite: str
    row: str
    model: str
    seed: int
    preset: str
    dataset: str
    data_root: str | None
    device: str
    model_set: tuple[tuple[str, Any], ...] = ()
    train_set: tuple[tuple[str, Any], ...] = ()
    params: tuple[tuple[str, Any], ...] = ()
    synth: tuple[tuple[str, Any], ...] = ()   # the full SynthConfig of a synth-cxr run
    # how the test split is scored beyond NLG: labeler, labeler_kwargs, radgraph_model(_type)
    scoring: tuple[tuple[str, Any], ...] = ()
    benchmark_version: str = ""

    @property
    def name(self) -> str:
        return f"{self.row}-seed{self.seed}"


def load_suites(bench: BenchmarkFile | None = None) -> dict[str, Suite]:
    """All suites of benchmark.toml, validated (every problem reported with its key)."""
    from uarbench.data.datasets import DATASETS
    from uarbench.models import MODELS
    bench = bench or load_benchmark()
    runner = bench.runner
    problems: list[str] = []
    suites: dict[str, Suite] = {}
    for sname, body in bench.suites.items():
        key = f"suites.{sname}"
        if not _table_ok(body, key, SUITE_KEYS, problems):
            continue
        dataset = body.get("dataset", bench.default_dataset)
        if dataset not in DATASETS:
            problems.append(f"{key}.dataset: unknown dataset {dataset!r}")
        preset = body.get("preset", runner.get("preset", "cpu-small"))
        if preset not in PRESETS:
            problems.append(f"{key}.preset: {preset!r} not in {PRESETS}")
        seeds = body.get("seeds", runner.get("seeds", [0]))
        if not (isinstance(seeds, list) and seeds and all(isinstance(s, int) and not
                                                           isinstance(s, bool) and s >= 0
                                                           for s in seeds)):
            problems.append(f"{key}.seeds must be a non-empty list of integers >= 0")
            seeds = [0]
        elif len(set(seeds)) != len(seeds):
            problems.append(f"{key}.seeds {seeds} repeats a seed (two runs would share one "
                            "folder)")
            seeds = list(dict.fromkeys(seeds))
        tables = _subtables(body, key, ("synth", "train", "set"), problems)
        rows_raw = body.get("rows", [])
        if not isinstance(rows_raw, list) or not rows_raw:
            problems.append(f"{key}.rows must be a non-empty list of tables")
            rows_raw = []
        rows: list[Row] = []
        names: set[str] = set()
        for i, r in enumerate(rows_raw):
            rkey = f"{key}.rows[{i}]"
            if not _table_ok(r, rkey, ROW_KEYS, problems):
                continue
            name, model = r.get("name"), r.get("model")
            if not isinstance(name, str) or not ROW_NAME.match(name):
                problems.append(f"{rkey}.name must be a string of letters, digits, _ . + -")
                continue
            if name in names:
                problems.append(f"{rkey}.name {name!r} appears twice in {key}")
            names.add(name)
            if model not in MODELS:
                problems.append(f"{rkey}.model: unknown model {model!r} "
                                f"(known: {', '.join(MODELS.names())})")
                continue
            sub = _subtables(r, rkey, ("set", "train", "params"), problems)
            row = Row(name, model, sub["set"], sub["train"], sub["params"],
                      str(r.get("description", "")))
            problems += _check_row(rkey, row, tables, MODELS.get(model))
            rows.append(row)
        suites[sname] = Suite(sname, str(body.get("description", "")), tuple(rows), dataset,
                              preset, tuple(seeds), tables["synth"], tables["train"], tables["set"])
    if problems:
        raise UarbenchError("invalid benchmark file: " + "; ".join(problems) + ".",
                            file=bench.path, fix="correct the keys named above.")
    return suites


def _subtables(body: dict, key: str, names: tuple[str, ...], problems: list[str]) -> dict:
    """name -> body[name] for each of ``names`` (absent: {}); one that is not a table is noted
    as a problem and read as {}."""
    out = {}
    for t in names:
        out[t] = body.get(t, {})
        if not isinstance(out[t], dict):
            problems.append(f"{key}.{t} must be a table, got {type(out[t]).__name__}")
            out[t] = {}
    return out


def _table_ok(value, key: str, known: set[str], problems: list[str]) -> bool:
    """False (with the problem noted) unless ``value`` is a table; unknown keys are noted too."""
    if not isinstance(value, dict):
        problems.append(f"{key} must be a table")
        return False
    for k in sorted(set(value) - known):
        problems.append(f"{key}.{k}: unknown key (known: {', '.join(sorted(known))})")
    return True


@functools.lru_cache(maxsize=None)
def _cpu_small(config_class: type):
    """The cpu-small preset of a (frozen) config class, built once per validation."""
    return config_class.cpu_small()


def _check_row(key: str, row: Row, tables: dict, model_cls: type) -> list[str]:
    """Overrides name real fields with values of the right type (tried on the cpu-small preset)."""
    from uarbench.training.config import TrainConfig
    problems = []
    if hasattr(model_cls, "config_class"):
        for what, cfg, mapping in (("set", _cpu_small(model_cls.config_class),
                                    {**tables["set"], **row.set}),
                                   ("train", _cpu_small(TrainConfig),
                                    {**tables["train"], **row.train})):
            try:
                apply_overrides(cfg, mapping, what=f"{key}.{what}")
            except UarbenchError as e:
                problems.append(e.problem.rstrip("."))
        if row.params:
            problems.append(f"{key}.params: model {row.model!r} is trained; use set / train")
    elif row.set or row.train:
        problems.append(f"{key}: model {row.model!r} is not trained; use params, not set / train")
    return problems


def expand_suite(suite: Suite, *, bench: BenchmarkFile | None = None, dataset: str | None = None,
                 data_root: str | None = None, preset: str | None = None,
                 seeds: list[int] | None = None, device: str = "auto",
                 scoring: dict | None = None) -> list[RunSpec]:
    """One RunSpec per (row, seed), in row order then seed order. A synth-cxr run carries its
    whole build config (benchmark.toml's [datasets.synth-cxr] updated by the suite's synth)."""
    bench = bench or load_benchmark()
    ds = dataset or suite.dataset
    if preset is not None and preset not in PRESETS:
        raise UarbenchError(f"unknown preset {preset!r}.", fix=f"use one of {', '.join(PRESETS)}.")
    synth = tuple(sorted({**bench.synth, **suite.synth}.items())) if ds == "synth-cxr" else ()
    # the scoring convention: the command line's, else benchmark.toml's; named in the spec only
    # when it is not the default (so runs scored by default keep their identity)
    scoring = dict(scoring or {})
    convention = scoring.pop("convention", None) or bench.convention
    if convention != DEFAULT_CONVENTION:
        scoring["convention"] = convention
    from uarbench.models import MODELS
    all_seeds = list(seeds if seeds is not None else suite.seeds)
    out = []
    for row in suite.rows:
        # a floor is fitted, not trained: it does not depend on the seed, so it runs once (with
        # the first seed) and its one run is paired with every seed of the trained rows
        floor = not hasattr(MODELS.get(row.model), "config_class")
        for seed in all_seeds[:1] if floor else all_seeds:
            out.append(RunSpec(
                suite=suite.name, row=row.name, model=row.model, seed=int(seed),
                preset=preset or suite.preset, dataset=ds,
                data_root=None if data_root is None else str(data_root), device=device,
                model_set=tuple(sorted({**suite.set, **row.set}.items())),
                train_set=tuple(sorted({**suite.train, **row.train}.items())),
                params=tuple(sorted(row.params.items())), synth=synth,
                scoring=_freeze(scoring),
                benchmark_version=bench.version))
    return out


def _freeze(d: dict) -> tuple:
    """A hashable, picklable form of a small dict of scoring options (paths as strings)."""
    return tuple(sorted((k, _freeze(v) if isinstance(v, dict) else
                         (None if v is None else v if isinstance(v, (int, float, str, bool))
                          else str(v))) for k, v in d.items()))


def thaw(t: tuple) -> dict:
    return {k: thaw(v) if isinstance(v, tuple) else v for k, v in t}

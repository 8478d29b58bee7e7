"""Loading ``benchmark.toml`` (tomllib) into a frozen, validated :class:`BenchmarkFile`.

Precedence for a value: command line > benchmark.toml > code defaults. Every problem in the
file is reported with its key, all at once.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import uarbench
from uarbench.errors import UarbenchError

DEFAULT_PATH = Path(uarbench.__file__).resolve().parents[1] / "benchmark.toml"


@dataclass(frozen=True)
class BenchmarkFile:
    path: Path
    version: str
    default_dataset: str
    nlg_metrics: tuple[str, ...]
    convention: str          # the default scoring convention (uarbench.conventions)
    synth: dict          # SynthConfig keyword arguments for the default synth-cxr build
    runner: dict = field(default_factory=dict)   # [runner]: default preset, seeds, jobs
    suites: dict = field(default_factory=dict)   # [suites.*], validated by uarbench.runner.suite

    def synth_config(self):
        from uarbench.data.synth import SynthConfig
        return SynthConfig(**self.synth)


def find_benchmark_file(path: str | Path | None = None) -> Path | None:
    """``path`` if given, else ./benchmark.toml, else the one beside the installed package."""
    if path is not None:
        return Path(path)
    for candidate in (Path.cwd() / "benchmark.toml", DEFAULT_PATH):
        if candidate.is_file():
            return candidate
    return None


def load_benchmark(path: str | Path | None = None) -> BenchmarkFile:
    from uarbench.data.datasets import DATASETS
    from uarbench.conventions import CONVENTIONS, DEFAULT_CONVENTION
    from uarbench.metrics.nlg import NLG_FAMILIES
    found = find_benchmark_file(path)
    if found is None or not found.is_file():
        raise UarbenchError("benchmark.toml not found.", file=found,
                            fix="run from the uarbench checkout or pass its path.")
    try:
        # a UTF-8 BOM (some Windows editors write one) is not part of the TOML
        data = tomllib.loads(found.read_text(encoding="utf-8-sig"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise UarbenchError(f"not valid TOML: {e}.", file=found, fix="repair the file.") from None
    except RecursionError:
        raise UarbenchError("not valid TOML: arrays or tables nested too deeply to read.",
                            file=found, fix="repair the file.") from None
    except OSError as e:
        raise UarbenchError(f"cannot read the file ({e.strerror or e}).", file=found,
                            fix="check its permissions.") from None
    problems: list[str] = []
    known_tables = ("benchmark", "metrics", "datasets", "runner", "suites")
    for key in data:
        if key not in known_tables:
            problems.append(f"[{key}]: unknown top-level key (known: {', '.join(known_tables)})")
        elif not isinstance(data[key], dict):
            problems.append(f"{key} must be a table ([{key}]), not {data[key]!r}"[:200])
    # the tables only: a `metrics = "x"` is reported above and read as an empty table
    data = {k: v for k, v in data.items() if isinstance(v, dict)}

    def get(table: str, key: str, typ: type, default=None):
        value = data.get(table, {}).get(key, default)
        if not isinstance(value, typ):
            problems.append(f"{table}.{key} must be {typ.__name__} (got {value!r})")
        return value

    version = get("benchmark", "version", str)
    default_dataset = get("benchmark", "default_dataset", str, "synth-cxr")
    if isinstance(default_dataset, str) and default_dataset not in DATASETS:
        problems.append(f"benchmark.default_dataset: unknown dataset {default_dataset!r}")
    nlg = get("metrics", "nlg", list, list(NLG_FAMILIES))
    for name in nlg if isinstance(nlg, list) else []:
        if name not in NLG_FAMILIES:
            problems.append(f"metrics.nlg: unknown metric family {name!r} (known: {', '.join(NLG_FAMILIES)})")
    if "reference_mode" in data.get("metrics", {}):
        problems.append("metrics.reference_mode: replaced by metrics.convention (\"r2gen\", or "
                        "\"r2gen_compat\" for R2Gen's truncated references)")
    convention = get("metrics", "convention", str, DEFAULT_CONVENTION)
    if isinstance(convention, str) and convention not in CONVENTIONS:
        problems.append(f"metrics.convention: unknown convention {convention!r} (known: "
                        f"{', '.join(CONVENTIONS.names())})")
    synth = data.get("datasets", {}).get("synth-cxr", {})
    from dataclasses import fields
    from uarbench.data.synth import SynthConfig
    known = {f.name for f in fields(SynthConfig)}
    if not isinstance(synth, dict):
        problems.append(f"datasets.synth-cxr must be a table, not {synth!r}"[:200])
        synth = {}
    for key in synth:
        if key not in known:
            problems.append(f"datasets.synth-cxr.{key}: unknown field (known: {', '.join(sorted(known))})")
    try:          # the values too: `validate` finds a bad build before a run generates it
        SynthConfig(**{k: v for k, v in synth.items() if k in known})
    except UarbenchError as e:
        problems.append(f"datasets.synth-cxr: {e.problem.rstrip('.')}")
    runner = data.get("runner", {})
    for key in sorted(set(runner) - {"preset", "seeds", "jobs"}):
        problems.append(f"runner.{key}: unknown key (known: jobs, preset, seeds)")
    jobs = runner.get("jobs", 0)
    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 0:
        problems.append(f"runner.jobs must be an integer >= 0 (got {jobs!r})")
    suites = data.get("suites", {})
    if not isinstance(suites, dict):
        problems.append("suites must be a table of [suites.NAME] tables")
        suites = {}
    if problems:
        raise UarbenchError("invalid benchmark file: " + "; ".join(problems) + ".", file=found,
                            fix="correct the keys named above.")
    return BenchmarkFile(found, version, default_dataset, tuple(nlg), convention, dict(synth),
                         dict(runner), dict(suites))


def default_synth_config():
    """The synth-cxr build named by benchmark.toml (SynthConfig defaults when there is none)."""
    found = find_benchmark_file()
    if found is None:
        from uarbench.data.synth import SynthConfig
        return SynthConfig()
    return load_benchmark(found).synth_config()

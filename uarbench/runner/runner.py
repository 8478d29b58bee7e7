"""``uarbench run --suite NAME``: expand the suite, prepare what runs share (the dataset build and
the frozen LSU tokenizers), execute the runs that are not complete, and report.

Executors: ``local`` runs one process per run, ``jobs`` at a time (``jobs`` 1 runs in this
process); ``ray`` submits each run as a Ray task (one GPU each where the cluster has GPUs) to a
local instance or ``ray_address``. Both write the same folders with the same skip / resume
rules. A failed run does not stop the suite: every failure is listed at the end with its log,
and :attr:`SuiteReport.ok` is False.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from uarbench.benchmark import load_benchmark
from uarbench.errors import UarbenchError
from uarbench.io import atomic_write_json
from uarbench.runner.execute import RunOutcome, execute_run, load_run_dataset, resolved_configs, status_of
from uarbench.runner.lock import IF_BUSY
from uarbench.runner.placement import Placed, Placement, plan_placement
from uarbench.progress import SuiteProgress, ensure_logging
from uarbench.runner.schedule import Task, expected_cost, plan_tasks, run_tasks
from uarbench.runner.suite import RunSpec, expand_suite, load_suites
from uarbench.timing import collect, phase

EXECUTORS = ("local", "ray")
PREPARE_FILE = "prepare.json"   # <out>/<suite>/: phases of the shared preparation


@dataclass
class SuiteReport:
    suite: str
    out: Path
    specs: list[RunSpec]
    outcomes: list[RunOutcome] = field(default_factory=list)
    statuses: dict[str, str] = field(default_factory=dict)   # dry run: run -> state

    @property
    def failures(self) -> list[RunOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]

    @property
    def ok(self) -> bool:
        return not self.failures


def plan_suite(suite: str, *, dataset: str | None = None, data_root: str | None = None,
               preset: str | None = None, seeds: list[int] | None = None,
               device: str = "auto", benchmark: str | Path | None = None,
               scoring: dict | None = None) -> list[RunSpec]:
    bench = load_benchmark(benchmark)
    suites = load_suites(bench)
    if suite not in suites:
        raise UarbenchError(f"unknown suite {suite!r}.",
                            fix=f"use one of: {', '.join(sorted(suites))} (see `uarbench ls`).")
    return expand_suite(suites[suite], bench=bench, dataset=dataset, data_root=data_root,
                        preset=preset, seeds=seeds, device=device, scoring=scoring)


def run_suite(suite: str, *, dataset: str | None = None, data_root: str | None = None,
              preset: str | None = None, seeds: list[int] | None = None, device: str = "auto",
              out: str | Path = "results", overwrite: bool = False, dry_run: bool = False,
              executor: str = "local", jobs: int | None = None, ray_address: str | None = None,
              cache_dir: str | None = None, benchmark: str | Path | None = None,
              scoring: dict | None = None, if_busy: str = "skip",
              share_stage1: bool = True, gpus_per_run: float = 1.0) -> SuiteReport:
    """Run every incomplete run of ``suite`` (see the module docstring); never raises for a
    failing run: check :attr:`SuiteReport.failures`. ``scoring``: how test splits are scored
    beyond NLG (:func:`uarbench.evaluate.evaluate` arguments ``labeler``, ``labeler_kwargs``,
    ``radgraph_model``, ``radgraph_model_type``); part of each run's identity. ``if_busy``: what
    to do with a run another process is writing (:mod:`uarbench.runner.lock`): skip, wait,
    fail. ``share_stage1``: runs with the same stage 1 train it once
    (:mod:`uarbench.training.shared_stage1`; the results are the same either way). Placement:
    a local suite on CUDA runs one job per visible GPU (``jobs`` = jobs per GPU there; see
    :mod:`uarbench.runner.placement`); on Ray a trained run asks ``gpus_per_run`` GPUs
    (fractional allowed), a floor none."""
    if executor not in EXECUTORS:
        raise UarbenchError(f"unknown executor {executor!r}.", fix=f"use one of {EXECUTORS}.")
    if if_busy not in IF_BUSY:
        raise UarbenchError(f"unknown --if-busy {if_busy!r}.", fix=f"use one of {IF_BUSY}.")
    specs = plan_suite(suite, dataset=dataset, data_root=data_root, preset=preset, seeds=seeds,
                       device=device, benchmark=benchmark, scoring=scoring)
    out = Path(out)
    report = SuiteReport(suite, out, specs)
    report.statuses = {s.name: status_of(s, out) for s in specs}
    if dry_run:
        return report
    todo = [s for s in specs if overwrite or report.statuses[s.name] != "complete"]
    report.outcomes = [RunOutcome(s.name, "skipped", str(out / s.suite / s.name))
                       for s in specs if s not in todo]
    placement = plan_placement(device, jobs) if executor == "local" else Placement()
    local_jobs = (placement.workers if placement.on_gpus
                  else _local_jobs(jobs, benchmark, len(todo)) if executor == "local" else 1)
    tokenizer_of: dict[str, Path] = {}
    if todo:
        with collect() as times:
            tokenizer_of = _prepare(todo, cache_dir)
            if executor == "ray":  # Ray tasks find their tokenizers fitted
                first = {}   # tokenizer path -> the first run that needs it
                for spec in todo:
                    if spec.name in tokenizer_of:
                        first.setdefault(tokenizer_of[spec.name], spec)
                with phase("tokenizer"):
                    for spec in first.values():
                        _fit_tokenizer(spec, cache_dir)
        prepared = {"phases_s": times.rounded(), "runs": [s.name for s in todo]}
        # where the shared preparation's time went (benchmarks/bench_suite.py reads it)
        atomic_write_json(out / suite / PREPARE_FILE, prepared)
    if executor == "ray":
        report.outcomes += _run_ray(todo, out, overwrite, ray_address, cache_dir, if_busy,
                                    share_stage1, gpus_per_run)
    else:
        tasks = plan_tasks(todo, tokenizer_of, share_stage1)
        fit_seconds: dict[str, float] = {}
        report.outcomes += _run_local(tasks, local_jobs, _Options(
            str(out), overwrite, cache_dir, if_busy, share_stage1), fit_seconds, placement)
        if fit_seconds:  # fitted in the workers, beside the runs
            prepared["tokenizer_fits_s"] = {k: round(v, 2) for k, v in sorted(fit_seconds.items())}
            atomic_write_json(out / suite / PREPARE_FILE, prepared)
    order = {s.name: i for i, s in enumerate(specs)}
    report.outcomes.sort(key=lambda o: order[o.run])
    return report


def measured_costs(specs: list[RunSpec], out: str | Path,
                   expected: dict[str, float]) -> dict[str, float]:
    """Each run's expected seconds for the suite's ETA: its own earlier wall time where the
    results folder holds its record (a rerun with --overwrite), else the mean wall time of the
    same row's recorded runs (other seeds, earlier calls), else the scheduler's cost model.
    Reads each row's records once, without hashing their files (an estimate, not a result)."""
    from uarbench.store import read_record
    walls: dict[tuple[str, str], dict[str, float]] = {}  # (suite, row) -> run -> wall
    for suite, row in {(s.suite, s.row) for s in specs}:
        found = walls[suite, row] = {}
        for folder in (Path(out) / suite).glob(f"{row}-seed*"):
            record = read_record(folder)
            if record and record.get("row") == row and record.get("wall_s"):
                found[folder.name] = float(record["wall_s"])
    costs = {}
    for s in specs:
        row = walls[s.suite, s.row]
        costs[s.name] = row.get(s.name) or (sum(row.values()) / len(row) if row
                                             else expected[s.name])
    return costs


def ray_task(fn, spec: RunSpec, cluster_gpus: float, gpus_per_run: float):
    """``fn`` as a Ray task sized for ``spec``: a trained run asks ``gpus_per_run`` GPUs where
    the cluster has any, a floor asks none."""
    import ray
    from uarbench.training.run import trainable
    gpus = gpus_per_run if cluster_gpus and trainable(spec.model) else 0
    return ray.remote(num_cpus=1, num_gpus=gpus, max_retries=0)(fn)


def _local_jobs(jobs: int | None, benchmark, n_runs: int) -> int:
    n = jobs if jobs else (load_benchmark(benchmark).runner.get("jobs", 0) or os.cpu_count() or 1)
    return min(n, max(n_runs, 1))


def _prepare(specs: list[RunSpec], cache_dir: str | None) -> dict[str, Path]:
    """Build each distinct dataset once (synth-cxr is generated and cached) and find the frozen
    LSU tokenizers not fitted yet -> run name -> tokenizer cache path (one per seed and
    tokenizer config; fitted by :func:`_fit_tokenizer`)."""
    from uarbench.models import MODELS
    from uarbench.training.image_tokens import tokenizer_path
    from uarbench.training.run import trainable
    datasets = {}
    tokenizer_of: dict[str, Path] = {}
    for spec in specs:
        key = (spec.dataset, spec.data_root, spec.synth)
        if key not in datasets:
            with phase("data"):
                datasets[key] = load_run_dataset(spec)
        if trainable(spec.model):
            model_cfg, train_cfg = resolved_configs(spec)
            if MODELS.get(spec.model).uses_image_tokens(model_cfg):
                path = tokenizer_path(model_cfg, datasets[key].content_hash, train_cfg.seed,
                                      cache_dir, device=fit_device(train_cfg))
                if path is not None and not path.is_file():
                    tokenizer_of[spec.name] = path
    return tokenizer_of


def _fit_tokenizer(spec: RunSpec, cache_dir: str | None) -> None:
    """Fit (and cache) the LSU tokenizer of ``spec``'s run (on the fit's fixed thread count,
    so the bytes are those of any other fit of it)."""
    from uarbench.training.run import image_tokenizer_for
    model_cfg, train_cfg = resolved_configs(spec)
    image_tokenizer_for(load_run_dataset(spec), model_cfg, train_cfg.seed, cache_dir,
                        device=fit_device(train_cfg))


def fit_device(train_cfg):
    """The device a run fits its tokenizer on: the run's own (part of the tokenizer's key)."""
    from uarbench.training.trainer import resolve_device
    return resolve_device(train_cfg.device)


@dataclass(frozen=True)
class _Options:
    """How every run of one ``run_suite`` call executes (picklable: workers receive it)."""
    out: str
    overwrite: bool
    cache_dir: str | None
    if_busy: str
    share_stage1: bool

    def do(self, task: Task, slot: int) -> RunOutcome | float:
        ensure_logging()  # a worker logs as its parent was told to
        if task.kind == "fit":
            t0 = time.perf_counter()
            _fit_tokenizer(task.spec, self.cache_dir)
            return time.perf_counter() - t0
        return execute_run(task.spec, self.out, overwrite=self.overwrite, position=1 + slot,
                           cache_dir=self.cache_dir, if_busy=self.if_busy,
                           share_stage1=self.share_stage1)


def needs_gpu(task: Task) -> bool:
    """Tokenizer fits and trained runs take a GPU; floors run on the CPU."""
    from uarbench.training.run import trainable
    return task.kind == "fit" or trainable(task.spec.model)


def _run_local(tasks: list[Task], jobs: int, opts: _Options, fit_seconds: dict[str, float],
               placement: Placement = Placement()) -> list[RunOutcome]:
    runs = [t for t in tasks if t.kind == "run"]
    progress = SuiteProgress(runs[0].spec.suite if runs else "",
                             measured_costs([t.spec for t in runs], opts.out,
                                            {t.name: t.cost for t in runs}))
    do = Placed(opts.do, placement, needs_gpu) if placement.on_gpus else opts.do
    try:
        outcomes = run_tasks(tasks, jobs, do, opts.out,
                             on_run_done=lambda o: progress.run_done(o.run, o.status, o.wall_s),
                             fit_seconds=fit_seconds, fresh_workers=placement.on_gpus)
    finally:
        progress.close()
    return outcomes


def _run_ray(specs, out, overwrite, address, cache_dir, if_busy="skip",
             share_stage1=True, gpus_per_run: float = 1.0) -> list[RunOutcome]:
    try:
        import ray
    except ImportError:
        raise UarbenchError("--executor ray needs the ray package.",
                            fix="pip install 'uarbench[scale]' (or pip install ray).") from None
    started = not ray.is_initialized()
    if started:
        ray.init(address=address, include_dashboard=False, log_to_driver=False,
                 ignore_reinit_error=True)
    try:
        gpus = ray.cluster_resources().get("GPU", 0)
        pending = [ray_task(execute_run, s, gpus, gpus_per_run).remote(
            s, str(Path(out).resolve()), overwrite=overwrite, cache_dir=cache_dir,
            if_busy=if_busy, share_stage1=share_stage1) for s in specs]
        outcomes = []
        progress = SuiteProgress(specs[0].suite if specs else "", measured_costs(
            specs, out, {s.name: expected_cost(s) for s in specs}))
        try:
            while pending:
                ready, pending = ray.wait(pending, num_returns=1)
                outcome = ray.get(ready[0])
                outcomes.append(outcome)
                progress.run_done(outcome.run, outcome.status, outcome.wall_s)
        finally:
            progress.close()
        return outcomes
    finally:
        if started:
            ray.shutdown()

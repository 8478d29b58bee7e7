"""The order of a suite's local work: tokenizer fits and runs as one small dependency graph,
executed ``jobs`` at a time, the longest remaining chain first.

* An LSU run needs its frozen image tokenizer (one per seed and tokenizer config): each fit is a
  task of its own in a worker, so Base-path runs train while the tokenizers are fitted. A run
  whose fit failed fails with that error; the others go on.
* Runs with the same stage 1 (:mod:`uarbench.training.shared_stage1`: ablation row (e) and the
  two-stage UAR of the same seed) run one after the other, the cheapest (the one-stage run)
  first, so the next takes its stage 1 instead of training it at the same time. The order is
  soft: if the first fails, the next trains stage 1 itself.
* Priority: a task's expected cost plus the largest priority of what waits for it (its critical
  path), so long chains start first and the suite ends with short runs.

Costs are rough relative units (:func:`expected_cost`): only the order depends on them.
"""
from __future__ import annotations

import json
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Callable

from uarbench.runner.execute import RunOutcome, resolved_configs, run_dir_of
from uarbench.runner.suite import RunSpec

FIT_COST = 6.0   # a 300-step cpu-small VQ-VAE fit, in the units of expected_cost (~30 s)


@dataclass
class Task:
    name: str
    kind: str                 # "fit" or "run"
    spec: RunSpec
    cost: float
    needs: list[str] = field(default_factory=list)   # must succeed first (a run's tokenizer fit)
    after: list[str] = field(default_factory=list)   # must finish first (a shared stage 1)
    priority: float = 0.0


def _model_parts(spec: RunSpec):
    from uarbench.models import MODELS
    from uarbench.training.run import trainable
    if not trainable(spec.model):
        return None
    model_cfg, train_cfg = resolved_configs(spec)
    return MODELS.get(spec.model), model_cfg, train_cfg


def expected_cost(spec: RunSpec, *, without_stage1: bool = False) -> float:
    """A rough relative cost of a run: a floor 1; a trained run its epochs, more with image
    tokens, CRA integration and TIR (measured with benchmarks/bench_suite.py, cpu-small, 2 cores:
    Base 24-26 s, (a) 40-43 s, (e) 70-81 s, UAR's stage 2 alone 21-22 s, floors ~1 s).
    ``without_stage1``: what is left when the run takes its stage 1 from another."""
    parts = _model_parts(spec)
    if parts is None:
        return 1.0
    _, model_cfg, train_cfg = parts
    get = lambda name: bool(getattr(model_cfg, name, False))  # noqa: E731
    per_epoch = (1.0 + 0.6 * get("lsu") + 0.3 * get("cra_integration") + 0.2 * get("tir"))
    epochs = (0 if without_stage1 else train_cfg.epochs_stage1) + (
        train_cfg.epochs_stage2 if get("two_stage") and get("tir") else 0)
    return 1.0 + per_epoch * epochs


def stage1_group(spec: RunSpec) -> str | None:
    """Runs with equal groups have the same stage 1 (what decides it, short of the hashes the
    run computes itself: uarbench.training.shared_stage1.stage1_key)."""
    from uarbench.training.shared_stage1 import stage1_training
    parts = _model_parts(spec)
    if parts is None:
        return None
    cls, model_cfg, train_cfg = parts
    if not train_cfg.epochs_stage1:
        return None
    return json.dumps([f"{cls.__module__}.{cls.__qualname__}",
                       cls.stage1_config(model_cfg).to_dict(),
                       stage1_training(train_cfg).to_dict(),
                       spec.dataset, spec.data_root, spec.synth, spec.device],
                      sort_keys=True, default=str)


def plan_tasks(specs: list[RunSpec], tokenizer_of: dict[str, Path],
               share_stage1: bool = True) -> list[Task]:
    """``tokenizer_of``: run name -> the cache path of a tokenizer it needs that is not fitted
    yet (one fit task per path)."""
    tasks: dict[str, Task] = {}
    for spec in specs:
        path = tokenizer_of.get(spec.name)
        if path is not None and f"fit:{path.name}" not in tasks:
            tasks[f"fit:{path.name}"] = Task(f"fit:{path.name}", "fit", spec, FIT_COST)
    groups: dict[str, list[RunSpec]] = {}
    for spec in specs:
        task = tasks[spec.name] = Task(spec.name, "run", spec, expected_cost(spec))
        if spec.name in tokenizer_of:
            task.needs.append(f"fit:{tokenizer_of[spec.name].name}")
        group = stage1_group(spec) if share_stage1 else None
        if group is not None:
            groups.setdefault(group, []).append(spec)
    for members in groups.values():
        if len(members) < 2:
            continue
        first, *rest = sorted(members, key=lambda s: (expected_cost(s), s.name))
        for spec in rest:
            tasks[spec.name].after.append(first.name)
            tasks[spec.name].cost = expected_cost(spec, without_stage1=True)
    _set_priorities(tasks)
    return list(tasks.values())


def _set_priorities(tasks: dict[str, Task]) -> None:
    waiting: dict[str, list[str]] = {name: [] for name in tasks}
    for task in tasks.values():
        for dep in task.needs + task.after:
            waiting[dep].append(task.name)

    def priority(name: str, seen: tuple[str, ...] = ()) -> float:
        if name in seen:
            raise ValueError(f"dependency cycle through {name}")
        task = tasks[name]
        if not task.priority:
            task.priority = task.cost + max((priority(w, seen + (name,)) for w in waiting[name]),
                                            default=0.0)
        return task.priority
    for name in tasks:
        priority(name)


def run_tasks(tasks: list[Task], jobs: int, do: Callable[[Task, int], RunOutcome | float],
              out: str | Path, on_run_done: Callable[[RunOutcome], None] = lambda o: None,
              fit_seconds: dict[str, float] | None = None,
              fresh_workers: bool = False) -> list[RunOutcome]:
    """Execute ``tasks`` respecting ``needs`` / ``after``, ``jobs`` at a time (in this process when
    ``jobs`` <= 1, else in spawned workers; ``fresh_workers``: always in workers, a new process
    per task, as GPU placement needs), highest priority first. ``do(task, slot)`` does one
    task (a picklable function: workers call it too; ``slot`` < jobs is free while it runs): a
    run's outcome, or a fit's seconds (collected in ``fit_seconds``). Returns each run's
    outcome (a run whose fit failed is failed with the fit's error)."""
    pending = {t.name: t for t in tasks}
    finished: dict[str, bool] = {}        # task -> succeeded
    errors: dict[str, str] = {}
    outcomes: list[RunOutcome] = []

    def ready() -> list[Task]:
        return sorted((t for t in pending.values()
                       if all(d in finished for d in t.needs + t.after)),
                      key=lambda t: (-t.priority, t.name))

    def finish(task: Task, result: RunOutcome | float | None, error: str | None) -> None:
        finished[task.name] = error is None and not (
            isinstance(result, RunOutcome) and result.status == "failed")
        if error is not None:
            errors[task.name] = error
        if task.kind == "fit" and isinstance(result, float) and fit_seconds is not None:
            fit_seconds[task.name] = result
        if task.kind == "run":
            if result is None:
                result = RunOutcome(task.name, "failed", str(run_dir_of(task.spec, out)),
                                    error=error)
            outcomes.append(result)
            on_run_done(result)

    def blocked(task: Task) -> str | None:
        bad = [d for d in task.needs if not finished.get(d, True)]
        return None if not bad else f"{bad[0]} failed: {errors.get(bad[0], 'see its log')}"

    if jobs <= 1 and not fresh_workers:
        while pending:
            task = ready()[0]
            del pending[task.name]
            why = blocked(task)
            if why:
                finish(task, None, why)
                continue
            try:
                finish(task, do(task, 0), None)
            except Exception as e:  # a fit that failed: its runs fail, the suite goes on
                finish(task, None, f"{type(e).__name__}: {e}")
        return outcomes
    running: dict[Future, Task] = {}
    slots: dict[Future, int] = {}
    jobs = max(jobs, 1)
    with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn"),
                             max_tasks_per_child=1 if fresh_workers else None) as pool:
        while pending or running:
            for task in ready():
                if len(running) >= jobs:
                    break
                del pending[task.name]
                why = blocked(task)
                if why:
                    finish(task, None, why)
                    continue
                slot = min(set(range(jobs)) - set(slots.values()))
                fut = pool.submit(do, task, slot)
                running[fut], slots[fut] = task, slot
            if not running:
                continue
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for fut in done:
                task = running.pop(fut)
                slots.pop(fut)
                try:
                    finish(task, fut.result(), None)
                except Exception as e:
                    finish(task, None, f"{type(e).__name__}: {e}")
    return outcomes

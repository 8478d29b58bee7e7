"""One run of a suite, start to finish, into ``<out>/<suite>/<run>/``.

Trained models go through :func:`uarbench.training.run.train_model` (which resumes from
``checkpoints/last.pt`` after an interruption); floors are fitted and predict the test split.
Both end with the test split scored by :func:`uarbench.evaluate.evaluate` and ``run.json``
written last. A failure is caught here, written to ``error.log`` in the run folder and returned,
so one broken run never stops a suite.
"""
from __future__ import annotations

import json
import shutil
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from uarbench.errors import UarbenchError
from uarbench.io import atomic_write_text, remove_temp_files
from uarbench.progress import RunProgress
from uarbench.runner.lock import RunBusy, run_lock
from uarbench.configs import apply_overrides
from uarbench.runner.suite import RunSpec, thaw
from uarbench.store import (CONFIG_FILE, ERROR_LOG, METRICS_FILE, PREDICTIONS_FILE, RUN_JSON, read_complete,
                            spec_dict, write_run_record)
from uarbench.timing import collect, phase

# what a finished trained run keeps: last.pt and the per-stage best are only for resuming
RESUME_ONLY = ("checkpoints/last.pt", "checkpoints/best.pt", "checkpoints/best_stage1.pt",
               "checkpoints/best_stage2.pt")


@dataclass(frozen=True)
class RunOutcome:
    run: str
    status: str            # "done" | "skipped" | "failed" | "busy" (another process has it)
    path: str
    error: str | None = None
    log: str | None = None
    wall_s: float = 0.0


def run_dir_of(spec: RunSpec, out_root: str | Path) -> Path:
    return Path(out_root) / spec.suite / spec.name


def status_of(spec: RunSpec, out_root: str | Path) -> str:
    """complete | partial | new | conflict (a complete run with another configuration)."""
    d = run_dir_of(spec, out_root)
    record = read_complete(d)
    if record is not None:
        return "complete" if record["spec"] == spec_dict(spec) else "conflict"
    return "partial" if d.exists() and any(d.iterdir()) else "new"


def load_run_dataset(spec: RunSpec, image_check: str = "exists"):
    from uarbench.data.datasets import load_dataset
    from uarbench.data.synth import SynthConfig
    synth = SynthConfig(**dict(spec.synth)) if spec.dataset == "synth-cxr" else None
    return load_dataset(spec.dataset, spec.data_root, image_check=image_check, synth_config=synth)


def resolved_configs(spec: RunSpec):
    """(model config, TrainConfig) of a trained run: preset, then overrides, then seed/device."""
    from uarbench.models import MODELS
    from uarbench.training.config import TrainConfig
    cls = MODELS.get(spec.model)
    preset = spec.preset.replace("-", "_")
    model_cfg = apply_overrides(getattr(cls.config_class, preset)(), dict(spec.model_set),
                              what=f"{spec.name}.set")
    train_cfg = apply_overrides(getattr(TrainConfig, preset)(), dict(spec.train_set),
                              what=f"{spec.name}.train").replace(seed=spec.seed, device=spec.device)
    return model_cfg, train_cfg


def execute_run(spec: RunSpec, out_root: str | Path, *, overwrite: bool = False,
                position: int | None = None, cache_dir: str | None = None,
                if_busy: str = "skip", share_stage1: bool = True) -> RunOutcome:
    """Run ``spec`` unless it is already complete; never raises for a failing run.

    The run folder is locked for the run's lifetime (:mod:`uarbench.runner.lock`); when another
    process holds it, ``if_busy`` says what to do: "skip" (status "busy"), "wait" for it (then
    the run is usually complete and skipped), or "fail" (status "failed", naming the holder).
    Nothing is written into a folder another process holds."""
    run_dir = run_dir_of(spec, out_root)
    try:
        with run_lock(run_dir, wait=if_busy == "wait"):
            return _execute_locked(spec, run_dir, out_root, overwrite, position, cache_dir,
                                   share_stage1)
    except RunBusy as e:
        if if_busy == "fail":
            return RunOutcome(spec.name, "failed", str(run_dir),
                              error=f"busy: {e}; pass --if-busy skip or wait")
        return RunOutcome(spec.name, "busy", str(run_dir), error=str(e))


def _execute_locked(spec: RunSpec, run_dir: Path, out_root: str | Path, overwrite: bool,
                    position: int | None, cache_dir: str | None,
                    share_stage1: bool = True) -> RunOutcome:
    t0 = time.perf_counter()
    try:
        state = status_of(spec, out_root)
        if state == "complete" and not overwrite:
            return RunOutcome(spec.name, "skipped", str(run_dir))
        if state == "conflict" and not overwrite:
            raise UarbenchError("this folder holds a complete run with a different "
                                "configuration.", file=run_dir / RUN_JSON,
                                fix="pass --overwrite, or choose another --out.")
        if overwrite and run_dir.exists():
            shutil.rmtree(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / ERROR_LOG).unlink(missing_ok=True)
        remove_temp_files(run_dir)   # a killed earlier attempt's interrupted writes (we hold the lock)
        _execute(spec, run_dir, position, cache_dir, t0, share_stage1)
        return RunOutcome(spec.name, "done", str(run_dir), wall_s=time.perf_counter() - t0)
    except KeyboardInterrupt:
        raise
    except Exception as e:  # a failed run must not stop the suite: recorded, reported at the end
        run_dir.mkdir(parents=True, exist_ok=True)
        log = run_dir / ERROR_LOG
        atomic_write_text(log, "".join(traceback.format_exception(e)))
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        return RunOutcome(spec.name, "failed", str(run_dir), error=f"{type(e).__name__}: {first}",
                          log=str(log), wall_s=time.perf_counter() - t0)


def _execute(spec: RunSpec, run_dir: Path, position: int | None, cache_dir: str | None,
             t0: float, share_stage1: bool = True) -> None:
    from uarbench.training.run import trainable
    with collect() as times, RunProgress(spec.name, position=position) as progress:
        with phase("data"):
            dataset = load_run_dataset(spec)
        if trainable(spec.model):
            files, config, image_tok, device, metrics = _train(spec, dataset, run_dir, progress,
                                                               cache_dir, share_stage1)
        else:
            files, config, image_tok, device, metrics = _floor(spec, dataset, run_dir)
    write_run_record(run_dir, spec, dataset=dataset, config=config, metrics=metrics,
                     files=files, image_tokenizer=image_tok, device=device,
                     wall_s=time.perf_counter() - t0, extra={"phases_s": times.rounded()})


def _train(spec, dataset, run_dir, progress, cache_dir, share_stage1=True):
    from uarbench.training.run import train_model
    model_cfg, train_cfg = resolved_configs(spec)
    summary = train_model(model=spec.model, dataset=dataset, model_cfg=model_cfg,
                          train_cfg=train_cfg, out_dir=run_dir, cache_dir=cache_dir,
                          progress=progress, scoring=thaw(spec.scoring),
                          share_stage1=share_stage1)
    for rel in RESUME_ONLY:
        (run_dir / rel).unlink(missing_ok=True)
    files = _run_files(run_dir)
    config = json.loads((run_dir / CONFIG_FILE).read_text())
    metrics = json.loads((run_dir / METRICS_FILE).read_text())["metrics"]
    return files, config, summary.get("image_tokenizer"), summary["device"], metrics


def _run_files(run_dir: Path) -> list[str]:
    """Every file a run left behind (what run.json hashes), relative to its folder."""
    return [str(p.relative_to(run_dir)) for p in sorted(run_dir.rglob("*"))
            if p.is_file() and p.name not in (RUN_JSON, ERROR_LOG)]


def _floor(spec, dataset, run_dir):
    from uarbench.evaluate import evaluate
    from uarbench.predict import fit_and_predict
    with phase("floor_fit_predict"):
        model, path = fit_and_predict(spec.model, dataset, "test", run_dir / PREDICTIONS_FILE,
                                      **dict(spec.params))
    evaluate(predictions=path, dataset=dataset, split="test", out_dir=run_dir,
             **thaw(spec.scoring))
    describe = getattr(model, "describe", None)
    config = {"model_name": spec.model, "params": dict(spec.params),
              **({"floor": describe()} if callable(describe) else {})}
    files = _run_files(run_dir)
    metrics = json.loads((run_dir / METRICS_FILE).read_text())["metrics"]
    return files, config, None, "cpu", metrics

"""GPU placement of a local suite (uarbench.runner.placement): on a machine with N GPUs the
suite starts N workers (k per GPU with --jobs k), each trained run and tokenizer fit sees one GPU
through CUDA_VISIBLE_DEVICES, round-robin, and floors see none. The GPUs are mocked
(torch.cuda.device_count); the workers are real spawned processes that record what they saw."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from uarbench.errors import UarbenchError
from uarbench.runner.execute import RunOutcome
from uarbench.runner.placement import Placed, plan_placement
from uarbench.runner.runner import needs_gpu, plan_suite, ray_task
from uarbench.runner.schedule import plan_tasks, run_tasks

BENCH = Path(__file__).resolve().parents[2] / "benchmark.toml"


class Recorder:
    """A picklable task body: writes the worker's pid and CUDA_VISIBLE_DEVICES to a file."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def __call__(self, task, slot):
        seen = {"gpu": os.environ.get("CUDA_VISIBLE_DEVICES"), "pid": os.getpid(), "slot": slot}
        (self.folder / f"{task.name.replace(':', '_')}.json").write_text(json.dumps(seen))
        if task.kind == "fit":
            return 0.0
        return RunOutcome(task.name, "done", str(self.folder))


@pytest.fixture
def four_gpus(monkeypatch):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)


def _suite(tmp_path, placement):
    specs = plan_suite("main", benchmark=BENCH, device="cuda", seeds=[0])
    tasks = plan_tasks(specs, {}, share_stage1=False)
    out = tmp_path / "seen"
    out.mkdir()
    outcomes = run_tasks(tasks, placement.workers, Placed(Recorder(out), placement, needs_gpu),
                         tmp_path, fresh_workers=True)
    seen = {p.stem: json.loads(p.read_text()) for p in out.glob("*.json")}
    return specs, outcomes, seen


def test_n_gpus_give_n_workers_each_trained_run_on_one_gpu(tmp_path, four_gpus):
    placement = plan_placement("auto")
    assert placement.gpus == ("0", "1", "2", "3") and placement.workers == 4
    specs, outcomes, seen = _suite(tmp_path, placement)
    assert len(outcomes) == len(specs) == len(seen)
    trained = {n: s for n, s in seen.items() if not n.startswith(("constant", "nn_retrieval"))}
    floors = {n: s for n, s in seen.items() if n not in trained}
    assert trained and floors
    assert all(s["gpu"] in placement.gpus and s["gpu"] == placement.gpu_of(s["slot"])
               for s in trained.values())
    # the 4 most expensive tasks (the trained runs) start first, one per slot: every GPU used
    assert len({s["gpu"] for s in trained.values()}) == 4
    assert all(s["gpu"] == "" for s in floors.values())  # floors on the CPU
    assert len({s["pid"] for s in seen.values()}) == len(seen)  # a fresh process per task


def test_jobs_put_k_workers_on_each_gpu_and_visible_devices_are_respected(monkeypatch):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "5,7")
    placement = plan_placement("cuda", jobs_per_gpu=3)
    assert placement.workers == 6
    assert [placement.gpu_of(slot) for slot in range(6)] == ["5", "7"] * 3


def test_cpu_suites_and_gpu_less_machines_are_unchanged(monkeypatch):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    assert not plan_placement("auto").on_gpus
    assert not plan_placement("cpu").on_gpus
    assert plan_placement("cpu").environment(0, True) == {}
    with pytest.raises(UarbenchError, match="no GPU"):
        plan_placement("cuda")


def test_ray_asks_gpus_for_trained_runs_only(monkeypatch):
    ray = pytest.importorskip("ray")
    asked = []
    monkeypatch.setattr(ray, "remote", lambda **kw: (asked.append(kw), lambda fn: fn)[1])
    specs = {s.model: s for s in plan_suite("main", benchmark=BENCH, device="cuda", seeds=[0])}
    ray_task(print, specs["uar"], cluster_gpus=8, gpus_per_run=0.5)
    ray_task(print, specs["constant"], cluster_gpus=8, gpus_per_run=0.5)
    ray_task(print, specs["uar"], cluster_gpus=0, gpus_per_run=1)
    assert [kw["num_gpus"] for kw in asked] == [0.5, 0, 0]

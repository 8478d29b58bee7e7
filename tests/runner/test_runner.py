"""The suite runner end to end on a tiny synth-cxr build: complete runs are skipped, a run killed
with SIGKILL resumes to the same result as an uninterrupted one, failures are collected, Ray
executes the same runs, and the shipped smoke suite passes through the CLI."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from uarbench.cli import main
from uarbench.results import load_runs
from uarbench.runner import run_suite
from uarbench.runner.execute import status_of
from uarbench.runner.runner import plan_suite

TINY = """
[benchmark]
version = "test"
[datasets.synth-cxr]
n_train = 48
n_val = 8
n_test = 8
size = 64
seed = 0
[runner]
jobs = 1
[suites.tiny]
description = "two floors and a tiny UAR"
train = { epochs_stage1 = {e1}, epochs_stage2 = 1, batch_size = 8, eval_batch_size = 8 }
set = { d_model = 32, n_heads = 2, cra_heads = 2, d_ff = 64, n_layers = 1, basis_size = 64, codebook_size = 32, vq = { hidden = 8, embed_dim = 8, steps = 10, lr = 2e-3, restart_every = 5 } }
rows = [
  { name = "constant", model = "constant" },
  { name = "uar", model = "uar" },
{extra}
]
"""


def _bench(tmp_path: Path, e1: int = 2, extra: str = "") -> Path:
    path = tmp_path / "benchmark.toml"
    path.write_text(TINY.replace("{e1}", str(e1)).replace("{extra}", extra))
    return path


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("UARBENCH_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.mark.slow
def test_suite_runs_then_skips_everything(tmp_path, cache):
    bench = _bench(tmp_path)
    report = run_suite("tiny", out=tmp_path / "res", benchmark=bench, device="cpu")
    assert report.ok and [o.status for o in report.outcomes] == ["done", "done"]
    run = tmp_path / "res" / "tiny" / "uar-seed0"
    record = json.loads((run / "run.json").read_text())
    assert record["schema_version"] == 1 and record["dataset"]["sha256"]
    assert record["provenance"]["git"] and record["config"]["model"]["lsu"] is True
    assert record["metrics"]["BLEU-4"]["signature"].startswith("BLEU-4|")
    for f in ("predictions.jsonl", "metrics.json", "per_report_stats.csv", "train_log.jsonl",
              "checkpoints/model.pt", "config.json"):
        assert f in record["files"], f
    assert not (run / "checkpoints" / "last.pt").exists()
    again = run_suite("tiny", out=tmp_path / "res", benchmark=bench, device="cpu")
    assert [o.status for o in again.outcomes] == ["skipped", "skipped"]
    runs = load_runs(tmp_path / "res", "tiny")
    assert set(runs["row"]) == {"constant", "uar"}
    # a damaged file makes the run incomplete again (never read as complete)
    (run / "predictions.jsonl").write_text("")
    assert status_of(plan_suite("tiny", benchmark=bench)[1], tmp_path / "res") == "partial"
    assert set(load_runs(tmp_path / "res", "tiny")["row"]) == {"constant"}


@pytest.mark.slow
def test_failed_run_does_not_stop_the_suite(tmp_path, cache, capsys):
    bench = _bench(tmp_path, extra='  { name = "broken", model = "nn_retrieval", '
                                   'params = { features = "resnet" } },')
    code = main(["run", "--suite", "tiny", "--out", str(tmp_path / "res"), "--benchmark",
                 str(bench), "--device", "cpu"])
    assert code == 1
    err = capsys.readouterr().err
    log = tmp_path / "res" / "tiny" / "broken-seed0" / "error.log"
    assert "FAILED broken-seed0" in err and str(log) in err and log.is_file()
    assert (tmp_path / "res" / "tiny" / "uar-seed0" / "run.json").is_file()


def _strip(log: Path) -> list[dict]:
    rows = [json.loads(l) for l in log.read_text().splitlines()]
    for r in rows:
        r.pop("samples_per_s", None)
    return rows


@pytest.mark.slow
def test_sigkill_mid_training_resumes_to_the_uninterrupted_result(tmp_path, cache):
    bench = _bench(tmp_path, e1=8)
    env = {**os.environ, "UARBENCH_CACHE": str(cache)}
    cmd = [sys.executable, "-m", "uarbench", "run", "--suite", "tiny", "--benchmark", str(bench),
           "--device", "cpu", "--out"]
    subprocess.run(cmd + [str(tmp_path / "full")], env=env, check=True, capture_output=True)
    proc = subprocess.Popen(cmd + [str(tmp_path / "killed")], env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = tmp_path / "killed" / "tiny" / "uar-seed0" / "train_log.jsonl"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if log.is_file() and log.read_text().count("val_bleu4") >= 2:
            os.killpg(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.02)
    assert proc.wait() == -signal.SIGKILL, "the run finished before it could be killed"
    spec = plan_suite("tiny", benchmark=bench)[1]
    assert status_of(spec, tmp_path / "killed") == "partial"
    subprocess.run(cmd + [str(tmp_path / "killed")], env=env, check=True, capture_output=True)
    a, b = (tmp_path / d / "tiny" / "uar-seed0" for d in ("full", "killed"))
    assert (a / "predictions.jsonl").read_bytes() == (b / "predictions.jsonl").read_bytes()
    assert _strip(a / "train_log.jsonl") == _strip(b / "train_log.jsonl")
    ma, mb = (json.loads((d / "metrics.json").read_text())["metrics"] for d in (a, b))
    assert {k: v["value"] for k, v in ma.items()} == {k: v["value"] for k, v in mb.items()}


@pytest.mark.slow
def test_ray_executor_runs_a_two_run_suite(tmp_path, cache):
    pytest.importorskip("ray")
    bench = _bench(tmp_path)
    bench.write_text(bench.read_text() + """
[suites.floors]
rows = [ { name = "constant", model = "constant" },
         { name = "nn_retrieval", model = "nn_retrieval" } ]
""")
    report = run_suite("floors", out=tmp_path / "res", benchmark=bench, executor="ray",
                       device="cpu")
    assert report.ok, report.failures
    assert [o.status for o in report.outcomes] == ["done", "done"]
    again = run_suite("floors", out=tmp_path / "res", benchmark=bench, executor="ray")
    assert [o.status for o in again.outcomes] == ["skipped", "skipped"]


@pytest.mark.slow
def test_scoring_options_reach_every_run_and_are_part_of_its_identity(tmp_path, cache):
    bench = _bench(tmp_path)
    bench.write_text(bench.read_text() + """
[suites.floor]
rows = [ { name = "constant", model = "constant" } ]
""")
    report = run_suite("floor", out=tmp_path / "res", benchmark=bench,
                       scoring={"labeler": None})
    assert report.ok
    record = json.loads((tmp_path / "res" / "floor" / "constant-seed0" / "run.json").read_text())
    assert "BLEU-4" in record["metrics"] and not any(k.startswith("CE-") for k in record["metrics"])
    # the default scoring (rule labeler) is another configuration: not silently skipped
    again = run_suite("floor", out=tmp_path / "res", benchmark=bench)
    assert [o.status for o in again.outcomes] == ["failed"] and "--overwrite" in again.outcomes[0].error


@pytest.mark.slow
def test_shipped_smoke_suite_end_to_end_through_the_cli(tmp_path, cache, capfd):
    out = tmp_path / "results"
    assert main(["run", "--suite", "smoke", "--out", str(out), "--device", "cpu"]) == 0
    printed, log = capfd.readouterr()  # stderr is not a terminal here: progress as log lines
    assert "| constant" in printed and "| uar" in printed and "3 run(s) done" in printed
    assert "| wall" in printed.replace("  ", "") or "wall" in printed.splitlines()[0]
    for line in ("suite smoke: 3 run(s) to do", "uar-seed0: started", "uar-seed0: training, ",
                 "uar-seed0: stage 1 epoch 1/", "uar-seed0: decode_test", "uar-seed0: done in ",
                 "constant-seed0: done in ", "(3/3 runs; about "):
        assert line in log, line
    assert "\r" not in log  # no progress bar redraws in a log file
    assert main(["run", "--suite", "smoke", "--out", str(out)]) == 0
    assert "0 run(s) done, 3 skipped" in capfd.readouterr().out
    assert main(["compare", str(out), "--suite", "smoke", "--format", "json",
                 "--out", str(tmp_path / "t.json"), "--resamples", "50", "--trials", "50"]) == 0
    table = json.loads((tmp_path / "t.json").read_text())
    assert table and (tmp_path / "t.json").stat().st_size > 100

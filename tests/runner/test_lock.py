"""One writer per run folder: the run lock refuses a second holder (naming the first), is taken
over when its holder is gone, and two real `uarbench run` processes on one results folder both
finish without damaging each other's runs."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from uarbench.runner.lock import RunBusy, lock_path, run_lock
from uarbench.store import read_complete

sys.path.insert(0, str(Path(__file__).parent))
from test_runner import _bench  # noqa: E402  (the tiny suite of the runner tests)


def test_a_second_holder_is_refused_with_the_first_ones_pid(tmp_path):
    run = tmp_path / "suite" / "uar-seed0"
    with run_lock(run):
        with pytest.raises(RunBusy) as e:
            with run_lock(run):
                pass
        assert f"pid {os.getpid()}" in str(e.value)
    with run_lock(run):          # released: free again
        pass


def test_a_lock_left_by_a_dead_process_is_taken_over(tmp_path):
    run = tmp_path / "suite" / "uar-seed0"
    path = lock_path(run)
    path.parent.mkdir(parents=True)
    path.write_text("pid 999999 on elsewhere\n")      # its holder is gone: no OS lock
    with run_lock(run):
        assert path.read_text().startswith(f"pid {os.getpid()} ")


@pytest.mark.slow
def test_two_processes_on_one_results_folder(tmp_path):
    bench = _bench(tmp_path, e1=6)
    env = {**os.environ, "UARBENCH_CACHE": str(tmp_path / "cache")}
    out = tmp_path / "res"
    cmd = [sys.executable, "-m", "uarbench", "run", "--suite", "tiny", "--benchmark", str(bench),
           "--device", "cpu", "--out", str(out)]
    first = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    log = out / "tiny" / "uar-seed0" / "train_log.jsonl"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and first.poll() is None and not log.is_file():
        time.sleep(0.05)
    assert first.poll() is None, "the first run finished before the second could start"
    # the second process while the first trains uar-seed0 (runs start longest first)
    second = subprocess.run(cmd + ["--if-busy", "fail"], env=env, capture_output=True,
                            text=True)
    assert second.returncode == 1
    assert f"FAILED uar-seed0: busy: run uar-seed0 is being written by another process (pid " \
           f"{first.pid} " in second.stderr
    assert "Traceback" not in second.stderr
    assert first.wait(timeout=600) == 0, first.stderr[-2000:]
    third = subprocess.run(cmd, env=env, capture_output=True, text=True)   # all complete
    assert third.returncode == 0 and "0 run(s) done, 2 skipped" in third.stdout
    for run in ("constant-seed0", "uar-seed0"):
        assert read_complete(out / "tiny" / run) is not None, run     # hashes intact
    assert not (out / "tiny" / "uar-seed0" / "error.log").exists()


def test_a_busy_run_is_skipped_or_failed_without_touching_its_folder(tmp_path, monkeypatch):
    from uarbench.runner.execute import execute_run, run_dir_of
    from uarbench.runner.runner import plan_suite
    monkeypatch.setenv("UARBENCH_CACHE", str(tmp_path / "cache"))
    spec = plan_suite("tiny", benchmark=_bench(tmp_path))[0]          # the constant floor
    out = tmp_path / "res"
    run = run_dir_of(spec, out)
    with run_lock(run):
        skipped = execute_run(spec, out)
        failed = execute_run(spec, out, if_busy="fail")
    assert skipped.status == "busy" and f"pid {os.getpid()}" in skipped.error
    assert failed.status == "failed" and failed.error.startswith("busy: ")
    assert not run.exists()                 # nothing written into the holder's folder
    assert execute_run(spec, out).status == "done"

"""What a person sees (issue 15 item 1 and 7): progress as log lines when stderr is not a
terminal (a run piped to a file), one number format in summaries, and help text for every
option of every command, with its default and examples."""
from __future__ import annotations

import argparse
import logging

import pytest

from uarbench.cli import EXAMPLES, build_parser
from uarbench.compare.cells import number
from uarbench.progress import LOGGER, RunProgress, SuiteProgress, setup_logging
from uarbench.timing import phase


@pytest.fixture
def log_lines(caplog):
    caplog.set_level(logging.DEBUG, logger="uarbench")
    LOGGER.propagate = True  # caplog listens on the root logger
    yield lambda: [r.getMessage() for r in caplog.records]
    LOGGER.propagate = False


def test_a_run_without_a_terminal_logs_start_stages_epochs_and_finish(log_lines):
    with RunProgress("uar-seed0", bars=False) as progress:
        with phase("data"):
            pass
        progress.training(20)
        for _ in range(10):
            progress.step(1, ce="1.234")
        progress.epoch(1, 0, 2, val_bleu4=0.1234, ce=1.5)
        with phase("decode_test"):
            with phase("meteor"):
                pass
    lines = log_lines()
    assert lines[0] == "uar-seed0: started"
    assert "uar-seed0: data" in lines and "uar-seed0: training, 20 steps" in lines
    assert any(l.startswith("uar-seed0: stage 1 epoch 1/2: ce 1.5000, val BLEU-4 0.1234 (")
               for l in lines)
    assert "uar-seed0: decode_test" in lines and "uar-seed0: meteor" in lines
    assert lines[-1].startswith("uar-seed0: done in ")


def test_a_failed_run_says_so(log_lines):
    with pytest.raises(RuntimeError):
        with RunProgress("r2gen-seed1", bars=False):
            raise RuntimeError("boom")
    assert log_lines()[-1].startswith("r2gen-seed1: failed in ")


def test_phases_after_the_run_are_not_reported_by_it(log_lines):
    with RunProgress("a", bars=False):
        pass
    with phase("meteor"):
        pass
    assert not any("meteor" in l for l in log_lines())


def test_the_suite_eta_is_weighted_by_expected_cost(log_lines, monkeypatch):
    import uarbench.progress as progress
    clock = iter([0.0, 10.0, 20.0])
    monkeypatch.setattr(progress.time, "perf_counter", lambda: next(clock))
    suite = SuiteProgress("ablations", {"constant-seed0": 10.0, "uar-seed0": 990.0}, bars=False)
    suite.run_done("constant-seed0", "done", 9.0)  # 1% of the work in 10 s: ~990 s left
    suite.run_done("uar-seed0", "done", 10.0)
    lines = log_lines()
    assert "suite ablations: 2 run(s) to do" in lines
    assert "constant-seed0 done in 9.0 s (1/2 runs; about 16 min 30 s left)" in lines[1]
    assert "(2/2 runs; about 0.0 s left)" in lines[2]


def test_one_number_format_never_hides_a_tiny_value():
    assert number(0.797) == "0.7970" and number(0.76654) == "0.7665"
    assert number(5.9e-7) == "5.9e-07" and number(0.0) == "0.0000" and number(None) == "n/a"


def test_log_file_gets_the_lines(tmp_path):
    path = tmp_path / "logs" / "run.log"
    try:
        setup_logging(0, path)
        with RunProgress("x", bars=False):
            pass
    finally:
        setup_logging(0, None)
    text = path.read_text()
    assert "INFO uarbench: x: started" in text and "x: done in" in text


def _commands(parser, path=("uarbench",)):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, path + (name,))


def test_every_option_has_help_and_every_command_examples():
    parser = build_parser()
    seen = 0
    for path, p in _commands(parser):
        for action in p._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            assert action.help, f"{' '.join(path)} {action.option_strings or action.dest}"
            seen += 1
        text = p.format_help()
        if len(path) > 1 and path[1:] != ("data",):
            assert "examples:" in text, " ".join(path)
    assert seen > 80
    assert set(EXAMPLES) >= {"run", "compare", "eval", "train", "import", "label"}


def test_defaults_are_shown_once():
    run = next(p for path, p in _commands(build_parser()) if path[1:] == ("run",))
    text = " ".join(run.format_help().split())
    assert "(default: results)" in text and "(default: auto)" in text
    assert text.count("(default: skip)") == 1  # --if-busy writes its own default
    top = " ".join(build_parser().format_help().split())
    assert "uarbench run --suite ablations" in top and "synth-cxr" in top


def test_the_suite_eta_prefers_measured_wall_times(tmp_path):
    """A row's earlier run records (its own, or other seeds of the row) replace the cost model."""
    import json
    from pathlib import Path

    from uarbench.runner.runner import measured_costs, plan_suite
    from uarbench.store import RUN_JSON, SCHEMA_VERSION
    bench = Path(__file__).resolve().parents[1] / "benchmark.toml"
    specs = plan_suite("main", benchmark=bench, device="cpu", seeds=[0, 1])
    expected = {s.name: 100.0 for s in specs}
    done = tmp_path / "main" / "uar-seed0"
    done.mkdir(parents=True)
    (done / RUN_JSON).write_text('{"row": "uar", "wall_s": 42.0}')  # not a well-formed record
    assert measured_costs(specs, tmp_path, expected) == expected
    record = {"schema_version": SCHEMA_VERSION, "files": {"model.pt": "0" * 64}, "suite": "main",
              "run": "uar-seed0", "row": "uar", "model": "uar", "seed": 0, "metrics": {},
              "spec": {}, "dataset": {}, "wall_s": 42.0}
    (done / RUN_JSON).write_text(json.dumps(record))  # its files are not checked (an estimate)
    costs = measured_costs(specs, tmp_path, expected)
    assert costs["uar-seed0"] == 42.0 and costs["uar-seed1"] == 42.0  # own, then the row's
    assert costs["base-seed0"] == 100.0

"""The order of a suite's local work (uarbench.runner.schedule) on the shipped ablation suite:
each LSU run waits for its seed's tokenizer fit, the two-stage UAR waits for row (e) of its seed
(same stage 1) and costs only its stage 2, the longest chains start first, and a failed fit
fails exactly the runs that need it."""
from __future__ import annotations

from pathlib import Path

import pytest

from uarbench.runner.execute import RunOutcome
from uarbench.runner.runner import plan_suite
from uarbench.runner.schedule import expected_cost, plan_tasks, run_tasks, stage1_group

BENCH = Path(__file__).resolve().parents[2] / "benchmark.toml"


@pytest.fixture(scope="module")
def ablations():
    specs = plan_suite("ablations", benchmark=BENCH, device="cpu")
    lsu = ("a_lsu", "e_lsu_cra", "f_tir", "uar")
    tokenizer_of = {s.name: Path(f"vq-seed{s.seed}.pt") for s in specs
                    if s.name.rsplit("-", 1)[0] in lsu}
    return specs, tokenizer_of


def test_stage1_groups_pair_row_e_with_uar_of_the_same_seed(ablations):
    specs, _ = ablations
    by = {s.name: s for s in specs}
    assert stage1_group(by["uar-seed0"]) == stage1_group(by["e_lsu_cra-seed0"])
    assert stage1_group(by["uar-seed0"]) != stage1_group(by["e_lsu_cra-seed1"])
    assert stage1_group(by["uar-seed0"]) != stage1_group(by["f_tir-seed0"])
    assert stage1_group(by["constant-seed0"]) is None
    assert expected_cost(by["uar-seed0"], without_stage1=True) < expected_cost(by["e_lsu_cra-seed0"])


def test_plan_orders_fits_and_shared_stage1(ablations):
    specs, tokenizer_of = ablations
    tasks = {t.name: t for t in plan_tasks(specs, tokenizer_of)}
    assert sorted(n for n in tasks if n.startswith("fit:")) == [f"fit:vq-seed{i}.pt" for i in range(3)]
    assert tasks["uar-seed1"].needs == ["fit:vq-seed1.pt"]
    assert tasks["uar-seed1"].after == ["e_lsu_cra-seed1"]
    assert tasks["base-seed0"].needs == [] and tasks["base-seed0"].after == []
    # a chain's head carries what waits for it
    assert tasks["fit:vq-seed0.pt"].priority > tasks["e_lsu_cra-seed0"].priority > \
        tasks["uar-seed0"].priority
    assert not any(t.after for t in plan_tasks(specs, tokenizer_of, share_stage1=False))

    done: list[str] = []

    def do(task, slot):
        assert slot == 0 and all(d in done for d in task.needs + task.after), task.name
        done.append(task.name)
        if task.name == "fit:vq-seed2.pt":
            raise RuntimeError("disk full")
        return 12.5 if task.kind == "fit" else RunOutcome(task.name, "done", "x")   # a fit's seconds

    seconds: dict[str, float] = {}
    outcomes = {o.run: o for o in run_tasks(list(tasks.values()), 1, do, "out", fit_seconds=seconds)}
    assert seconds == {"fit:vq-seed0.pt": 12.5, "fit:vq-seed1.pt": 12.5}
    assert len(outcomes) == len(specs)
    assert done[0].startswith("fit:")        # the longest chain first
    failed = sorted(n for n, o in outcomes.items() if o.status == "failed")
    assert failed == ["a_lsu-seed2", "e_lsu_cra-seed2", "f_tir-seed2", "uar-seed2"]
    assert "fit:vq-seed2.pt failed: RuntimeError: disk full" in outcomes["uar-seed2"].error

"""Suite expansion from benchmark.toml and validation of suite declarations."""
from __future__ import annotations

import pytest

from uarbench.benchmark import load_benchmark
from uarbench.errors import UarbenchError
from uarbench.runner import expand_suite, load_suites
from uarbench.runner.execute import resolved_configs


def test_shipped_suites_are_valid_and_ablations_match_table_2():
    bench = load_benchmark()
    suites = load_suites(bench)
    assert {"smoke", "main", "ablations", "basis", "fusion", "stages"} <= set(suites)
    expanded = expand_suite(suites["ablations"], bench=bench)
    specs = {s.row: s for s in reversed(expanded)}          # each row's first seed
    assert suites["ablations"].seeds == (0, 1, 2)            # three training seeds by default
    switches = ("lsu", "cra_integration", "cra_global_loss", "tir", "two_stage")
    table2 = {  # paper Table 2: LSU, CRA integration, L_Global, TIR, two-stage
        "base": (False, False, False, False, False),
        "a_lsu": (True, False, False, False, False),
        "b_cra_integration": (False, True, False, False, False),
        "c_global_loss": (False, False, True, False, False),
        "d_integration_global": (False, True, True, False, False),
        "e_lsu_cra": (True, True, True, False, False),
        "f_tir": (True, True, True, True, False),
        "uar": (True, True, True, True, True),
    }
    for row, expected in table2.items():
        model_cfg, train_cfg = resolved_configs(specs[row])
        assert tuple(getattr(model_cfg, k) for k in switches) == expected, row
        assert train_cfg.seed == 0
    assert {"constant", "nn_retrieval"} <= set(specs)  # every table shows the floors


def test_expansion_seeds_preset_and_dataset_overrides():
    bench = load_benchmark()
    suite = load_suites(bench)["basis"]
    specs = expand_suite(suite, bench=bench, seeds=[0, 3], preset="paper")
    assert [s.name for s in specs] == ["orthogonal-seed0", "orthogonal-seed3", "uniform-seed0",
                                       "uniform-seed3", "normal-seed0", "normal-seed3"]
    model_cfg, train_cfg = resolved_configs(specs[3])
    assert model_cfg.basis == "uniform" and model_cfg.d_model == 512 and train_cfg.seed == 3
    synth = dict(specs[0].synth)
    assert synth["n_train"] == bench.synth["n_train"]
    iu = expand_suite(suite, bench=bench, dataset="iu_xray", data_root="/data/iu")
    assert all(s.dataset == "iu_xray" and s.synth == () and s.data_root == "/data/iu" for s in iu)


def test_every_problem_is_reported_with_its_key(tmp_path):
    bad = tmp_path / "benchmark.toml"
    bad.write_text('''
[benchmark]
version = "9"
[suites.x]
seeds = [-1]
colour = "red"
rows = [
  { name = "a", model = "nope" },
  { name = "b", model = "uar", set = { lsu = "yes", d_modle = 3 } },
  { name = "c", model = "constant", train = { epochs_stage1 = 1 } },
]
''')
    with pytest.raises(UarbenchError) as e:
        load_suites(load_benchmark(bad))
    msg = str(e.value)
    for key in ("suites.x.seeds", "suites.x.colour", "suites.x.rows[0].model",
                "suites.x.rows[1].set", "d_modle", "suites.x.rows[2]"):
        assert key in msg, key
    assert str(bad) in msg


def test_unknown_suite_names_the_known_ones():
    from uarbench.runner.runner import plan_suite
    with pytest.raises(UarbenchError, match="ablations"):
        plan_suite("ablation")


def test_floors_run_once_trained_rows_every_seed():
    from uarbench.runner.runner import plan_suite
    specs = plan_suite("ablations", seeds=[0, 1, 2])
    by_row: dict[str, list[int]] = {}
    for s in specs:
        by_row.setdefault(s.row, []).append(s.seed)
    assert by_row["constant"] == [0] and by_row["nn_retrieval"] == [0]
    assert by_row["uar"] == [0, 1, 2] and by_row["base"] == [0, 1, 2]

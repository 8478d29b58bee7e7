import pytest

from uarbench.benchmark import DEFAULT_PATH, load_benchmark
from uarbench.errors import UarbenchError


def test_repository_benchmark_file_is_valid():
    bench = load_benchmark(DEFAULT_PATH)
    assert bench.version and bench.default_dataset == "synth-cxr"
    assert bench.nlg_metrics == ("BLEU", "METEOR", "ROUGE-L", "CIDEr")
    assert bench.synth_config().size == bench.synth["size"]


def test_every_problem_is_reported_with_its_key(tmp_path):
    bad = tmp_path / "benchmark.toml"
    bad.write_text('[benchmark]\nversion = 1\n[metrics]\nnlg = ["BLEU", "SPICE"]\n'
                   'reference_mode = "raw"\n[datasets.synth-cxr]\nsizee = 64\n')
    with pytest.raises(UarbenchError) as e:
        load_benchmark(bad)
    msg = str(e.value)
    for key in ("benchmark.version", "metrics.nlg: unknown metric family 'SPICE'",
                "metrics.reference_mode", "datasets.synth-cxr.sizee"):
        assert key in msg


def test_invalid_toml_is_a_clear_error(tmp_path):
    bad = tmp_path / "benchmark.toml"
    bad.write_text("[benchmark\n")
    with pytest.raises(UarbenchError, match="not valid TOML"):
        load_benchmark(bad)

"""Every output of ``uarbench compare``: Markdown, LaTeX (booktabs, escaped, compiles when
pdflatex is installed), CSV and JSON (all numbers, CIs, p-values, signatures), a standalone
sortable HTML page, PNG plots, and the sub-command itself."""
from __future__ import annotations

import argparse
import io
import json
import re
import shutil
import subprocess

import pandas as pd
import pytest

from test_table import FAST, build_results
from uarbench.compare.cli import FORMAT_NAMES, add_compare_parser
from uarbench.compare.formats import FORMATS, latex_escape, write_table
from uarbench.compare.table import build_comparison


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return build_results(tmp_path_factory.mktemp("results"))


@pytest.fixture(scope="module")
def table(results):
    root, bench = results
    return build_comparison(root, benchmark=bench, **FAST)


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="uarbench")
    add_compare_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_markdown_has_arrows_markers_seed_counts_and_a_signature_footer(table):
    text = write_table(table, "md")
    assert "| BLEU-4 ↑ |" in text and "good (baseline)" in text
    line = next(l for l in text.splitlines() if l.startswith("| constant "))
    assert "‡" in line and "[" in line                         # marker and CI
    assert next(l for l in text.splitlines() if l.startswith("| broken ")).count("—") >= 6
    assert "**Metric signatures.**" in text and "BLEU-4|conv:r2gen|clean:r2gen-iu" in text
    assert "holm:table(m=" in text and "seed variance" in text


def test_csv_and_json_carry_every_number(table):
    frame = pd.read_csv(io.StringIO(write_table(table, "csv")))
    assert {"mean", "sd", "ci_lo", "ci_hi", "p_value", "p_holm", "significant", "signature",
            "test_signature"} <= set(frame.columns)
    row = frame[(frame["row"] == "constant") & (frame["column"] == "BLEU-4")].iloc[0]
    cell = table.cell("constant", "BLEU-4")
    assert row["mean"] == pytest.approx(cell.mean) and row["ci_lo"] == pytest.approx(cell.ci[0])
    assert row["p_holm"] == pytest.approx(cell.p_holm) and row["signature"].startswith("BLEU-4|")
    data = json.loads(write_table(table, "json"))
    assert data["baseline"] == "good" and data["holm_m"] == table.holm_m
    good = next(r for r in data["rows"] if r["name"] == "good")
    assert good["cells"]["BLEU-4"]["sd"] == pytest.approx(table.cell("good", "BLEU-4").sd)
    assert data["test_signatures"]["BLEU-4"] == table.test_signatures["BLEU-4"]
    assert data["provenance"]["git_commits"]


def test_html_is_one_standalone_sortable_page(table):
    page = write_table(table, "html")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    for external in ("<link", " src=", "http://", "https://", "@import"):
        assert external not in page
    assert "<script>" in page and "addEventListener(\"click\"" in page
    assert page.count("<th>") == 3 + len(table.columns)
    assert re.search(r'<td class="num" data-v="[0-9.e-]+"', page)    # numbers to sort by
    assert "BLEU-4|conv:r2gen|clean:r2gen-iu" in page and "Provenance" in page and "git_commits" in page


def _latex_structure(tex: str) -> None:
    assert tex.index(r"\toprule") < tex.index(r"\midrule") < tex.index(r"\bottomrule")
    assert r"\usepackage{booktabs}" in tex
    for env in ("document", "table", "tabular", "itemize", "flushleft"):
        assert tex.count(r"\begin{" + env) == tex.count(r"\end{" + env), env
    assert tex.count("{") - tex.count(r"\{") == tex.count("}") - tex.count(r"\}")
    body = re.sub(r"\\[A-Za-z]+|\\.", "", tex)                    # drop commands and escapes
    assert "_" not in body and "%" not in body.replace("{%\n", "")
    assert all(ord(ch) < 128 for ch in tex)


def test_latex_uses_booktabs_escapes_and_is_balanced(table):
    tex = write_table(table, "latex")
    _latex_structure(tex)
    assert r"$\uparrow$" in tex and r"$^{\ddagger}$" in tex and r"$\pm$" in tex
    assert latex_escape("nn_retrieval 50% a&b") == r"nn\_retrieval 50\% a\&b"


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex not installed")
def test_latex_compiles(table, tmp_path):
    write_table(table, "latex", tmp_path / "table.tex")
    proc = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error",
                           "table.tex"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert (tmp_path / "table.pdf").stat().st_size > 0


def test_plots_are_valid_pngs(table, tmp_path):
    from PIL import Image
    from uarbench.compare.plots import write_plots
    paths = write_plots(table, tmp_path / "plots")
    assert [p.name for p in paths] == ["cmp_metrics.png", "cmp_training.png"]
    for p in paths:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        with Image.open(p) as im:
            im.verify()
        with Image.open(p) as im:
            assert im.size[0] > 400 and im.size[1] > 200


def test_cli_writes_every_format_and_the_plots(results, tmp_path, capsys):
    root, bench = results
    common = [str(root), "--benchmark", str(bench), "--resamples", "100", "--trials", "500",
              "--metrics", "BLEU-*,CIDEr"]
    for suffix, fmt in ((".md", "md"), (".tex", "latex"), (".csv", "csv"), (".html", "html"),
                        (".json", "json")):
        out = tmp_path / f"table{suffix}"
        assert run_cli(["compare", *common, "--out", str(out)]) == 0
        assert out.read_text() == write_table(
            build_comparison(root, benchmark=bench, metrics=["BLEU-*", "CIDEr"],
                             n_resamples=100, trials=500), fmt)
    assert set(FORMATS.names()) == set(FORMAT_NAMES) == {"md", "latex", "csv", "html", "json"}
    assert run_cli(["compare", *common, "--no-significance", "--baseline", "constant",
                    "--plots", str(tmp_path / "figs")]) == 0
    printed = capsys.readouterr().out
    assert "| BLEU-1 ↑ |" in printed and "ROUGE-L" not in printed.split("**Legend")[0]
    assert "constant (baseline)" in printed and (tmp_path / "figs" / "cmp_metrics.png").is_file()


def test_cli_error_for_a_folder_without_results(tmp_path):
    from uarbench.errors import UarbenchError
    with pytest.raises(UarbenchError, match="no results folder"):
        run_cli(["compare", str(tmp_path / "missing")])

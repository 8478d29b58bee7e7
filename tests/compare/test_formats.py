"""Every output of ``uarbench compare``: Markdown, LaTeX (booktabs, escaped; a fragment by
default, a document with standalone=True), CSV and JSON (all numbers, CIs, p-values,
signatures), a standalone sortable HTML page, PNG + PDF figures, and the sub-command itself.
Paper-table details: test_paper_tables.py; figures: test_figures.py; the leaderboard in a
browser: test_leaderboard_browser.py."""
from __future__ import annotations

import argparse
import io
import json
import re

import pandas as pd
import pytest
from cmp_fixtures import cmp_results, cmp_table  # noqa: F401 (pytest fixtures)
from test_table import FAST

from uarbench.compare.cli import FORMAT_NAMES, add_compare_parser
from uarbench.compare.formats import FORMATS, latex_escape, write_table
from uarbench.compare.table import build_comparison


@pytest.fixture
def results(cmp_results):
    return cmp_results  # the session's results folder (cmp_fixtures.py)


@pytest.fixture
def table(cmp_table):
    return cmp_table


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="uarbench")
    add_compare_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_markdown_has_arrows_markers_seed_counts_and_a_signature_footer(table):
    text = write_table(table, "md")
    assert re.search(r"\| +BLEU-4 ↑ +\|", text) and "good (baseline)" in text
    lines = text.splitlines()
    i = next(i for i, l in enumerate(lines) if l.startswith("| constant "))
    assert "‡" in lines[i] and "[" not in lines[i]             # marker; the CI on the next line
    assert lines[i + 1].startswith("| ↳ 95% CI ") and "[" in lines[i + 1]
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
    assert page.count("<th ") == 3 + len(table.columns)
    assert re.search(r'<td class="num" data-v="[0-9.e-]+"', page)    # numbers to sort by
    assert "BLEU-4|conv:r2gen|clean:r2gen-iu" in page and "Provenance" in page and "git_commits" in page


def _latex_structure(tex: str) -> None:
    """Balanced, escaped, ASCII outside comments (comment lines carry the footer as text)."""
    tex = "\n".join(l for l in tex.splitlines() if not l.startswith("%"))
    assert tex.index(r"\toprule") < tex.index(r"\midrule") < tex.index(r"\bottomrule")
    for env in ("document", "table", "tabular", "itemize", "flushleft"):
        assert tex.count(r"\begin{" + env) == tex.count(r"\end{" + env), env
    assert tex.count("{") - tex.count(r"\{") == tex.count("}") - tex.count(r"\}")
    body = re.sub(r"\\[A-Za-z]+|\\.", "", tex)                    # drop commands and escapes
    assert "_" not in body and "%" not in body
    assert all(ord(ch) < 128 for ch in tex)


def test_latex_uses_booktabs_escapes_and_is_balanced(table):
    for standalone in (False, True):
        tex = write_table(table, "latex", standalone=standalone)
        _latex_structure(tex)
        assert r"$\uparrow$" in tex and r"$^{\ddagger}$" in tex and r"$\pm$" in tex
        code = [l for l in tex.splitlines() if not l.startswith("%")]
        assert (r"\usepackage{booktabs}" in code) == standalone
        assert code[0] == (r"\documentclass{article}" if standalone else r"\begin{tabular}{lrrrrrrr}")
    assert latex_escape("nn_retrieval 50% a&b") == r"nn\_retrieval 50\% a\&b"
    assert latex_escape("0.1⁺ 0.2⁻") == r"0.1$^{+}$ 0.2$^{-}$"      # seed-level markers


def test_plots_are_valid_pngs(table, tmp_path):
    from PIL import Image

    from uarbench.compare.plots import write_plots
    paths = write_plots(table, tmp_path / "plots")
    assert [p.name for p in paths] == ["cmp_nlg.png", "cmp_nlg.pdf", "cmp_training.png",
                                       "cmp_training.pdf"]
    for p in paths:
        if p.suffix == ".pdf":
            assert p.read_bytes()[:5] == b"%PDF-"
            continue
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        with Image.open(p) as im:
            im.verify()
        with Image.open(p) as im:
            assert im.size[0] > 400 and im.size[1] > 200


def test_cli_writes_every_format_and_the_plots(results, tmp_path, capsys):
    root, bench = results
    common = [str(root), "--benchmark", str(bench), "--resamples", "100", "--trials", "500",
              "--metrics", "BLEU-*,CIDEr"]
    for suffix, fmt in ((".md", "md"), (".tex", "latex"), (".latex", "latex"), (".csv", "csv"),
                        (".html", "html"), (".json", "json")):
        out = tmp_path / f"table{suffix}"
        assert run_cli(["compare", *common, "--out", str(out)]) == 0
        assert out.read_text() == write_table(
            build_comparison(root, benchmark=bench, metrics=["BLEU-*", "CIDEr"],
                             n_resamples=100, trials=500), fmt)
    assert set(FORMATS.names()) == set(FORMAT_NAMES) == {"md", "latex", "csv", "html", "json"}
    assert run_cli(["compare", *common, "--no-significance", "--baseline", "constant",
                    "--plots", str(tmp_path / "figs")]) == 0
    captured = capsys.readouterr()
    printed = captured.out
    assert re.search(r"\| +BLEU-1 ↑ +\|", printed)
    assert "ROUGE-L" not in printed.split("**Legend")[0]
    assert "constant (baseline)" in printed and (tmp_path / "figs" / "cmp_nlg.png").is_file()
    assert "wrote" not in printed and f"wrote {tmp_path / 'figs' / 'cmp_nlg.png'}" in captured.err


def test_cli_error_for_a_folder_without_results(tmp_path):
    from uarbench.errors import UarbenchError
    with pytest.raises(UarbenchError, match="no results folder"):
        run_cli(["compare", str(tmp_path / "missing")])

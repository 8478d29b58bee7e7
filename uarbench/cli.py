"""The ``uarbench`` command: parse arguments, call one library function, print the result.

Bad input raises :class:`UarbenchError`, printed as one line and exit status 2. Progress and
status lines go through the ``uarbench`` logger on stderr (:mod:`uarbench.progress`); results
go to stdout or the files named.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import uarbench
from uarbench.errors import UarbenchError


DESCRIPTION = """\
uarbench trains radiology report generators (UAR and its ablation rows, Base, R2Gen,
R2GenCMN, sanity floors), scores them with the field's NLG metrics (BLEU-1..4, METEOR,
ROUGE-L, CIDEr through pycocoevalcap) and clinical efficacy (CheXpert-label P/R/F1,
RadGraph F1), and turns a results folder into paper tables and leaderboards with seed
variance, bootstrap CIs, significance tests and a signature on every number.

Everything runs offline on the embedded synth-cxr dataset by default; IU-Xray and
MIMIC-CXR are read from --data-root in R2Gen's format."""

EPILOG = """\
examples:
  uarbench run --suite ablations                 # paper Table 2 on synth-cxr, 3 seeds
  uarbench compare results/ --out table.md --out table.tex --out board.html
  uarbench eval preds.jsonl --dataset iu_xray --data-root data/iu_xray
  uarbench train --model uar --preset paper --dataset iu_xray --data-root data/iu_xray \\
      --out runs/uar --device cuda

`uarbench COMMAND --help` lists a command's options with their defaults and examples."""

EXAMPLES = {
    "data info": ["uarbench data info --dataset iu_xray --data-root data/iu_xray",
                  "uarbench data info --dataset synth-cxr --no-images"],
    "data synth": ["uarbench data synth --out data/synth --preview",
                   "uarbench data synth --out data/mimic-like --n-train 20000 --size 512 "
                   "--format jpeg"],
    "predict": ["uarbench predict --model nn_retrieval --out preds.jsonl",
                "uarbench predict --model constant --dataset iu_xray --data-root data/iu_xray "
                "--out const.jsonl"],
    "train": ["uarbench train --out runs/uar                 # UAR cpu-small on synth-cxr",
              "uarbench train --model uar --set lsu=false --set tir=false --out runs/row-b",
              "uarbench train --model r2gen --preset paper --dataset iu_xray "
              "--data-root data/iu_xray --out runs/r2gen --device cuda --compile"],
    "run": ["uarbench run --suite ablations                 # every row, 3 seeds, resumable",
            "uarbench run --suite main --seeds 0,1 --out results --log-file run.log",
            "uarbench run --suite ablations --device cuda --jobs 2   # 2 jobs per GPU"],
    "label": ["uarbench label --reports preds.jsonl --out labels.csv",
              "uarbench label --card --dev-annotations ../shared/data/iu_xray/mesh_dev.csv"],
    "ls": ["uarbench ls"],
    "validate": ["uarbench validate", "uarbench validate my_benchmark.toml"],
    "eval": ["uarbench eval preds.jsonl --dataset iu_xray --data-root data/iu_xray",
             "uarbench eval res.csv gts.csv --order-from data/iu_xray/annotation.json",
             "uarbench eval preds.jsonl refs.jsonl --all-conventions"],
    "import": ["uarbench import released.csv --name R2Gen-released --dataset iu_xray "
               "--data-root data/iu_xray --out results/main --citation 'Chen et al. 2020'"],
    "compare": ["uarbench compare results/ --suite ablations",
                "uarbench compare results/ --suite main --out table.tex --standalone --ci none",
                "uarbench compare results/ --out board.html --plots figures/"],
}


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Help like sacrebleu's: each option's default shown after its text (unless the text says
    it already), descriptions and example epilogs kept as written."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if ("%(default)" in text or "default" in text.lower() or action.required
                or default in (None, False, [], argparse.SUPPRESS) or not action.option_strings):
            return text
        return text + " (default: %(default)s)"


def command(sub, name: str, *, help: str, description: str | None = None,
            key: str | None = None) -> argparse.ArgumentParser:
    """A sub-command parser with the shared formatter, its examples and -v/-q/--log-file."""
    examples = EXAMPLES.get(key or name, [])
    epilog = ("examples:\n" + "\n".join(f"  {e}" for e in examples)) if examples else None
    p = sub.add_parser(name, help=help, description=description or help[:1].upper() + help[1:],
                       epilog=epilog, formatter_class=HelpFormatter)
    _logging_args(p, default=argparse.SUPPRESS)
    return p


def _logging_args(p: argparse.ArgumentParser, default=None) -> None:
    g = p.add_argument_group("output")
    g.add_argument("-v", "--verbose", action="count", default=0 if default is None else default,
                   help="more detail on stderr (DEBUG lines: every stage of every run)")
    g.add_argument("-q", "--quiet", action="store_true",
                   default=False if default is None else default,
                   help="warnings and errors only (no progress)")
    g.add_argument("--log-file", type=Path, default=default,
                   help="also append the log (INFO and above) to this file, e.g. for SLURM jobs")


def _version_text() -> str:
    from uarbench.metrics.nlg import metric_versions
    parts = [f"uarbench {uarbench.__version__}"]
    parts += [f"  {k}: {v}" for k, v in metric_versions().items()]
    return "\n".join(parts)


def _dataset_args(p: argparse.ArgumentParser, required: bool = False) -> None:
    from uarbench.data.datasets import DATASETS
    p.add_argument("--dataset", required=required, choices=DATASETS.names(),
                   help="registered dataset (synth-cxr needs no data: it is generated on demand)")
    p.add_argument("--data-root", type=Path, help="folder with annotation.json and images/ "
                   "(R2Gen layout; not needed for synth-cxr)")


def cmd_data_info(a: argparse.Namespace) -> int:
    from uarbench.benchmark import default_synth_config
    from uarbench.data.datasets import load_dataset
    # the check decodes every image once (a text file named .png, a PNG cut short)
    ds = load_dataset(a.dataset, a.data_root, image_check="none" if a.no_images else "open",
                      synth_config=default_synth_config())
    tok = ds.tokenizer
    rows = []
    for split, studies in ds.annotation.splits.items():
        lens = [len(ds.clean(s.report).split()) for s in studies]
        rows.append((split, len(studies), f"{sum(lens) / max(len(lens), 1):.1f}", max(lens, default=0)))
    from tabulate import tabulate
    print(f"dataset {ds.name} at {ds.root} (annotation sha256 {ds.content_hash[:16]})")
    print(tabulate(rows, headers=("split", "studies", "mean words (cleaned)", "max words")))
    print(f"vocabulary (train split, count >= {tok.threshold}): {len(tok.words)} words, "
          f"{len(tok)} ids with <pad> <bos> <eos> <unk>; max_seq_length {tok.max_seq_length}")
    return 0


def cmd_data_synth(a: argparse.Namespace) -> int:
    from uarbench.data.synth import SynthConfig, contact_sheet, generate_synth
    cfg = SynthConfig(n_train=a.n_train, n_val=a.n_val, n_test=a.n_test, size=a.size, seed=a.seed,
                      report_style=a.report_style, image_format=a.image_format)
    root = generate_synth(a.out, cfg, workers=a.workers)
    print(f"synth-cxr written to {root} ({cfg.n_train}/{cfg.n_val}/{cfg.n_test} studies, "
          f"{cfg.size} px, seed {cfg.seed})")
    if a.preview:
        png = contact_sheet(root, Path(a.out) / "preview.png")
        print(f"contact sheet: {png}")
    return 0


def cmd_predict(a: argparse.Namespace) -> int:
    from uarbench.benchmark import default_synth_config
    from uarbench.data.datasets import load_dataset
    from uarbench.predict import predict
    ds = load_dataset(a.dataset, a.data_root, image_check="none",
                      synth_config=default_synth_config())
    out = predict(a.model, ds, a.split, a.out)
    print(f"predictions of {a.model} on {ds.name}/{a.split}: {out}")
    return 0


def cmd_eval(a: argparse.Namespace) -> int:
    from uarbench.benchmark import find_benchmark_file, load_benchmark
    from uarbench.evaluate import evaluate
    from uarbench.report_files import ColumnChoice
    bench = load_benchmark() if find_benchmark_file() else None
    refs = a.references
    files = ([a.predictions] if a.predictions is not None else []) + list(a.files)
    if len(files) == 2:
        if refs is not None:
            raise UarbenchError("two files given and --references too.",
                                fix="give PRED_FILE REF_FILE, or PRED_FILE --references REF_FILE.")
        refs = files[1]
    elif len(files) != 1:
        raise UarbenchError(f"{len(files)} files given.",
                            fix="give one file (predictions, maybe with references) or two "
                                "(predictions, references).")
    pred_file = files[0]
    out_dir = a.out or pred_file.parent
    convention = a.convention or (bench.convention if bench else "r2gen")
    job = dict(predictions=pred_file, references=refs, dataset=a.dataset, split=a.split,
               data_root=a.data_root, columns=ColumnChoice(a.id_col, a.pred_col, a.ref_col),
               order_from=a.order_from, skip_empty_references=a.skip_empty_references,
               common_ids=a.common_ids)
    if a.all_conventions:
        from uarbench.evaluate import convention_table
        table = convention_table(**job, cleaning=a.cleaning,
                                 metrics=bench.nlg_metrics if bench else None)
        text = table.markdown() if a.format == "md" else table.to_json()
        print(text)
        path = table.write(out_dir)
        print(f"wrote {path}", file=sys.stderr)
        return 0
    ev = evaluate(**job, convention=convention, cleaning=a.cleaning,
                  metrics=bench.nlg_metrics if bench else None,
                  out_dir=out_dir, labeler=None if a.labeler == "none" else a.labeler,
                  labeler_kwargs=_labeler_kwargs(a), bootstrap=a.bootstrap,
                  confidence=a.confidence, bootstrap_seed=a.bootstrap_seed,
                  radgraph_model=a.radgraph_model, radgraph_model_type=a.radgraph_model_type)
    print(ev.table())
    for line in ev.input_notes():
        print(line)
    print(f"wrote {out_dir / 'metrics.json'} and {out_dir / 'per_report_stats.csv'}"
          + ("" if a.labeler == "none" else ", labels_pred.csv and labels_ref.csv"))
    return 0


def cmd_import(a: argparse.Namespace) -> int:
    from uarbench.report_files import ColumnChoice
    from uarbench.runner.imported import import_outputs
    scoring = {"labeler": None if a.labeler == "none" else a.labeler,
               "labeler_kwargs": _labeler_kwargs(a), "bootstrap": a.bootstrap,
               "radgraph_model": a.radgraph_model, "radgraph_model_type": a.radgraph_model_type}
    path = import_outputs(a.file, name=a.name, out=a.out, dataset=a.dataset,
                          data_root=a.data_root, references=a.references, citation=a.citation,
                          convention=a.convention, split=a.split, cleaning=a.cleaning,
                          columns=ColumnChoice(a.id_col, a.pred_col, a.ref_col),
                          order_from=a.order_from, skip_empty_references=a.skip_empty_references,
                          common_ids=a.common_ids, overwrite=a.overwrite, scoring=scoring)
    from uarbench.evaluate import input_notes
    from uarbench.store import read_complete
    record = read_complete(path)   # just written by import_outputs: complete
    for line in input_notes(record["config"].get("inputs", {})):
        print(line)
    shown = ("BLEU-4", "METEOR", "ROUGE-L", "CIDEr")
    print("  ".join(f"{k} {'n/a' if record['metrics'].get(k, {}).get('value') is None else format(record['metrics'][k]['value'], '.4f')}"
                    for k in shown))
    print(f"imported {a.name!r} into {path} (convention {record['config']['convention']}); "
          f"rank it: uarbench compare {path.parent}")
    return 0


def _shared_stage1_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-shared-stage1", dest="shared_stage1", action="store_false",
                   help="train every run's stage 1 itself instead of taking it from an earlier "
                        "run with the same stage 1 (e.g. UAR's from ablation row (e)); the "
                        "results are byte-identical either way, only slower")


def _convention_arg(p: argparse.ArgumentParser, what: str) -> None:
    from uarbench.conventions import CONVENTIONS, make_convention
    lines = "; ".join(f"{n}: {make_convention(n, cleaning=None).summary}"
                      for n in CONVENTIONS.names() if n != "r2gen_compat")
    p.add_argument("--convention", choices=CONVENTIONS.names(),
                   help=f"scoring convention {what} (default: benchmark.toml's "
                        f"metrics.convention, r2gen). {lines}; r2gen_compat: R2Gen's truncated, "
                        "<unk>-mapped references (needs --dataset)")


def _input_file_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--id-col", help="study id column (default: the first of id, dicom_id, "
                   "images_id, image_id, study_id)")
    p.add_argument("--pred-col", help="prediction column (default: prediction, "
                   "generated_report, pred_report, ..., report)")
    p.add_argument("--ref-col", help="reference column (default: reference, reference_report, "
                   "ground_truth, labels, ...; a references file may call it report)")
    p.add_argument("--order-from", type=Path, metavar="ANNOTATION_JSON",
                   help="id-less files (R2Gen's res.csv / gts.csv): rows are the studies of "
                        "--split in this annotation.json's order")
    p.add_argument("--skip-empty-references", action="store_true",
                   help="leave out rows whose reference is empty (metric-summary rows of some "
                        "released files) instead of stopping; they are counted in metrics.json")
    p.add_argument("--common-ids", action="store_true",
                   help="score only the ids predictions and references share (the signature "
                        "says ids:common) instead of stopping on a mismatch")


def cmd_train(a: argparse.Namespace) -> int:
    from uarbench.configs import apply_overrides
    from uarbench.benchmark import default_synth_config
    from uarbench.data.datasets import load_dataset
    from uarbench.models import MODELS
    from uarbench.training.config import TrainConfig
    from uarbench.training.run import train_model, trainable
    if not trainable(a.model):
        raise UarbenchError(f"model {a.model!r} is a floor: it is fitted, not trained.",
                            fix=f"use `uarbench predict --model {a.model}`.")
    preset = a.preset.replace("-", "_")
    config_class = MODELS.get(a.model).config_class
    model_cfg = apply_overrides(getattr(config_class, preset)(), a.set, what="model")
    train_cfg = apply_overrides(getattr(TrainConfig, preset)(), a.train_set, what="train")
    if a.compile:
        train_cfg = train_cfg.replace(compile=True)
    train_cfg = train_cfg.replace(**{k: v for k, v in (("device", a.device), ("seed", a.seed))
                                     if v is not None})
    ds = load_dataset(a.dataset, a.data_root, synth_config=default_synth_config())
    summary = train_model(model=a.model, dataset=ds, model_cfg=model_cfg, train_cfg=train_cfg,
                          out_dir=a.out, share_stage1=a.shared_stage1)
    if int(os.environ.get("RANK", "0")) != 0:  # a torchrun worker: rank 0 reports
        return 0
    test = summary["metrics"]["test"]
    print(f"selected: stage {summary['selected']['stage']} epoch {summary['selected']['epoch']} "
          f"(val BLEU-4 {summary['selected']['bleu4']:.4f}); {summary['wall_s']} s on "
          f"{summary['device']}")
    use = summary["image_use_val"]
    print(f"image use (val, teacher forced): CE {use['ce']:.4f} with its own images, "
          f"{use['ce_shuffled_images']:.4f} with another study's (gap {use['gap']:+.4f})")
    print("test: " + "  ".join(f"{k} {'n/a' if v is None else f'{v:.4f}'}" for k, v in test.items()))
    print(f"wrote {a.out}")
    return 0


def _seeds(text: str) -> list[int]:
    try:
        seeds = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"seeds must be integers like 0,1,2 (got {text!r})")
    if not seeds or any(x < 0 for x in seeds):
        raise argparse.ArgumentTypeError(f"seeds must be integers >= 0 (got {text!r})")
    if len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"seeds must not repeat (got {text!r}): two runs would "
                                         "share one folder")
    return seeds


def cmd_run(a: argparse.Namespace) -> int:
    from tabulate import tabulate
    from uarbench.progress import seconds
    from uarbench.results import load_runs, summary_table
    from uarbench.runner import run_suite
    root = None if a.data_root is None else str(Path(a.data_root).resolve())
    scoring = {}
    if a.labeler != "rules":
        scoring["labeler"] = None if a.labeler == "none" else a.labeler
        scoring["labeler_kwargs"] = {k: None if v is None else str(Path(v).resolve())
                                     for k, v in _labeler_kwargs(a).items()}
    elif a.hedges != "probable":
        scoring["labeler_kwargs"] = _labeler_kwargs(a)
    if a.convention is not None:
        scoring["convention"] = a.convention
    if a.radgraph_model is not None:
        scoring["radgraph_model"] = str(Path(a.radgraph_model).resolve())
        scoring["radgraph_model_type"] = a.radgraph_model_type
    report = run_suite(a.suite, dataset=a.dataset, data_root=root, preset=a.preset,
                       seeds=a.seeds, device=a.device, out=a.out, overwrite=a.overwrite,
                       dry_run=a.dry_run, executor=a.executor, jobs=a.jobs,
                       ray_address=a.ray_address, benchmark=a.benchmark, scoring=scoring,
                       if_busy=a.if_busy, share_stage1=a.shared_stage1,
                       gpus_per_run=a.gpus_per_run)
    if a.dry_run:
        rows = [(s.name, s.model, s.dataset, s.preset, report.statuses[s.name]) for s in report.specs]
        print(tabulate(rows, headers=("run", "model", "dataset", "preset", "state")))
        print(f"{len(rows)} runs in suite {a.suite!r} under {Path(a.out) / a.suite} (dry run: "
              f"nothing executed)")
        return 0
    done = sum(o.status == "done" for o in report.outcomes)
    skipped = sum(o.status == "skipped" for o in report.outcomes)
    busy = [o for o in report.outcomes if o.status == "busy"]
    runs = load_runs(a.out, a.suite)
    names = [s.name for s in report.specs]
    runs = runs[runs["run"].isin(names)]
    table = summary_table(runs, list(dict.fromkeys(s.row for s in report.specs)))
    if not table.empty:
        # the headline columns; `uarbench compare` shows every metric with CIs and tests
        keep = [c for c in table.columns if not c.startswith(("CE-P", "CE-R"))
                and not (table[c] == "—").all()]
        table = table[keep].copy()
        wall = {o.run: o.wall_s for o in report.outcomes if o.status in ("done", "failed")}
        row_of = {s.name: s.row for s in report.specs}
        spent = {row: sum(w for run, w in wall.items() if row_of[run] == row) for row in table.index}
        table["wall"] = [seconds(spent[row]) if spent[row] else "skipped" for row in table.index]
        # strings as formatted: tabulate must not re-parse them ("0.7970" -> 0.797)
        print(tabulate(table, headers="keys", tablefmt="github", disable_numparse=True))
        print(f"(CE precision / recall, CIs and significance: uarbench compare {a.out} "
              f"--suite {a.suite})")
    print(f"suite {a.suite}: {done} run(s) done, {skipped} skipped (complete), "
          + (f"{len(busy)} busy in another process, " if busy else "") +
          f"{len(report.failures)} failed; results in {Path(a.out) / a.suite}")
    for o in busy:
        print(f"busy, skipped: {o.error} (rerun later, or --if-busy wait)", file=sys.stderr)
    for o in report.failures:
        print(f"FAILED {o.run}: {o.error}" + (f" (log: {o.log})" if o.log else ""),
              file=sys.stderr)
    return 0 if report.ok else 1


def cmd_ls(a: argparse.Namespace) -> int:
    from uarbench.benchmark import load_benchmark
    from uarbench.data.datasets import DATASETS
    from uarbench.metrics.nlg import NLG_FAMILIES
    from uarbench.models import MODELS
    from uarbench.runner import load_suites
    bench = load_benchmark()
    print(f"benchmark.toml version {bench.version} ({bench.path})")
    print("suites:")
    for name, suite in load_suites(bench).items():
        print(f"  {name:<10} {len(suite.rows)} rows: {suite.description}")
    print("models:   " + ", ".join(MODELS.names()))
    print("datasets: " + ", ".join(DATASETS.names()))
    print("metrics:  " + ", ".join(NLG_FAMILIES))
    from uarbench.conventions import ORDER
    print("scoring conventions: " + ", ".join(ORDER) + f" (default: {bench.convention})")
    return 0


def cmd_validate(a: argparse.Namespace) -> int:
    from uarbench.benchmark import load_benchmark
    from uarbench.runner import load_suites
    bench = load_benchmark(a.file)
    suites = load_suites(bench)
    print(f"{bench.path}: valid (version {bench.version}, {len(suites)} suites, "
          f"{sum(len(s.rows) for s in suites.values())} rows)")
    return 0


def _labeler_kwargs(a: argparse.Namespace) -> dict:
    if a.labeler == "chexbert":
        return {"checkpoint": a.chexbert_checkpoint, "bert_dir": a.chexbert_bert_dir}
    if a.labeler == "rules" and a.hedges != "probable":
        return {"hedges": a.hedges}
    return {}


def _labeler_args(p: argparse.ArgumentParser, allow_none: bool) -> None:
    choices = ("rules", "chexbert") + (("none",) if allow_none else ())
    p.add_argument("--labeler", default="rules", choices=choices,
                   help="CheXpert labeler for clinical efficacy (rules: offline, the default)"
                        + ("; none: no CE" if allow_none else ""))
    p.add_argument("--hedges", default="probable", choices=("probable", "all"),
                   help="rules labeler: a finding raised only as a possibility ('may represent "
                        "X', 'cannot be excluded') is blank (probable, the default, measured on "
                        "manual annotations) or uncertain -1 like CheXpert (all) (default: "
                        "%(default)s)")
    p.add_argument("--chexbert-checkpoint", type=Path, help="CheXbert weights (chexbert.pth)")
    p.add_argument("--chexbert-bert-dir", type=Path,
                   help="local folder with the BERT tokenizer vocab.txt and config.json")


def _radgraph_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--radgraph-model", type=Path,
                   help="local RadGraph model folder (radgraph package format) for RadGraph F1")
    p.add_argument("--radgraph-model-type", default="radgraph",
                   choices=("radgraph", "radgraph-xl", "modern-radgraph-xl"),
                   help="which RadGraph model --radgraph-model holds")


def cmd_label(a: argparse.Namespace) -> int:
    if a.card:
        return _label_card(a)
    if a.reports is None or a.out is None:
        raise UarbenchError("--reports and --out are needed to label reports.",
                            fix="uarbench label --reports FILE --out labels.csv (or --card).")
    from uarbench.labeling.label_file import label_file
    out = label_file(a.reports, a.out, labeler=a.labeler, field=a.field, **_labeler_kwargs(a))
    print(f"wrote {out}")
    if a.compare_with is not None:
        from uarbench.labeling.agreement import agreement, format_agreement, read_label_csv
        rows = agreement(read_label_csv(out), read_label_csv(a.compare_with))
        print(format_agreement(rows, a.labeler, Path(a.compare_with).name))
    return 0


def _label_card(a: argparse.Namespace) -> int:
    from uarbench.labeling.card import (
        CARD_PATH, format_card, load_card, measure_card, same_measurement, write_card,
    )
    if a.dev_annotations is None:
        print(format_card(load_card()))
        return 0
    from uarbench.labeling.rules import RuleLabeler
    if a.write_card and a.hedges != "probable":
        raise UarbenchError("the stored card is the default labeler's (--hedges probable).",
                            fix="drop --write-card to measure --hedges all without storing it.")
    card = measure_card(a.dev_annotations, RuleLabeler(hedges=a.hedges))
    print(format_card(card))
    if a.write_card:
        print(f"wrote {write_card(card)}")
    elif CARD_PATH.is_file() and a.hedges == "probable" and (stored := load_card())[
            "dev_set"]["sha256"] == card["dev_set"]["sha256"] and not same_measurement(card, stored):
        print(f"note: the stored card ({CARD_PATH}) differs from this measurement; "
              "rerun with --write-card to update it.")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="uarbench", description=DESCRIPTION, epilog=EPILOG,
                                formatter_class=HelpFormatter)
    p.add_argument("--version", action="store_true", help="print package and metric versions")
    _logging_args(p)
    sub = p.add_subparsers(dest="command", title="commands", metavar="COMMAND")

    data = command(sub, "data", help="dataset tools: inspect a dataset, generate synth-cxr"
                   ).add_subparsers(dest="data_command", required=True, metavar="TOOL")
    info = command(data, "info", help="split counts, vocabulary size, report lengths",
                   key="data info")
    _dataset_args(info, required=True)
    info.add_argument("--no-images", action="store_true", help="read the reports only")
    info.set_defaults(func=cmd_data_info)
    synth = command(data, "synth", help="generate the synth-cxr dataset (procedural chest "
                    "radiographs with known findings and reports)", key="data synth")
    synth.add_argument("--out", type=Path, required=True, help="folder to write (R2Gen layout)")
    synth.add_argument("--n-train", type=int, default=600, help="training studies")
    synth.add_argument("--n-val", type=int, default=100, help="validation studies")
    synth.add_argument("--n-test", type=int, default=200, help="test studies")
    synth.add_argument("--size", type=int, default=128, help="image side in pixels")
    synth.add_argument("--seed", type=int, default=0, help="generation seed")
    synth.add_argument("--report-style", default="structured", choices=("structured", "varied"),
                       help="structured: one template per finding state; varied: paraphrases "
                            "and shuffled sentence order")
    synth.add_argument("--format", dest="image_format", default="png", choices=("png", "jpeg"),
                       help="image files: png (default, lossless) or jpeg (quality 95, like "
                            "MIMIC-CXR-JPG)")
    synth.add_argument("--workers", type=int, default=0,
                       help="processes generating studies (default 0: every core; the files "
                            "are the same for any number)")
    synth.add_argument("--preview", action="store_true", help="also save preview.png")
    synth.set_defaults(func=cmd_data_synth)

    pr = command(sub, "predict", help="fit a floor (constant, nn_retrieval) and write its "
                 "predictions as JSONL")
    pr.add_argument("--model", required=True, help="registered model (see `uarbench ls`)")
    _dataset_args(pr)
    pr.add_argument("--split", default="test", choices=("train", "val", "test"),
                    help="split to predict")
    pr.add_argument("--out", type=Path, required=True, help="predictions JSONL to write")
    pr.set_defaults(func=cmd_predict, dataset="synth-cxr")

    tr = command(sub, "train", help="train UAR (any ablation row) or a baseline and score it")
    tr.add_argument("--model", default="uar", help="uar, base, r2gen or r2gencmn")
    tr.add_argument("--preset", default="cpu-small", choices=("cpu-small", "paper"),
                    help="model and training sizes: cpu-small trains in minutes on 2 cores; "
                         "paper is the paper's setting")
    _dataset_args(tr)
    tr.add_argument("--out", type=Path, required=True,
                    help="run folder (resumes from its last checkpoint when rerun)")
    tr.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                    help="model config override, e.g. --set lsu=false --set fusion=add "
                         "--set vq.steps=50 (a nested field by its dotted name)")
    tr.add_argument("--train-set", action="append", default=[], metavar="FIELD=VALUE",
                    help="training config override, e.g. --train-set epochs_stage1=3")
    tr.add_argument("--device", choices=("cpu", "cuda", "auto"),
                    help="where to train (default: the preset's, auto = cuda when torch sees a "
                         "GPU)")
    tr.add_argument("--seed", type=int, help="training seed (default: the preset's, 0)")
    tr.add_argument("--compile", action="store_true",
                    help="torch.compile the model call of each training step (same as "
                         "--train-set compile=true; off by default)")
    _shared_stage1_arg(tr)
    tr.set_defaults(func=cmd_train, dataset="synth-cxr")

    run = command(sub, "run", help="run a suite of benchmark.toml: train, predict and score "
                  "every row and seed (skips complete runs, resumes interrupted ones)")
    run.add_argument("--suite", required=True,
                     help="suite name in benchmark.toml (smoke, main, ablations, basis, fusion, "
                          "stages; `uarbench ls` lists them)")
    _dataset_args(run)
    run.add_argument("--preset", choices=("cpu-small", "paper"),
                     help="default: the suite's, else benchmark.toml [runner].preset")
    run.add_argument("--seeds", type=_seeds, help="comma-separated, e.g. 0,1,2")
    run.add_argument("--device", default="auto", choices=("cpu", "cuda", "auto"),
                     help="auto: cuda when torch sees a GPU (one job per GPU), else the CPU")
    run.add_argument("--out", type=Path, default=Path("results"),
                     help="results folder (<out>/<suite>/<run>/)")
    run.add_argument("--overwrite", action="store_true", help="rerun complete runs too")
    run.add_argument("--dry-run", action="store_true", help="list the runs and their state")
    run.add_argument("--executor", default="local", choices=("local", "ray"),
                     help="local: worker processes on this machine; ray: one Ray task per run")
    run.add_argument("--ray-address", help="an existing Ray cluster (default: start one locally)")
    run.add_argument("--jobs", type=int, help="local runs at a time (default: benchmark.toml "
                     "[runner] jobs, else the core count); on GPUs: jobs per visible GPU "
                     "(default 1, each job sees one GPU through CUDA_VISIBLE_DEVICES)")
    run.add_argument("--gpus-per-run", type=float, default=1.0,
                     help="--executor ray: GPUs each trained run asks for (fractional allowed; "
                          "floors ask none) (default: %(default)s)")
    run.add_argument("--if-busy", default="skip", choices=("skip", "wait", "fail"),
                     help="a run another uarbench process is writing in the same results "
                          "folder: skip it, wait for it, or fail naming that process's pid "
                          "(default: %(default)s)")
    run.add_argument("--benchmark", type=Path, help="benchmark file (default: ./benchmark.toml)")
    _shared_stage1_arg(run)
    _convention_arg(run, "of every run's test scores (part of the run's identity)")
    _labeler_args(run, allow_none=True)
    _radgraph_args(run)
    run.set_defaults(func=cmd_run)

    lb = command(sub, "label", help="CheXpert labels (14 observations) for a reports file")
    lb.add_argument("--reports", type=Path,
                    help="JSONL or CSV with id and report (or prediction / reference)")
    lb.add_argument("--out", type=Path, help="labels CSV to write")
    lb.add_argument("--compare-with", type=Path, metavar="LABELS_CSV",
                    help="another labeler's 14-column CSV of the same reports (CheXpert, "
                         "CheXbert): print per-class Cohen's kappa and F1 against it")
    lb.add_argument("--card", action="store_true",
                    help="print the labeler card: per-class F1 on manual annotations")
    lb.add_argument("--dev-annotations", type=Path, metavar="MESH_CSV",
                    help="with --card: measure now on this MeSH annotation CSV "
                         "(e.g. ../shared/data/iu_xray/mesh_dev.csv)")
    lb.add_argument("--write-card", action="store_true",
                    help="with --card --dev-annotations: store the measurement as the card")
    lb.add_argument("--field", default="report", help="text column (default: report)")
    _labeler_args(lb, allow_none=False)
    lb.set_defaults(func=cmd_label)

    ls = command(sub, "ls", help="list suites, models, datasets and metrics")
    ls.set_defaults(func=cmd_ls)
    va = command(sub, "validate", help="check benchmark.toml, reporting every problem")
    va.add_argument("file", nargs="?", type=Path, help="default: ./benchmark.toml")
    va.set_defaults(func=cmd_validate)

    ev = command(sub, "eval", help="score a predictions file (CSV or JSONL) against a "
                 "dataset split or references", description="Score predictions. "
                 "PRED_FILE [REF_FILE]: CSV or JSONL; one file may hold both the "
                 "prediction and the reference column.")
    ev.add_argument("files", type=Path, nargs="*", metavar="PRED_FILE [REF_FILE]",
                    help="predictions, then optionally references (or use --predictions / "
                         "--references)")
    ev.add_argument("--predictions", type=Path, help="predictions file (or give it first)")
    _dataset_args(ev)
    ev.add_argument("--split", default="test", choices=("train", "val", "test"),
                    help="dataset split the predictions are for")
    ev.add_argument("--references", type=Path, help="references file (CSV or JSONL)")
    _input_file_args(ev)
    _convention_arg(ev, "applied to both sides")
    ev.add_argument("--all-conventions", action="store_true",
                    help="print every NLG metric under every available convention side by side "
                         "(writes all_conventions.json; no CE, no CIs)")
    ev.add_argument("--format", default="md", choices=("md", "json"),
                    help="with --all-conventions: Markdown table or JSON")
    ev.add_argument("--cleaning", help="R2Gen cleaner of the r2gen conventions (default: the "
                    "dataset's, else r2gen-iu)")
    ev.add_argument("--out", type=Path, help="folder for metrics.json (default: next to predictions)")
    _labeler_args(ev, allow_none=True)
    ev.add_argument("--bootstrap", type=int, default=1000,
                    help="paired-bootstrap resamples for 95%% CIs (0: no CIs)")
    ev.add_argument("--confidence", type=float, default=0.95,
                    help="confidence level of the bootstrap intervals")
    ev.add_argument("--bootstrap-seed", type=int, default=0, help="0 is a seed like any other")
    _radgraph_args(ev)
    ev.set_defaults(func=cmd_eval)

    im = command(sub, "import", help="a published system's released output file as a row "
                 "of a results folder (ranked by compare with trained rows)",
                 description="Score a released output file and write it as a run folder "
                 "(source: imported) that `uarbench compare` ranks with trained runs.")
    im.add_argument("file", type=Path, metavar="PRED_FILE", help="CSV or JSONL outputs")
    im.add_argument("--name", required=True, help="row name (the run folder's name)")
    im.add_argument("--citation", help="where the outputs come from (shown in tables)")
    im.add_argument("--out", type=Path, required=True, metavar="SUITE_DIR",
                    help="the suite's results folder, e.g. results/main")
    _dataset_args(im, required=True)
    im.add_argument("--split", default="test", choices=("train", "val", "test"),
                    help="dataset split the outputs are for")
    im.add_argument("--references", type=Path,
                    help="references file (default: the dataset's split with --data-root, else "
                         "the file's own reference column)")
    _input_file_args(im)
    _convention_arg(im, "applied to both sides")
    im.add_argument("--cleaning", help="R2Gen cleaner of the r2gen conventions")
    im.add_argument("--overwrite", action="store_true", help="replace a run of that name")
    _labeler_args(im, allow_none=True)
    im.add_argument("--bootstrap", type=int, default=1000,
                    help="paired-bootstrap resamples for the run's own CIs (0: none)")
    _radgraph_args(im)
    im.set_defaults(func=cmd_import)

    from uarbench.compare.cli import add_compare_parser
    add_compare_parser(sub, command)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from uarbench.progress import setup_logging
    setup_logging(-1 if args.quiet else args.verbose, args.log_file)
    if args.version:
        print(_version_text())
        return 0
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    from uarbench.metrics.base import MetricUnavailable
    try:
        return args.func(args)
    except (UarbenchError, MetricUnavailable) as e:
        print(f"uarbench: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

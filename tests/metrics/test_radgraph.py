"""RadGraph F1 arithmetic on hand-made annotations (checked by hand and against the radgraph
package's own reward function), the metric family's statistics and signature, and the
unavailable paths of the extractor."""
from __future__ import annotations

import hashlib
import json
import os
import random
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from uarbench.errors import UarbenchError  # noqa: E402
from uarbench.metrics.base import MetricUnavailable  # noqa: E402
from uarbench.metrics.radgraph import (  # noqa: E402
    Annotation, Entity, RadGraphAnnotator, RadGraphF1, Relation, from_radgraph_output,
    radgraph_rewards, stats_from_annotations,
)


def report(*entities: tuple, relations: tuple = ()) -> dict:
    """The radgraph package's output for one report: entities (tokens, label) numbered from 1,
    relations (source number, type, target number)."""
    ents = {str(i): {"tokens": t, "label": lab, "start_ix": i, "end_ix": i, "relations": []}
            for i, (t, lab) in enumerate(entities, start=1)}
    for src, kind, tgt in relations:
        ents[str(src)]["relations"].append([kind, str(tgt)])
    return {"text": " ".join(t for t, _ in entities), "entities": ents}


EFFUSION, PLEURAL = ("effusion", "OBS-DP"), ("pleural", "ANAT-DP")
REF = report(EFFUSION, PLEURAL, ("cardiomegaly", "OBS-DP"), relations=((1, "located_at", 2),))
HYP = report(EFFUSION, PLEURAL, ("edema", "OBS-DA"))
CASED = report(("Effusion", "OBS-DP"), PLEURAL, relations=((1, "located_at", 2),))
LOWER = report(EFFUSION, PLEURAL, relations=((1, "located_at", 2),))
EMPTY = {"text": "", "entities": {}}


def rewards(hyp: dict, ref: dict) -> tuple[float, float, float, float]:
    r = radgraph_rewards(from_radgraph_output(hyp), from_radgraph_output(ref))
    return r.simple, r.partial, r.complete, r.combined


def test_identical_reports_score_one_at_every_level():
    assert rewards(REF, REF) == (1.0, 1.0, 1.0, 1.0)


def test_empty_reports_score_zero():
    assert rewards(EMPTY, EMPTY) == (0.0, 0.0, 0.0, 0.0)
    assert rewards(EMPTY, REF) == (0.0, 0.0, 0.0, 0.0)
    assert rewards(REF, EMPTY) == (0.0, 0.0, 0.0, 0.0)


def test_reports_without_relations():
    """F1RadGraph compares entities only; CXR-Report-Metric's relation F1 is 0 (empty sets), so
    the combined score of two identical relation-free reports is 0.5."""
    same = report(EFFUSION, ("edema", "OBS-DA"))
    assert rewards(same, same) == (1.0, 1.0, 1.0, 0.5)


def test_partial_overlap_by_hand():
    # simple: {effusion, pleural} shared of 3 vs 3 -> P = R = 2/3
    # partial: ref effusion carries True (has a relation), hyp's does not -> only pleural: 1/3
    # complete: ref effusion becomes (effusion, OBS-DP, located_at, pleural) -> 1/3
    # combined: (entity 2/3 + relation 0 (hyp has none)) / 2 = 1/3
    assert rewards(HYP, REF) == pytest.approx((2 / 3, 1 / 3, 1 / 3, 1 / 3), abs=1e-12)


def test_precision_and_recall_differ():
    one = report(EFFUSION)
    # P = 1, R = 1/3 -> F1 = 2 * 1/3 / (4/3) = 0.5; the combined relation F1 is 0
    assert rewards(one, REF)[0] == pytest.approx(0.5)
    assert rewards(one, REF)[3] == pytest.approx(0.25)


def test_case_only_ignored_in_complete_relation_items():
    # tokens are compared case-sensitively except in the complete level's relation items
    assert rewards(CASED, LOWER) == pytest.approx((0.5, 0.5, 1.0, 0.25))


def test_duplicate_entities_collapse():
    assert rewards(report(EFFUSION, EFFUSION), report(EFFUSION))[:3] == (1.0, 1.0, 1.0)


def random_report(rng: random.Random) -> dict:
    words = ["effusion", "Effusion", "pleural", "lung", "edema", "heart", "enlarged"]
    labels = ["OBS-DP", "OBS-DA", "OBS-U", "ANAT-DP"]
    n = rng.randint(0, 4)
    ents = [(rng.choice(words), rng.choice(labels)) for _ in range(n)]
    rels = [(rng.randint(1, n), rng.choice(["located_at", "suggestive_of", "modify"]),
             rng.randint(1, n)) for _ in range(rng.randint(0, 3) if n else 0)]
    return report(*ents, relations=tuple(rels))


def test_matches_the_radgraph_package_reward_function():
    rewards_mod = pytest.importorskip("radgraph.rewards")
    rng = random.Random(0)
    pairs = [(HYP, REF), (REF, HYP), (CASED, LOWER), (EMPTY, REF), (REF, REF)]
    pairs += [(random_report(rng), random_report(rng)) for _ in range(300)]
    nonzero = 0
    for hyp, ref in pairs:
        theirs = rewards_mod.compute_reward(hyp, ref, "all")
        ours = rewards(hyp, ref)[:3]
        assert ours == pytest.approx(theirs, abs=1e-12), (hyp, ref)
        nonzero += any(v not in (0.0, 1.0) for v in ours)
    assert nonzero > 30  # the random pairs exercise fractional overlaps, not only 0 and 1


def test_stats_and_scores_are_per_report_means():
    family = RadGraphF1()
    hyps = [from_radgraph_output(r) for r in (HYP, REF, EMPTY)]
    refs = [from_radgraph_output(r) for r in (REF, REF, REF)]
    stats = stats_from_annotations(hyps, refs)
    assert stats.shape == (3, 4)
    scores = family.compute_from_annotations(hyps, refs)
    assert scores["RadGraph-F1-simple"] == pytest.approx((2 / 3 + 1 + 0) / 3)
    assert scores["RadGraph-F1-partial"] == pytest.approx((1 / 3 + 1 + 0) / 3)
    assert scores["RadGraph-combined"] == pytest.approx((1 / 3 + 1 + 0) / 3)
    # a resample of rows is scored from the same statistics
    resampled = family.score_from_stats(stats[[1, 1, 2]])
    assert resampled["RadGraph-F1-complete"] == pytest.approx(2 / 3)


def test_bad_relation_target_is_one_clear_error():
    bad = report(EFFUSION)
    bad["entities"]["1"]["relations"].append(["located_at", "7"])
    with pytest.raises(UarbenchError, match="'7'"):
        from_radgraph_output(bad)
    with pytest.raises(UarbenchError, match="not a RadGraph annotation"):
        from_radgraph_output({"entities": {"1": {"label": "OBS-DP"}}})


def test_unavailable_without_model_folder(tmp_path):
    family = RadGraphF1()
    reason = family.unavailable_reason()
    assert reason == "unavailable: no RadGraph model folder given (pass --radgraph-model DIR)"
    with pytest.raises(MetricUnavailable, match="no RadGraph model folder"):
        family.stats(["no effusion"], ["no effusion"])
    missing = RadGraphF1(RadGraphAnnotator(tmp_path / "nowhere", "radgraph-xl"))
    assert str(tmp_path / "nowhere") in missing.unavailable_reason()
    assert dict(missing.signature_fields) == {"model_type": "radgraph-xl", "model": "none"}
    with pytest.raises(UarbenchError, match="unknown RadGraph model type"):
        RadGraphAnnotator(tmp_path, "radgraph-2")


def model_folder(root: Path, transformer: str) -> Path:
    """A radgraph-layout folder (root/radgraph) whose config names ``transformer``."""
    folder = root / "radgraph"
    (folder / "vocabulary").mkdir(parents=True)
    (folder / "weights.th").write_bytes(b"not real weights")
    config = {"dataset_reader": {"token_indexers": {"bert": {"model_name": transformer}}},
              "model": {"embedder": {"token_embedders": {"bert": {"model_name": transformer}}}}}
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def test_uncached_hub_transformer_is_unavailable_not_downloaded(tmp_path):
    model_folder(tmp_path, "uarbench-test/not-a-cached-model")
    reason = RadGraphAnnotator(tmp_path).unavailable_reason()
    assert reason is not None and reason.startswith("unavailable: ")
    assert "Hugging Face cache" in reason and str(tmp_path) in reason


class FakeRadGraph:
    """Stands in for radgraph.RadGraph: 'effusion' -> an entity, 'pleural' -> a located_at."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, texts: list[str]) -> dict:
        self.calls.append(list(texts))
        out = {}
        for i, text in enumerate(texts):
            ents = [EFFUSION] + ([PLEURAL] if "pleural" in text else [])
            rels = ((1, "located_at", 2),) if "pleural" in text else ()
            out[str(i)] = report(*ents, relations=rels) if "effusion" in text else EMPTY
        return out


def test_family_annotates_each_text_once_and_skips_empty(tmp_path):
    local = tmp_path / "bert"
    local.mkdir()
    (local / "config.json").write_text("{}")
    folder = model_folder(tmp_path, str(local))
    annotator = RadGraphAnnotator(tmp_path)
    assert annotator.unavailable_reason() is None
    annotator._model = FakeRadGraph()  # the real model is exercised by the slow test
    family = RadGraphF1(annotator)
    preds = ["effusion", "pleural effusion", "", "clear"]
    refs = ["pleural effusion", "pleural effusion", "pleural effusion", "effusion"]
    stats = family.stats(preds, refs)
    assert annotator._model.calls == [["clear", "effusion", "pleural effusion"]]
    np.testing.assert_allclose(stats[:, 0], [2 / 3, 1.0, 0.0, 0.0])
    sha = hashlib.sha256((folder / "weights.th").read_bytes()).hexdigest()[:12]
    assert dict(family.signature_fields) == {"model_type": "radgraph", "model": sha}
    assert "radgraph" in family.impl


def test_annotation_dataclasses_roundtrip():
    ann = from_radgraph_output(REF)
    assert ann.entities["1"] == Entity("effusion", "OBS-DP", 1, 1)
    assert ann.relations == (Relation("1", "2", "located_at"),)
    assert Annotation().entities == {}


def build_random_radgraph(root: Path) -> Path:
    """A complete radgraph-package model folder (root/radgraph) with random weights: a 1-layer
    BERT saved locally, the DyGIE config the package reads, a RadGraph-v1 label vocabulary."""
    transformers = pytest.importorskip("transformers")
    import torch
    from radgraph.allennlp.data import Vocabulary
    from radgraph.allennlp.modules import text_field_embedders, token_embedders
    from radgraph.dygie.models import dygie

    bert = root / "bert"
    bert.mkdir()
    words = "no pleural effusion is seen the heart size normal mild edema . , a b 1 2".split()
    (bert / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
                                               *words]) + "\n")
    transformers.BertConfig(vocab_size=5 + len(words), hidden_size=16, num_hidden_layers=1,
                            num_attention_heads=2, intermediate_size=32,
                            max_position_embeddings=64).save_pretrained(bert)
    folder = root / "cache" / "radgraph"
    vocab_dir = folder / "vocabulary"
    vocab_dir.mkdir(parents=True)
    (vocab_dir / "non_padded_namespaces.txt").write_text("*tags\n*labels\n")
    (vocab_dir / "radgraph__ner_labels.txt").write_text("\nANAT-DP\nOBS-DP\nOBS-DA\nOBS-U\n")
    (vocab_dir / "radgraph__relation_labels.txt").write_text("located_at\nmodify\nsuggestive_of\n")
    bert_spec = {"type": "pretrained_transformer_mismatched", "max_length": 64,
                 "model_name": str(bert)}
    model_args = {"feature_size": 4, "max_span_width": 3, "target_task": "relation",
                  "feedforward_params": {"num_layers": 1, "hidden_dims": 8, "dropout": 0.0},
                  "loss_weights": {"ner": 1.0, "relation": 1.0, "coref": 0.0, "events": 0.0},
                  "modules": {"ner": {}, "relation": {"spans_per_word": 0.5},
                              "coref": {"spans_per_word": 0.3, "max_antecedents": 10},
                              "events": {"trigger_spans_per_word": 0.3,
                                         "argument_spans_per_word": 0.8,
                                         "loss_weights": {"trigger": 1.0, "arguments": 1.0}}}}
    config = {"dataset_reader": {"type": "dygie", "max_span_width": 3,
                                 "token_indexers": {"bert": bert_spec}},
              "model": {"type": "dygie", "embedder": {"token_embedders": {"bert": bert_spec}},
                        "initializer": {}, "module_initializer": {}, **model_args}}
    (folder / "config.json").write_text(json.dumps(config))
    embedder = text_field_embedders.BasicTextFieldEmbedder(
        {"bert": token_embedders.PretrainedTransformerMismatchedEmbedder(str(bert), max_length=64)})
    torch.manual_seed(0)
    model = dygie.DyGIE(vocab=Vocabulary.from_files(str(vocab_dir), None, None),
                        embedder=embedder, **json.loads(json.dumps(model_args)))
    torch.save(model.state_dict(), folder / "weights.th")
    return folder


@pytest.mark.slow
def test_end_to_end_matches_f1radgraph_with_random_weights(tmp_path):
    """The package's own F1RadGraph and this module score the same model's annotations alike."""
    radgraph = pytest.importorskip("radgraph")
    folder = build_random_radgraph(tmp_path)
    preds = ["no pleural effusion is seen .", "mild edema .", "", "the heart size is normal ."]
    refs = ["no pleural effusion .", "mild edema .", "no effusion .", "the heart is normal , no edema ."]
    package = radgraph.F1RadGraph(reward_level="all", model_type="radgraph",
                                  model_cache_dir=str(folder.parent), cuda=-1)
    _, (simple, partial, complete), _, _ = package(refs=refs, hyps=preds)
    for root in (folder.parent, folder):  # the cache folder or the model folder itself
        family = RadGraphF1(RadGraphAnnotator(root, "radgraph"))
        assert family.unavailable_reason() is None
        stats = family.stats(preds, refs)
        np.testing.assert_allclose(stats[:, :3], np.array([simple, partial, complete]).T,
                                   atol=1e-12)
    assert stats[1, 0] == 1.0 and stats[2].tolist() == [0.0] * 4  # identical; empty prediction
    assert 0.0 < stats[0, 0] < 1.0  # the random model does find (different) entities


@pytest.mark.slow
def test_evaluate_reports_radgraph_with_a_model_and_unavailable_without(tmp_path):
    """`uarbench eval` path: RadGraph F1 with its CI and per-report columns when a model folder
    is given; "unavailable: <reason>" (never 0) without one."""
    pytest.importorskip("radgraph")
    from uarbench.evaluate import evaluate
    folder = build_random_radgraph(tmp_path)
    refs = {"a": "no pleural effusion .", "b": "mild edema .", "c": "the heart is normal ."}
    preds = {"a": "no pleural effusion is seen .", "b": "mild edema .", "c": "clear lungs ."}
    ev = evaluate(predictions=preds, references=refs, labeler=None, bootstrap=50,
                  radgraph_model=folder, out_dir=tmp_path / "ev")
    r = ev.metrics["RadGraph-F1-partial"]
    assert r.value is not None and 0.0 <= r.value <= 1.0 and "model_type:radgraph" in r.signature
    assert "RadGraph.partial" in ev.per_report.columns or any(
        c.startswith("RadGraph.") for c in ev.per_report.columns)
    assert "RadGraph-F1-partial" in ev.intervals
    none = evaluate(predictions=preds, references=refs, labeler=None, bootstrap=0)
    assert none.metrics["RadGraph-F1-partial"].value is None
    assert none.metrics["RadGraph-F1-partial"].unavailable.startswith("unavailable:")

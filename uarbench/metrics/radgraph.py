"""RadGraph F1: entity / relation overlap between a generated and a reference report.

RadGraph (Jain et al., NeurIPS Datasets 2021) annotates a report with entities (anatomy or
observation; present / absent / uncertain) and directed relations between them (located_at,
suggestive_of, modify). The entities come from a DyGIE++ model run by the ``radgraph`` package
(:class:`RadGraphAnnotator`, user-supplied model folder, never downloaded); the F1 arithmetic on
the annotations is this module's own code, because the package only computes it after running
its model (``F1RadGraph``) and CXR-Report-Metric's variant lives in a research script. Both
conventions are reproduced exactly, quirks included:

F1RadGraph reward levels (Delbrouck et al., Findings of EMNLP 2022; ``radgraph`` 0.1.18,
``radgraph/rewards.py``), per report, each an F1 between two *sets* (duplicates collapse):

- ``simple``: items ``(tokens, label)`` of every entity;
- ``partial`` (the level papers usually report): ``(tokens, label)`` for an entity without
  outgoing relations, ``(tokens, label, True)`` for one with at least one;
- ``complete``: ``(tokens, label)`` for an entity without outgoing relations, else one item
  ``(tokens.lower(), label, relation type, target tokens.lower())`` per outgoing relation (the
  package lower-cases only these items; kept so numbers match);
- precision = |hyp & ref| / |hyp| (0 for an empty set), recall = |hyp & ref| / |ref|, F1 =
  2PR / (P + R) or 0; a report pair where either side has no entity scores 0 at every level;
  an empty report text (length 0) is never sent to the model and scores 0 (``F1RadGraph``).

CXR-Report-Metric combined score (Yu et al., Patterns 2023; ``radgraph_evaluate_model.py``):
entity F1 over ``(tokens, label)`` sets, relation F1 over ``((src tokens, src label), (tgt
tokens, tgt label), type)`` sets, same P / R / F1 rule, combined = (entity F1 + relation F1) / 2.
Consequences: zero entities on either side gives 0; two reports with entities but no relations
get relation F1 0, so their combined score is at most 0.5.

Every level is a per-report value averaged over reports; the per-report values are the rows of
:meth:`RadGraphF1.stats` and ``score_from_stats`` takes column means, so resampling is exact.
Scores from different RadGraph models (radgraph, radgraph-xl, modern-radgraph-xl) are not
comparable: the model type and a hash of its weights go into the signature.
"""
from __future__ import annotations

import contextlib
import importlib.metadata
import json
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from uarbench.errors import UarbenchError
from uarbench.metrics.base import MetricFamily, MetricUnavailable
from uarbench.provenance import file_sha256

MODEL_TYPES = ("radgraph", "radgraph-xl", "modern-radgraph-xl")
RELATION_TYPES = ("located_at", "suggestive_of", "modify")
MODEL_FILES = ("config.json", "weights.th", "vocabulary")   # an extracted <model_type>.tar.gz
LEVELS = ("simple", "partial", "complete", "combined")


# ---------------------------------------------------------------- annotations

@dataclass(frozen=True)
class Entity:
    """A span of the report: its tokens joined by spaces, a label such as ``OBS-DP`` (radgraph)
    or ``Observation::definitely present`` (radgraph-xl), and inclusive token positions."""

    tokens: str
    label: str
    start: int = -1
    end: int = -1


@dataclass(frozen=True)
class Relation:
    """A directed relation between two entity ids of the same report."""

    source: str
    target: str
    type: str


@dataclass(frozen=True)
class Annotation:
    """One report's RadGraph graph: entities by id and the relations between them."""

    entities: Mapping[str, Entity] = field(default_factory=dict)
    relations: tuple[Relation, ...] = ()

    def __post_init__(self) -> None:
        for rel in self.relations:
            for end in (rel.source, rel.target):
                if end not in self.entities:
                    raise UarbenchError(f"relation {rel.type} refers to entity id {end!r}, which "
                                        f"is not among the entities {sorted(self.entities)}.",
                                        fix="give every relation a source and target entity id "
                                            "of the same report.")

    def outgoing(self, entity_id: str) -> list[Relation]:
        return [r for r in self.relations if r.source == entity_id]


def from_radgraph_output(report: Mapping) -> Annotation:
    """One report of the ``radgraph`` package's output, ``{"text": ..., "entities": {"1":
    {"tokens", "label", "start_ix", "end_ix", "relations": [[type, target_id], ...]}}}``."""
    try:
        raw = report["entities"]
        entities = {str(k): Entity(str(e["tokens"]), str(e["label"]), int(e.get("start_ix", -1)),
                                   int(e.get("end_ix", -1))) for k, e in raw.items()}
        relations = tuple(Relation(str(k), str(target), str(kind))
                          for k, e in raw.items() for kind, target in e.get("relations", ()))
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise UarbenchError(f"not a RadGraph annotation ({type(err).__name__}: {err}).",
                            fix="pass one report of the radgraph package's output: {'entities': "
                                "{id: {'tokens', 'label', 'relations': [[type, id]]}}}.") from err
    return Annotation(entities, relations)


# ---------------------------------------------------------------- reward sets

def simple_items(a: Annotation) -> set[tuple]:
    return {(e.tokens, e.label) for e in a.entities.values()}


def partial_items(a: Annotation) -> set[tuple]:
    return {(e.tokens, e.label, True) if a.outgoing(k) else (e.tokens, e.label)
            for k, e in a.entities.items()}


def complete_items(a: Annotation) -> set[tuple]:
    items: set[tuple] = set()
    for k, e in a.entities.items():
        out = a.outgoing(k)
        if not out:
            items.add((e.tokens, e.label))
        items.update((e.tokens.lower(), e.label, r.type, a.entities[r.target].tokens.lower())
                     for r in out)
    return items


def relation_items(a: Annotation) -> set[tuple]:
    """CXR-Report-Metric's relation tuples: ((src tokens, label), (tgt tokens, label), type)."""
    ents = a.entities
    return {((ents[r.source].tokens, ents[r.source].label),
             (ents[r.target].tokens, ents[r.target].label), r.type) for r in a.relations}


def set_f1(hyp: set, ref: set) -> float:
    """F1 of two sets; precision (recall) is 0 when the hypothesis (reference) set is empty."""
    hits = len(hyp & ref)
    precision = hits / len(hyp) if hyp else 0.0
    recall = hits / len(ref) if ref else 0.0
    return 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0


@dataclass(frozen=True)
class RadGraphRewards:
    simple: float
    partial: float
    complete: float
    entity: float      # CXR-Report-Metric entity F1 (equals ``simple``)
    relation: float    # CXR-Report-Metric relation F1
    combined: float    # (entity + relation) / 2


def radgraph_rewards(hyp: Annotation, ref: Annotation) -> RadGraphRewards:
    """All reward levels of one (generated, reference) report pair."""
    entity = set_f1(simple_items(hyp), simple_items(ref))
    relation = set_f1(relation_items(hyp), relation_items(ref))
    if not hyp.entities or not ref.entities:  # F1RadGraph: 0 at every level
        return RadGraphRewards(0.0, 0.0, 0.0, entity, relation, (entity + relation) / 2)
    return RadGraphRewards(entity, set_f1(partial_items(hyp), partial_items(ref)),
                           set_f1(complete_items(hyp), complete_items(ref)),
                           entity, relation, (entity + relation) / 2)


def stats_from_annotations(hyps: Sequence[Annotation], refs: Sequence[Annotation]) -> np.ndarray:
    """(n_reports, 4) per-report values of simple, partial, complete, combined."""
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} generated but {len(refs)} reference annotations")
    rows = [radgraph_rewards(h, r) for h, r in zip(hyps, refs)]
    return np.array([[getattr(r, level) for level in LEVELS] for r in rows],
                    dtype=float).reshape(len(rows), len(LEVELS))


# ---------------------------------------------------------------- the extractor

def _model_folder(root: Path, model_type: str) -> Path | None:
    """``root/<model_type>`` (the package's cache layout) or ``root`` itself, if complete."""
    for folder in (root / model_type, root):
        if all((folder / name).exists() for name in MODEL_FILES):
            return folder
    return None


# where the package's config.json names the transformer (tokenizer, embedder)
TRANSFORMER_KEYS = (("dataset_reader", "token_indexers", "bert", "model_name"),
                    ("model", "embedder", "token_embedders", "bert", "model_name"))


def _local_transformer(name: str, model_folder: Path) -> Path | None:
    """A local folder for the transformer ``name``: a path (absolute, or relative to the model
    folder) or a snapshot already in the local Hugging Face cache. Never downloads."""
    for candidate in (Path(name), model_folder / name):
        if (candidate / "config.json").is_file():
            return candidate.resolve()
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError
    try:
        snapshot = Path(snapshot_download(name, local_files_only=True))
    except (LocalEntryNotFoundError, OSError, ValueError):
        return None
    return snapshot if (snapshot / "config.json").is_file() else None


class RadGraphAnnotator:
    """Runs the ``radgraph`` package's model from a local folder; never downloads.

    ``model_cache_dir`` is the package's cache folder (holding ``<model_type>/``) or the
    extracted model folder itself (``config.json``, ``weights.th``, ``vocabulary/``). The
    transformer that folder's config names must be a local folder or already be in the local
    Hugging Face cache: the model is loaded from a temporary copy of the config that points at
    the local files (weights and vocabulary are linked, not copied). The package runs one report
    at a time (its data loader has batch size 1), so there is no batching to tune; identical
    texts are annotated once.
    """

    def __init__(self, model_cache_dir: str | Path | None, model_type: str = "radgraph",
                 *, cuda: int = -1) -> None:
        if model_type not in MODEL_TYPES:
            raise UarbenchError(f"unknown RadGraph model type {model_type!r}.",
                                fix=f"use one of: {', '.join(MODEL_TYPES)}.")
        self.root = None if model_cache_dir is None else Path(model_cache_dir)
        self.model_type = model_type
        self.cuda = cuda
        self._model = None
        self._model_id: str | None = None

    @property
    def folder(self) -> Path | None:
        return None if self.root is None else _model_folder(self.root, self.model_type)

    def _config(self) -> tuple[dict, list[Path | None]]:
        assert self.folder is not None
        config = json.loads((self.folder / "config.json").read_text())
        names = []
        for keys in TRANSFORMER_KEYS:
            node = config
            for key in keys:
                node = node[key] if isinstance(node, dict) and key in node else None
            names.append(node)
        if not all(isinstance(n, str) for n in names):
            raise UarbenchError("config.json does not name the transformer at dataset_reader."
                                "token_indexers.bert.model_name and model.embedder."
                                "token_embedders.bert.model_name.", file=self.folder / "config.json",
                                fix="pass the extracted model folder of the radgraph package.")
        return config, [_local_transformer(n, self.folder) for n in names]

    def unavailable_reason(self) -> str | None:
        if self.root is None:
            return "unavailable: no RadGraph model folder given (pass --radgraph-model DIR)"
        if self.folder is None:
            return (f"unavailable: no {self.model_type} model in {self.root} (expected "
                    f"{'/'.join(MODEL_FILES)} in it or in {self.root / self.model_type})")
        try:
            importlib.metadata.version("radgraph")
        except importlib.metadata.PackageNotFoundError:
            return "unavailable: the radgraph package is not installed (pip install radgraph==0.1.18)"
        _, local = self._config()
        if None in local:
            return ("unavailable: the transformer named in "
                    f"{self.folder / 'config.json'} is neither a local folder nor in the local "
                    "Hugging Face cache")
        return None

    @property
    def model_id(self) -> str:
        """First 12 hex digits of the sha256 of ``weights.th`` (``none`` when unavailable)."""
        if self._model_id is None:
            folder = self.folder
            if folder is None:
                return "none"
            self._model_id = file_sha256(folder / "weights.th")[:12]
        return self._model_id

    def _load(self):
        """The package's ``RadGraph``, built from a staged copy of the folder whose config
        points at local transformer files (so the package never reaches the hub)."""
        if self._model is not None:
            return self._model
        reason = self.unavailable_reason()
        if reason is not None:
            raise MetricUnavailable(reason)
        from radgraph import RadGraph
        config, local = self._config()
        for keys, path in zip(TRANSFORMER_KEYS, local):
            node = config
            for key in keys[:-1]:
                node = node[key]
            node[keys[-1]] = str(path)
        assert self.folder is not None
        with tempfile.TemporaryDirectory(prefix="uarbench-radgraph-") as tmp:
            staged = Path(tmp) / self.model_type   # the package reads <cache>/<model_type>/
            staged.mkdir()
            (staged / "config.json").write_text(json.dumps(config))
            for name in ("weights.th", "vocabulary"):
                (staged / name).symlink_to((self.folder / name).resolve())
            with contextlib.redirect_stdout(sys.stderr):  # it prints "Using device: ..."
                self._model = RadGraph(model_type=self.model_type, model_cache_dir=tmp,
                                       cuda=self.cuda)
        return self._model

    def annotate(self, reports: Sequence[str]) -> list[Annotation]:
        """One :class:`Annotation` per report; an empty text gets an empty annotation."""
        model = self._load()
        texts = sorted({t for t in reports if len(t) > 0})
        found = model(texts) if texts else {}
        by_text: dict[str, Annotation] = {"": Annotation()}
        for i, text in enumerate(texts):
            if str(i) not in found:
                raise MetricUnavailable(f"radgraph gave no annotation for the report {text[:60]!r}")
            by_text[text] = from_radgraph_output(found[str(i)])
        return [by_text[t] for t in reports]


# ---------------------------------------------------------------- the metric family

class RadGraphF1(MetricFamily):
    """F1RadGraph simple / partial / complete and CXR-Report-Metric's combined RadGraph score."""

    family = "RadGraph"
    names = ("RadGraph-F1-simple", "RadGraph-F1-partial", "RadGraph-F1-complete",
             "RadGraph-combined")
    stat_names = LEVELS

    def __init__(self, annotator: RadGraphAnnotator | None = None) -> None:
        self.annotator = annotator or RadGraphAnnotator(None)
        try:
            package = importlib.metadata.version("radgraph")
        except importlib.metadata.PackageNotFoundError:
            package = "not-installed"
        self.impl = f"uarbench-rewards=radgraph-{package}+{self.annotator.model_type}"

    @property
    def signature_fields(self) -> tuple[tuple[str, str], ...]:  # type: ignore[override]
        return (("model_type", self.annotator.model_type), ("model", self.annotator.model_id))

    def unavailable_reason(self) -> str | None:
        return self.annotator.unavailable_reason()

    def stats(self, predictions: Sequence[str], references: Sequence[str]) -> np.ndarray:
        if len(predictions) != len(references):
            raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
        both = self.annotator.annotate([*predictions, *references])
        return stats_from_annotations(both[:len(predictions)], both[len(predictions):])

    def score_from_stats(self, stats: np.ndarray) -> dict[str, float]:
        if stats.shape[0] == 0:
            raise ValueError("no reports to score")
        means = stats.mean(axis=0)
        return {name: float(means[j]) for j, name in enumerate(self.names)}

    def score_from_sums(self, sums: np.ndarray, n: int) -> dict[str, np.ndarray]:
        """Means of the per-report scores over each row set."""
        sums = np.atleast_2d(sums)
        return {name: sums[:, j] / n for j, name in enumerate(self.names)}

    def compute_from_annotations(self, hyps: Iterable[Annotation],
                                 refs: Iterable[Annotation]) -> dict[str, float]:
        """Scores from annotations made elsewhere (no model needed)."""
        return self.score_from_stats(stats_from_annotations(list(hyps), list(refs)))

"""Dataset specifications (registered by name) and loading them into :class:`Dataset`.

``iu_xray`` and ``mimic_cxr`` follow the R2Gen release conventions (docs/spec.md §7);
``synth-cxr`` is the embedded default, generated on demand and cached by its parameters. All
three are read by the same R2Gen-format reader.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from uarbench.data.cleaning import CLEANERS
from uarbench.data.r2gen import Annotation, ImageCheck, Study, read_annotation
from uarbench.data.tokenizer import WordTokenizer
from uarbench.errors import UarbenchError
from uarbench.registry import Registry


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    cleaning: str           # a CLEANERS name
    views: int              # images used per study (IU-Xray 2, MIMIC-CXR the first 1)
    vocab_threshold: int    # train-split word count needed to enter the vocabulary
    max_seq_length: int     # token positions including bos (R2Gen: 60 / 100)
    description: str
    generated: bool = False


DATASETS: Registry[DatasetSpec] = Registry("dataset")
for _spec in (
    DatasetSpec("iu_xray", "r2gen-iu", 2, 3, 60, "IU-Xray, R2Gen split 2069/296/590, two views"),
    DatasetSpec("mimic_cxr", "r2gen-mimic", 1, 10, 100,
                "MIMIC-CXR, R2Gen split 270790/2130/3858, first view"),
    DatasetSpec("synth-cxr", "r2gen-iu", 2, 3, 60,
                "embedded procedural chest radiographs with known findings", generated=True),
):
    DATASETS.register(_spec.name)(_spec)


@dataclass(frozen=True)
class Dataset:
    spec: DatasetSpec
    root: Path
    annotation: Annotation

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def content_hash(self) -> str:
        """sha256 of the annotation file (reports, splits and image lists)."""
        return self.annotation.sha256

    def split(self, name: str) -> tuple[Study, ...]:
        if name not in self.annotation.splits:
            raise UarbenchError(f"unknown split {name!r}.", file=self.annotation.path,
                                fix="use train, val or test.")
        return self.annotation.splits[name]

    def clean(self, report: str) -> str:
        return CLEANERS.get(self.spec.cleaning)(report)

    @cached_property
    def tokenizer(self) -> WordTokenizer:
        """Vocabulary from the training split only."""
        return WordTokenizer.build((self.clean(s.report) for s in self.split("train")),
                                   threshold=self.spec.vocab_threshold,
                                   max_seq_length=self.spec.max_seq_length)


def load_dataset(name: str, data_root: str | Path | None = None, *,
                 image_check: ImageCheck = "exists", synth_config=None) -> Dataset:
    """Load a registered dataset. ``data_root`` holds annotation.json and images/ (R2Gen layout).

    For ``synth-cxr`` without a ``data_root`` the build ``synth_config`` (a SynthConfig; None =
    its defaults) is generated on demand into the cache (``$UARBENCH_CACHE`` or
    ~/.cache/uarbench) and reused afterwards. The build benchmark.toml names is the caller's to
    pass (:func:`uarbench.benchmark.default_synth_config`): data sits below the benchmark layer.
    """
    spec = DATASETS.get(name)
    if data_root is None:
        if not spec.generated:
            raise UarbenchError(f"dataset {name!r} needs --data-root.",
                                fix=f"pass the folder holding {name}'s annotation.json and images/.")
        from uarbench.data.synth import SynthConfig, ensure_synth
        data_root = ensure_synth(synth_config or SynthConfig())
    root = Path(data_root)
    annotation = read_annotation(root / "annotation.json", root / "images", views=spec.views,
                                 image_check=image_check)
    return Dataset(spec, root, annotation)

"""synth-cxr: the embedded default dataset, procedural chest radiographs with known findings.

Each study has a frontal (PA) and a lateral grayscale image rendered with numpy, a report from a
phrase grammar (IU-Xray-like wording and length) and a ground-truth 14-label CheXpert vector
consistent with the report text. Builds are written in the R2Gen layout and cached by config.

Modules: ``config`` (SynthConfig), ``seeding`` (per-study random streams), ``findings`` (what a
study shows, label vectors), ``render`` (the images), ``grammar`` (the report), ``build``
(writing and caching builds), ``preview`` (a contact sheet to look at).
"""
from uarbench.data.synth.build import ensure_synth, generate_synth
from uarbench.data.synth.config import SynthConfig
from uarbench.data.synth.preview import contact_sheet

__all__ = ["SynthConfig", "generate_synth", "ensure_synth", "contact_sheet"]

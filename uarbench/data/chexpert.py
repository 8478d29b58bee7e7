"""The 14 CheXpert observations (Irvin et al., AAAI 2019) in the CheXpert labeler's column order.

Label values per report: 1 positive, 0 negative, -1 uncertain, None blank (not mentioned).
Columns are always aligned by name, never by position: labelers order them differently.
"""
from __future__ import annotations

OBSERVATIONS: tuple[str, ...] = (
    "No Finding",
    "Enlarged Cardiomediastinum",
    "Cardiomegaly",
    "Lung Opacity",
    "Lung Lesion",
    "Edema",
    "Consolidation",
    "Pneumonia",
    "Atelectasis",
    "Pneumothorax",
    "Pleural Effusion",
    "Pleural Other",
    "Fracture",
    "Support Devices",
)

# the 5-observation subset used by ifcc / RadEval ("CheXpert-5")
FIVE: tuple[str, ...] = ("Cardiomegaly", "Edema", "Consolidation", "Atelectasis", "Pleural Effusion")

POSITIVE, NEGATIVE, UNCERTAIN, BLANK = 1, 0, -1, None

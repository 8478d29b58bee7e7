"""A contact sheet of a synth-cxr build (frontal + lateral, captioned) so a person can look at it.

The caption under each study lists what it shows, from its structured findings: "R" and "L" are
the patient's sides (the patient's right is on the image left of the frontal view), "?" marks a
finding the report words as uncertain.
"""
from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np
from PIL import Image

from uarbench.errors import UarbenchError
from uarbench.io import atomic_write_bytes

_SIDE = {"right": "R", "left": "L", "bilateral": "bilat"}
_LOBE = {("right", "upper"): "RUL", ("right", "middle"): "RML", ("right", "lower"): "RLL",
         ("left", "upper"): "LUL", ("left", "middle"): "lingula", ("left", "lower"): "LLL"}


def caption(findings: dict) -> str:
    """Short text for a study's ``findings`` record (as stored in annotation.json)."""
    parts = []
    heart = findings.get("heart", "normal")
    mark = {"enlarged": " big", "borderline": "?"}.get(heart, "")
    parts.append(f"CTR {findings['ctr']:.2f}{mark}")
    if findings.get("enlarged_mediastinum"):
        parts.append("wide mediast")
    if (e := findings.get("effusion")):
        parts.append(f"{_SIDE[e['side']]} effusion {e['size']}" + ("?" if e["uncertain"] else ""))
    if (o := findings.get("opacity")):
        kind = "consol" if o["kind"] == "consolidation" else "opacity"
        pna = {"present": " pna", "possible": " pna?"}.get(o["pneumonia"], "")
        parts.append(f"{_LOBE[(o['side'], o['lobe'])]} {kind}{pna}")
    if (a := findings.get("atelectasis")):
        parts.append(f"{_SIDE[a['side']]} base atel" + ("?" if a["uncertain"] else ""))
    if (p := findings.get("pneumothorax")):
        parts.append(f"{_SIDE[p['side']]} PTX {p['size']}")
    if (d := findings.get("edema")):
        parts.append(f"edema {d['severity']}" + ("?" if d["uncertain"] else ""))
    if (n := findings.get("nodule")):
        parts.append(f"{_SIDE[n['side']]} {n['zone']} nodule {n['size_mm']}mm")
    if (fr := findings.get("fracture")):
        parts.append(f"{_SIDE[fr['side']]} rib fx {','.join(map(str, fr['ribs']))}")
    if (t := findings.get("pleural_thickening")):
        parts.append(f"{_SIDE[t['side']]} {t['site']} pl thick")
    dev = findings.get("devices") or {}
    if "ett_cm" in dev:
        parts.append("ETT")
    if "line" in dev:
        parts.append("R IJ line" if dev["line"] == "ij" else f"{_SIDE[dev['line_side']]} PICC")
    return ", ".join(parts)


def _wrap(text: str, width: int) -> str:
    lines, line = [], ""
    for word in text.split(" "):
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return "\n".join(lines + [line])


def contact_sheet(root: str | Path, out_png: str | Path, n: int = 16, *, per_row: int = 4) -> Path:
    """Save a grid of ``n`` studies (test split first) with findings captions; return the path."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    root = Path(root)
    ann = root / "annotation.json"
    if not ann.is_file():
        raise UarbenchError("annotation.json not found.", file=ann,
                            fix="pass the folder of a synth-cxr build (generate_synth output).")
    data = json.loads(ann.read_text(encoding="utf-8"))
    items = [it for split in ("test", "val", "train") for it in data.get(split, [])][:max(n, 1)]
    cols = min(per_row, len(items))
    rows = math.ceil(len(items) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.0 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, item in zip(axes.flat, items):
        views = [np.asarray(Image.open(root / "images" / p).convert("L"))
                 for p in item["image_path"]]
        ax.imshow(np.hstack(views), cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        text = caption(item["findings"]) if "findings" in item else ""
        ax.set_title(_wrap(f"{item['id']}: {text}", 46), fontsize=6.5, loc="left")
    fig.tight_layout(pad=0.4)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return atomic_write_bytes(out_png, buf.getvalue())

"""Drawing a synth-cxr study: a frontal (PA) and a lateral chest radiograph as uint8 arrays.

Everything is analytic and vectorised in numpy (scipy.ndimage only for the detector blur). A
density map is built from soft-edged shapes in normalised coordinates (x right, y down, both in
[0, 1]), so a study looks the same at every image size, then exposed, blurred and given noise.

Conventions (radiological): the frontal view is PA and shown as if facing the patient, so the
patient's RIGHT is on the image LEFT; the lateral view has the patient facing the image left
(anterior left, spine right). Findings are drawn at the side, lobe and size the findings say:
an effusion fills the stated costophrenic angle with a meniscus, a consolidation is a dense
patch in the stated lobe, a pneumothorax is an apical band without lung markings bounded by a
thin pleural line, edema is a bilateral perihilar haze with interstitial (Kerley) lines, a
nodule is a round dense spot, a rib fracture is a gap and offset in the stated ribs, tubes and
lines are thin bright lines, atelectasis is a linear density at the lung base. The heart width
is the cardiothoracic ratio times the inner thoracic width (lateral lung edges at the bases).

Per-study variation (anatomy, rotation, habitus, exposure, noise, blur) comes from
:class:`Anatomy`; rendering the same findings with the same anatomy gives the same pixels, and
removing one finding leaves every other pixel source (texture, noise) unchanged.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from uarbench.data.synth.findings import StudyFindings

MM_PER_UNIT = 380.0   # one image width is about 38 cm of patient
F32 = np.float32

# texture streams (from Anatomy.texture_seed); one per purpose, so findings never shift the rest
(_VESSELS, _NOISE, _PARENCHYMA, _EFFUSION, _OPACITY, _NODULE, _FRACTURE, _EDEMA, _ATEL,
 _LAT) = range(10)


@dataclass(frozen=True)
class Anatomy:
    """One patient's body and one exposure (all lengths in image widths)."""

    mid: float              # midline x in the frontal view
    shift_y: float
    rotation_deg: float
    lung_w_right: float     # lateral lung edge at the base, from the midline
    lung_w_left: float
    apex_y: float
    cp_y_right: float       # costophrenic angle height
    cp_y_left: float
    dome_right: float       # hemidiaphragm dome height above the costophrenic angle
    dome_left: float
    med_w: float            # superior mediastinum half-width
    heart_right_frac: float  # share of the heart width right of the midline
    heart_h: float          # heart half-height (before tilt)
    heart_tilt: float       # radians, apex down and to the patient's left
    body_w: float
    soft: float             # soft-tissue density (habitus)
    air: float              # how dark aerated lung is
    rib_gap: float
    clav_y: float
    gamma: float
    contrast: float
    brightness: float
    noise: float
    blur: float             # detector blur, pixels at 128 px
    texture_seed: int

    @property
    def thorax_w(self) -> float:
        """Inner thoracic width used for the cardiothoracic ratio."""
        return self.lung_w_right + self.lung_w_left


def sample_anatomy(rng: np.random.Generator) -> Anatomy:
    u = rng.uniform
    cp_r = u(0.74, 0.81)
    return Anatomy(
        mid=0.5 + float(rng.normal(0, 0.008)), shift_y=u(-0.02, 0.02),
        rotation_deg=u(-3.0, 3.0),
        lung_w_right=u(0.36, 0.41), lung_w_left=u(0.36, 0.41),
        apex_y=u(0.09, 0.13), cp_y_right=cp_r, cp_y_left=cp_r + u(0.005, 0.035),
        dome_right=u(0.06, 0.1), dome_left=u(0.05, 0.085),
        med_w=u(0.07, 0.09), heart_right_frac=u(0.28, 0.36), heart_h=u(0.13, 0.155),
        heart_tilt=u(0.25, 0.45), body_w=u(0.45, 0.5), soft=u(0.42, 0.5), air=u(0.28, 0.33),
        rib_gap=u(0.058, 0.066), clav_y=u(0.12, 0.15),
        gamma=u(0.85, 1.2), contrast=u(0.9, 1.1), brightness=u(-0.04, 0.04),
        noise=u(0.012, 0.03), blur=u(0.5, 1.0), texture_seed=int(rng.integers(2**31)),
    )


def _ramp(d, w):
    """Soft inside-indicator of a signed distance ``d`` (positive inside), edge width ``w``."""
    out = d * (1.0 / w) + 0.5
    return np.minimum(np.maximum(out, 0.0, out=out), 1.0, out=out)


def _seg_dist(X, Y, p, q):
    px, py = p
    dx, dy = q[0] - px, q[1] - py
    t = np.clip(((X - px) * dx + (Y - py) * dy) / (dx * dx + dy * dy), 0.0, 1.0)
    return np.hypot(X - px - t * dx, Y - py - t * dy)


def _polyline_dist(X, Y, pts):
    d = _seg_dist(X, Y, pts[0], pts[1])
    for p, q in zip(pts[1:-1], pts[2:]):
        d = np.minimum(d, _seg_dist(X, Y, p, q))
    return d


def _blobs(X, Y, cx, cy, rng, n, spread, sigma):
    """An irregular patch: union of ``n`` gaussian blobs around (cx, cy), values in [0, 1]."""
    acc = np.zeros(np.broadcast_shapes(X.shape, Y.shape), F32)
    for _ in range(n):
        bx, by = cx + rng.normal(0, spread), cy + rng.normal(0, spread)
        s = sigma * rng.uniform(0.7, 1.3)
        acc += np.exp(-((X - bx) ** 2 + (Y - by) ** 2) / (2 * s * s)).astype(F32)
    return np.clip(1.6 * acc - 0.25, 0.0, 1.0)


class _Side:
    """Geometry of one hemithorax in the frontal view; u = distance from the midline."""

    def __init__(self, a: Anatomy, side: str, f: StudyFindings) -> None:
        self.side = side
        self.sign = -1.0 if side == "right" else 1.0      # patient's right = image left
        self.mid = a.mid
        self.W = a.lung_w_right if side == "right" else a.lung_w_left
        self.cp0 = a.cp_y_right if side == "right" else a.cp_y_left
        self.dome = a.dome_right if side == "right" else a.dome_left
        at = f.atelectasis
        # volume loss raises the hemidiaphragm a little; cp0 (heart, hilum) stays put
        self.cp = self.cp0 - (0.008 if at is not None and at.side in (side, "bilateral") else 0.0)
        self.apex = a.apex_y
        widen = 1.7 if f.enlarged_mediastinum else 1.0
        self.med0 = a.med_w * widen
        self.knob = (0.022 * widen) if side == "left" else 0.0
        self.knob_y = a.apex_y + 0.2 * (self.cp0 - a.apex_y)
        self.hilum = (self.med0 + 0.03, a.apex_y + 0.5 * (self.cp0 - a.apex_y))

    def u(self, X):
        return self.sign * (X - self.mid)

    def x(self, u):
        return self.mid + self.sign * u

    def med(self, Y):
        if self.knob == 0.0:
            return self.med0
        return self.med0 + self.knob * np.exp(-((Y - self.knob_y) / 0.035) ** 2)

    def t(self, u):
        """0 at the mediastinum, 1 at the lateral lung edge."""
        return (u - self.med0) / (self.W - self.med0)

    def v(self, Y):
        """0 at the apex, 1 at the costophrenic angle."""
        return (Y - self.apex) / (self.cp - self.apex)

    def at(self, t, v):
        return self.med0 + t * (self.W - self.med0), self.apex + v * (self.cp - self.apex)

    def dia(self, u):
        return self.cp - self.dome * (1.0 - ((self.t(u) - 0.45) / 0.55) ** 2)

    def lung(self, u, Y, w):
        H = self.cp - self.apex
        y_e = self.apex + 0.38 * H
        lat = self.W * (0.92 + 0.08 * np.clip((Y - y_e) / (self.cp - y_e), 0.0, 1.0))
        rx = (0.92 * self.W - self.med0) / 2
        ry = y_e - self.apex
        q = ((u - self.med0 - rx) / rx) ** 2 + ((Y - y_e) / ry) ** 2
        top = np.where(Y < y_e, (1.0 - np.sqrt(q)) * ry, 1.0)
        return (_ramp(top, w) * _ramp(u - self.med(Y), w) * _ramp(lat - u, w)
                * _ramp(self.dia(u) - Y, w))


def _grid(size: int, rotation_deg: float, shift_y: float):
    c = (np.arange(size, dtype=F32) + 0.5) / size - 0.5
    th = np.deg2rad(rotation_deg)
    cs, sn = F32(np.cos(th)), F32(np.sin(th))
    X = 0.5 + c[None, :] * cs + c[:, None] * sn
    Y = 0.5 - c[None, :] * sn + c[:, None] * cs - F32(shift_y)
    return X.astype(F32), Y.astype(F32)


def _expose(D, a: Anatomy, size: int, rng: np.random.Generator) -> np.ndarray:
    img = a.contrast * np.clip(D, 0.0, None) ** a.gamma + a.brightness + 0.04
    img = ndimage.gaussian_filter(img.astype(F32), a.blur * size / 128.0, mode="nearest")
    z = rng.standard_normal(img.shape, dtype=F32)
    img = img + a.noise * (0.4 + 0.6 * np.sqrt(np.clip(img, 0.0, 1.0))) * z
    return (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


class _Win:
    """Index windows of the (slightly rotated) grid: the rows and columns that can touch a box."""

    def __init__(self, X, Y) -> None:
        # per-row y range and per-column x range; both increase along the axis (small rotation)
        self.ylo, self.yhi = Y.min(1), Y.max(1)
        self.xlo, self.xhi = X.min(0), X.max(0)

    def __call__(self, x0, x1, y0, y1):
        r0, r1 = int(np.searchsorted(self.yhi, y0)), int(np.searchsorted(self.ylo, y1, "right"))
        c0, c1 = int(np.searchsorted(self.xhi, x0)), int(np.searchsorted(self.xlo, x1, "right"))
        if r1 <= r0 or c1 <= c0:
            return None
        return slice(r0, r1), slice(c0, c1)

    def side(self, s: "_Side", u0, u1, y0, y1):
        x0, x1 = sorted((s.x(u0), s.x(u1)))
        return self(x0, x1, y0, y1)


def _vessels(u, Y, hilum, rng):
    """Lung markings: tapering streaks radiating from the hilum."""
    du, dy = u - F32(hilum[0]), Y - F32(hilum[1])
    r = np.hypot(du, dy)
    ang = np.arctan2(dy, du) + F32(0.25) * np.sin(F32(18.0) * r + F32(rng.uniform(0, 6.28)))
    out = F32(0.8) * np.exp(-(r / F32(0.035)) ** 2)
    for n, power, gain, fall in ((60, 5, 1.0, 0.14), (150, 7, 0.8, 0.2)):
        prof = rng.random(n + 1).astype(F32) ** power
        prof[-1] = prof[0]
        pos = (ang * F32(n / (2 * np.pi))) % F32(n)
        i0 = np.minimum(pos.astype(np.intp), n - 1)     # % can round up to n in float32
        frac = pos - i0
        val = prof[i0] * (1 - frac) + prof[i0 + 1] * frac
        radial = np.exp(-r / F32(fall))
        if n > 60:
            radial = radial * np.clip(r / F32(0.08), 0, 1)
        out += F32(gain) * val * radial
    return out


def _rib_coord(u, Y, s: _Side, a: Anatomy):
    """Posterior-rib coordinate: rib number n has its centre line where the value is n."""
    t = u / F32(s.W)
    shape = 0.1 * t * t - 0.04 * t + np.clip(t - 0.8, 0.0, None) ** 2
    top = a.apex_y - a.rib_gap - 0.01
    return (Y - top - shape * (1.0 + 0.08 * (Y - top) / a.rib_gap)) / a.rib_gap, t


def _ribs(u, Y, s: _Side, a: Anatomy, f: StudyFindings, w, rng):
    r, t = _rib_coord(u, Y, s, a)
    fr = f.fracture
    breaks = []
    if fr is not None and fr.side == s.side:
        k = np.round(r)
        for n in fr.ribs:
            tf = float(rng.uniform(0.72, 0.92))
            r = r - F32(0.28) * ((k == n) & (t > tf))
            breaks.append((n, tf))
    phase = np.abs(r - np.round(r)) * a.rib_gap          # distance to the rib centre line
    half = 0.21 * a.rib_gap
    band = _ramp(half - phase, w) * (0.75 + 0.5 * (phase / half) ** 2)
    valid = _ramp(r - 0.5, 0.3) * _ramp(10.6 - r, 0.3) * _ramp(1.08 - t, 0.05) * _ramp(u - 0.03, w)
    post = band * valid
    for n, tf in breaks:
        gap = (np.abs(np.round(r) - n) < 0.5) & (np.abs(t - tf) < (0.012 + 0.6 * w) / s.W)
        post = post * (1.0 - F32(0.9) * gap)
    # anterior ribs: fainter, running down and medially from the lateral wall
    ra = (Y - (a.apex_y + 0.02) - 0.1 * (1.0 - t) - 0.02 * t) / (a.rib_gap * 1.05)
    pa = np.abs(ra - np.round(ra)) * a.rib_gap
    ant = (_ramp(0.16 * a.rib_gap - pa, w) * _ramp(t - 0.3, 0.15) * _ramp(1.05 - t, 0.05)
           * _ramp(ra - 0.5, 0.3) * _ramp(6.5 - ra, 0.3))
    return post, ant


def _side_findings(f: StudyFindings, a: Anatomy, s: _Side, u, Y, lung, w, size):
    """Opacities (clear = 1 - union), extra density and pneumothorax space in one lung window."""
    name = s.side
    parts = []
    extra = np.zeros_like(u)
    ptx = None
    inner = None
    pt = f.pneumothorax
    if pt is not None and pt.side == name:
        k = {"small": 0.9, "moderate": 0.8, "large": 0.66}[pt.size]
        ua, ya = s.med0 + 0.1 * (s.W - s.med0), s.cp
        inner = np.minimum(s.lung(ua + (u - ua) / k, ya + (Y - ya) / k, F32(0.9 / size)), lung)
        ptx = lung - inner
        extra += 0.16 * 4.0 * inner * (1.0 - inner) * _ramp(lung - 0.5, 0.5)   # pleural line

    ef = f.effusion
    if ef is not None:
        rng_e = np.random.default_rng([a.texture_seed, _EFFUSION])
        h_rng = {"small": (0.07, 0.095), "moderate": (0.14, 0.19), "large": (0.25, 0.33)}[ef.size]
        if ef.uncertain:
            h_rng = (0.04, 0.055)
        heights = rng_e.uniform(*h_rng, 2)
        if ef.side in (name, "bilateral"):
            H = float(heights[0 if name == "right" else 1])
            t = np.clip(s.t(u), 0.0, 1.0)
            surface = s.cp - H * (0.55 + 0.45 * t * t)
            parts.append(0.97 * _ramp(Y - surface, 0.025))

    op = f.opacity
    if op is not None and op.side == name:
        rng_o = np.random.default_rng([a.texture_seed, _OPACITY])
        tv = {"upper": (0.5, 0.27), "middle": (0.22, 0.64), "lower": (0.55, 0.84)}[op.lobe]
        cu, cy = s.at(*tv)
        patch = _blobs(u, Y, cu, cy, rng_o, 5, 0.03, 0.04)
        fissure = s.apex + 0.52 * (s.cp - s.apex)
        if op.lobe == "upper":
            patch = patch * _ramp(fissure - Y, w * 2)
        elif op.lobe == "middle":
            patch = patch * _ramp(Y - fissure, w * 2)
        parts.append((0.88 if op.kind == "consolidation" else 0.5) * patch)

    ed = f.edema
    if ed is not None:
        rng_d = np.random.default_rng([a.texture_seed, _EDEMA, 0 if name == "right" else 1])
        alpha = 0.22 if ed.uncertain else (0.38 if ed.severity == "mild" else 0.58)
        hu, hy = s.hilum
        parts.append(alpha * np.exp(-((u - hu - 0.04) / 0.15) ** 2 - ((Y - hy) / 0.17) ** 2))
        lateral = _ramp(s.t(u) - 0.86, 0.04)
        gain = 0.09 if ed.severity == "mild" else 0.13
        for yk in rng_d.uniform(0.72, 0.95, 5):
            yy = s.apex + float(yk) * (s.cp - s.apex)
            extra += gain * _ramp(0.004 + 0.3 * w - np.abs(Y - yy), w) * lateral

    at = f.atelectasis
    if at is not None:
        rng_a = np.random.default_rng([a.texture_seed, _ATEL, 0 if name == "right" else 1])
        v0, v1, t0 = (float(x) for x in rng_a.uniform((0.8, 0.78, 0.2), (0.88, 0.88, 0.35)))
        if at.side in (name, "bilateral"):
            half = (0.005 if at.form == "linear" else 0.009) + 0.3 * w
            d = _seg_dist(u, Y, s.at(t0, v0), s.at(t0 + 0.45, v1))
            parts.append(0.85 * _ramp(half - d, w))

    th = f.pleural_thickening
    if th is not None and th.side == name:
        if th.site == "apical":
            band = np.clip(lung - s.lung(u, Y - 0.022, w), 0, 1) * _ramp(0.3 - s.v(Y), 0.05)
        else:
            band = (np.clip(lung - s.lung(u + 0.014, Y, w), 0, 1) * _ramp(s.v(Y) - 0.3, 0.1)
                    * _ramp(0.85 - s.v(Y), 0.1))
        parts.append(0.85 * band)

    clear = None
    for part in parts:
        clear = 1.0 - part if clear is None else clear * (1.0 - part)
    if clear is not None:
        clear = 1.0 - (1.0 - clear) * lung
    return clear, extra * lung, ptx, inner


def render_frontal(f: StudyFindings, a: Anatomy, size: int) -> np.ndarray:
    """PA chest radiograph, uint8 (size, size); patient's right on the image left."""
    X, Y = _grid(size, a.rotation_deg, a.shift_y)
    win = _Win(X, Y)
    w = 1.3 / size
    sides = {s: _Side(a, s, f) for s in ("right", "left")}
    R, L = sides["right"], sides["left"]
    zeros = lambda: np.zeros_like(X)  # noqa: E731

    # body outline (narrower neck at the top), abdomen under the domes
    bw = a.body_w * (0.72 + 0.28 * np.clip(Y / 0.1, 0.0, 1.0))
    ax = np.abs(X - a.mid)
    body = _ramp(bw - ax, 0.02)
    thick = 1.0 - 0.35 * np.clip(ax / a.body_w, 0.0, 1.0) ** 4
    dia = zeros()
    for s in (R, L):
        sl = win.side(s, -0.02, 0.6, -1.0, 2.0)
        d = s.dia(s.u(X[sl]))
        dia[sl] = d if s is R else np.where(X[sl] >= a.mid, d, dia[sl])
    abdomen = _ramp(Y - dia, w)

    # heart: tilted ellipse whose horizontal extent is ctr * inner thoracic width
    wh = f.ctr * a.thorax_w / 2
    hb, phi = a.heart_h, a.heart_tilt
    cphi, sphi = float(np.cos(phi)), float(np.sin(phi))
    ha = float(np.sqrt(max(wh * wh - (hb * sphi) ** 2, 1e-4) / cphi ** 2))
    hx = a.mid + wh * (1 - 2 * a.heart_right_frac)
    hv = float(np.hypot(ha * sphi, hb * cphi))
    hy = L.cp0 - 0.4 * L.dome + 0.015 - hv
    heart = zeros()
    sl = win(hx - wh - 0.02, hx + wh + 0.02, hy - hv - 0.02, hy + hv + 0.02)
    dx, dy = X[sl] - hx, Y[sl] - hy
    pp = (dx * cphi + dy * sphi) / ha
    qq = (-dx * sphi + dy * cphi) / hb
    e2 = pp * pp + qq * qq
    heart[sl] = (_ramp((1.0 - np.sqrt(e2)) * min(ha, hb), w)
                 * (0.8 + 0.2 * np.sqrt(np.clip(1.0 - e2, 0.0, 1.0))))
    med = zeros()
    sl = win(a.mid - 0.25, a.mid + 0.25, -1.0, hy + 0.03)
    Xm, Ym = X[sl], Y[sl]
    med[sl] = (_ramp(np.where(Xm < a.mid, R.med(Ym) - R.u(Xm), L.med(Ym) - L.u(Xm)), w)
               * _ramp(hy - Ym, 0.05))
    med = np.maximum(med, heart)

    lung_all, markings, ptx, extra, bones, ribs = (zeros() for _ in range(6))
    clear = np.ones_like(X)
    rng_v = np.random.default_rng([a.texture_seed, _VESSELS])
    rng_f = np.random.default_rng([a.texture_seed, _FRACTURE])
    for name, s in sides.items():
        sl = win.side(s, s.med0 - 0.01, s.W + 0.01, s.apex - 0.01, s.cp + 0.02)
        u, Ys = s.u(X[sl]), Y[sl]
        lung = s.lung(u, Ys, w)
        mk = _vessels(u, Ys, s.hilum, rng_v)
        c, e, p, inner = _side_findings(f, a, s, u, Ys, lung, w, size)
        if inner is not None:
            mk = mk * inner
            ptx[sl] += p
        if c is not None:
            clear[sl] *= c
        lung_all[sl] += lung
        markings[sl] += mk * lung
        extra[sl] += e

        sl = win.side(s, 0.0, 0.56, -1.0, 2.0)
        u, Ys = s.u(X[sl]), Y[sl]
        post, ant = _ribs(u, Ys, s, a, f, w, rng_f)
        ribs[sl] += (0.055 * post + 0.03 * ant) * body[sl]
        sl = win.side(s, 0.0, 0.42, a.clav_y - 0.06, a.clav_y + 0.05)
        u, Ys = s.u(X[sl]), Y[sl]
        clav = _polyline_dist(u, Ys, [(0.03, a.clav_y + 0.025), (0.2, a.clav_y - 0.005),
                                      (0.33, a.clav_y - 0.03), (0.38, a.clav_y - 0.02)])
        bones[sl] += 0.12 * _ramp(0.013 - clav, w) * (0.8 + 0.4 * _ramp(clav - 0.008, w))
        sl = win.side(s, 0.4, 0.6, -0.1, 0.2)
        if sl is not None:
            bones[sl] += 0.2 * _ramp(0.085 - np.hypot(s.u(X[sl]) - 0.5, Y[sl] - 0.1), 0.01)

    heart_free = 1.0 - heart
    lung_all *= heart_free
    airness = (lung_all + 0.35 * ptx * heart_free) * clear

    sl = win(a.mid - 0.05, a.mid + 0.05, -1.0, 2.0)
    sx, Ys = np.abs(X[sl] - a.mid), Y[sl]
    vert = np.abs((Ys / 0.058) - np.round(Ys / 0.058)) * 0.058
    bones[sl] += 0.05 * _ramp(0.034 - sx, w) * (0.5 + 0.5 * _ramp(vert - 0.009, w))
    bones[sl] += 0.03 * _ramp(0.006 - np.abs(sx - 0.026), w) * _ramp(0.018 - vert, w)

    carina = a.apex_y + 0.33 * (0.5 * (R.cp0 + L.cp0) - a.apex_y)
    trachea = zeros()
    sl = win(a.mid - 0.07, a.mid + 0.07, -1.0, carina + 0.07)
    Xt, Yt = X[sl], Y[sl]
    tr = _ramp(0.016 - np.abs(Xt - a.mid), w) * _ramp(carina - Yt, w)
    for sgn in (-1.0, 1.0):
        tr = np.maximum(tr, _ramp(0.011 - _seg_dist(Xt, Yt, (a.mid, carina),
                                                     (a.mid + sgn * 0.05, carina + 0.055)), w))
    trachea[sl] = tr

    nd = f.nodule
    if nd is not None:
        rng_n = np.random.default_rng([a.texture_seed, _NODULE])
        s = sides[nd.side]
        v = {"upper": 0.27, "mid": 0.5, "lower": 0.72}[nd.zone] + float(rng_n.uniform(-0.05, 0.05))
        cu, cy = s.at(float(rng_n.uniform(0.4, 0.8)), v)
        rad = nd.size_mm / 2 / MM_PER_UNIT
        sl = win.side(s, cu - rad - 0.01, cu + rad + 0.01, cy - rad - 0.01, cy + rad + 0.01)
        d = np.hypot(s.u(X[sl]) - cu, Y[sl] - cy)
        extra[sl] += (0.3 * np.sqrt(np.clip(1.0 - (d / rad) ** 2, 0.0, 1.0))
                      + 0.08 * _ramp(rad - d, w))

    dev = f.devices
    if dev.ett_cm is not None:
        tip = carina - dev.ett_cm * 10.0 / MM_PER_UNIT
        sl = win(a.mid - 0.03, a.mid + 0.04, -1.0, tip + 0.01)
        dx, above = X[sl] - a.mid, _ramp(tip - Y[sl], w)
        extra[sl] += (0.14 * _ramp(0.009 + 0.3 * w - np.abs(dx - 0.004), w)
                      + 0.12 * _ramp(0.003 + 0.3 * w - np.abs(dx - 0.008), w)) * above
    if dev.line is not None:
        s = sides[dev.line_side]
        if dev.line == "ij":
            pts = [(0.09, -0.02), (0.07, 0.1), (0.045, 0.22), (0.03, carina - 0.01)]
        else:
            pts = [(0.52, a.clav_y + 0.1), (0.4, a.clav_y + 0.05), (0.25, a.clav_y + 0.02),
                   (0.1, a.clav_y + 0.03), (0.03, a.clav_y + 0.09),
                   (0.03 if s.side == "right" else -0.03, carina - 0.01)]
        xy = [(s.x(pu), py) for pu, py in pts]
        xs, ys = [p[0] for p in xy], [p[1] for p in xy]
        sl = win(min(xs) - 0.01, max(xs) + 0.01, min(ys) - 0.01, max(ys) + 0.01)
        extra[sl] += 0.28 * _ramp(0.0035 + 0.35 * w - _polyline_dist(X[sl], Y[sl], xy), w)

    rng_p = np.random.default_rng([a.texture_seed, _PARENCHYMA])
    mottle = ndimage.gaussian_filter(rng_p.standard_normal(X.shape, dtype=F32), 0.8 * size / 128)
    mottle *= F32(1.0 / (mottle.std() + 1e-6))

    bubble = zeros()
    bx, by = L.x(0.17), L.cp - 0.4 * L.dome + 0.05
    sl = win(bx - 0.08, bx + 0.08, by - 0.05, by + 0.05)
    Xb, Yb = X[sl], Y[sl]
    bubble[sl] = _ramp(1.0 - np.hypot((Xb - bx) / 0.06, (Yb - L.dia(L.u(Xb)) - 0.05) / 0.03), 0.3)
    dense = np.maximum(0.3 * med, (0.24 - 0.12 * bubble) * abdomen * body)
    D = (a.soft * body * thick + dense - a.air * airness
         + (0.11 * markings + 0.015 * mottle) * lung_all * clear
         - 0.09 * trachea + bones + ribs * (1.0 - 0.6 * med) + extra)
    return _expose(D, a, size, np.random.default_rng([a.texture_seed, _NOISE]))


def render_lateral(f: StudyFindings, a: Anatomy, size: int) -> np.ndarray:
    """Lateral chest radiograph, uint8 (size, size); anterior on the image left."""
    X, Y = _grid(size, 0.6 * a.rotation_deg, a.shift_y)
    w = F32(1.3 / size)

    def rng(k: int) -> np.random.Generator:     # one stream per purpose, as in the frontal view
        return np.random.default_rng([a.texture_seed, _LAT, k])
    cp = 0.5 * (a.cp_y_right + a.cp_y_left)
    apex = a.apex_y
    ant = 0.16 + 0.25 * (Y - 0.6) ** 2                  # anterior chest wall
    post = 0.92 - 0.1 * (Y - 0.5) ** 2                  # back
    body = _ramp(np.minimum(X - ant, post - X), 0.02)
    sp_front = 0.72 + 0.05 * np.sin(np.pi * np.clip(Y, 0.0, 1.0))  # vertebral bodies, kyphosis

    # lungs: from behind the sternum over the vertebral bodies, dome-shaped apex, diaphragm
    # lowest in the posterior costophrenic sulcus
    front = ant + 0.03
    back = sp_front + 0.07
    s = np.clip((X - front) / (back - front), 0.0, 1.0)
    dia = cp - 0.03 - 0.07 * np.sin(np.pi * 0.9 * s) + 0.1 * s ** 3
    q = ((X - 0.5) / 0.3) ** 2 + ((Y - apex - 0.22) / 0.22) ** 2
    top = np.where(Y < apex + 0.22, (1.0 - np.sqrt(q)) * 0.22, 1.0)
    lung = _ramp(top, w) * _ramp(X - front, w) * _ramp(back - X, 0.03) * _ramp(dia - Y, w)
    abdomen = _ramp(Y - dia, w)

    # heart: anterior, on the diaphragm; its depth grows with the cardiothoracic ratio
    hax = 0.17 * f.ctr / 0.45
    hay = 0.17 + 0.1 * (f.ctr - 0.45)
    hcx = 0.19 + hax * 0.8
    hcy = cp - 0.04 - hay * 0.55
    win = _Win(X, Y)
    heart = np.zeros_like(X)
    sl = win(hcx - hax - 0.02, hcx + hax + 0.02, hcy - hay - 0.02, hcy + hay + 0.02)
    e2 = ((X[sl] - hcx) / hax) ** 2 + ((Y[sl] - hcy) / hay) ** 2
    heart[sl] = (_ramp((1.0 - np.sqrt(e2)) * hay, 0.015)
                 * (0.75 + 0.25 * np.sqrt(np.clip(1.0 - e2, 0, 1))))
    arch = [(0.4, apex + 0.3), (0.42, apex + 0.24), (0.5, apex + 0.19), (0.6, apex + 0.24),
            (0.66, apex + 0.4), (0.68, cp - 0.02)]
    aorta = np.zeros_like(X)
    sl = win(0.3, 0.72, apex + 0.14, cp)
    aorta[sl] = _ramp(0.022 - _polyline_dist(X[sl], Y[sl], arch), 0.015)

    opac_parts = []
    ef = f.effusion
    if ef is not None:
        H = {"small": 0.07, "moderate": 0.15, "large": 0.26}[ef.size]
        H = 0.045 if ef.uncertain else H
        H *= 1.25 if ef.side == "bilateral" else 1.0
        surface = cp + 0.06 - H * (0.4 + 0.6 * s ** 2)
        opac_parts.append(0.9 * _ramp(Y - surface, 0.025) * lung)
    op = f.opacity
    if op is not None:
        cx, cy = {"upper": (0.5, apex + 0.17), "middle": (0.33, cp - 0.22),
                  "lower": (0.6, cp - 0.08)}[op.lobe]
        patch = _blobs(X, Y, cx, cy, rng(_OPACITY), 4, 0.03, 0.045)
        opac_parts.append((0.7 if op.kind == "consolidation" else 0.4) * patch * lung)
    if f.edema is not None:
        alpha = 0.18 if f.edema.uncertain else (0.3 if f.edema.severity == "mild" else 0.45)
        haze = np.exp(-((X - 0.5) / 0.14) ** 2 - ((Y - 0.45) / 0.16) ** 2)
        opac_parts.append(alpha * haze * lung)
    if f.atelectasis is not None:
        d = _seg_dist(X, Y, (0.3, cp - 0.09), (0.6, cp - 0.05))
        opac_parts.append(0.7 * _ramp(0.006 + 0.3 * w - d, w) * lung)
    clear = np.ones_like(X)
    for part in opac_parts:
        clear = clear * (1.0 - part)

    extra = np.zeros_like(X)
    if f.nodule is not None:
        cy = apex + {"upper": 0.27, "mid": 0.5, "lower": 0.72}[f.nodule.zone] * (cp - apex) * 0.9
        cx = 0.38 + 0.25 * float(rng(_NODULE).random())
        rad = f.nodule.size_mm / 2 / MM_PER_UNIT
        sl = win(cx - rad - 0.01, cx + rad + 0.01, cy - rad - 0.01, cy + rad + 0.01)
        d = np.hypot(X[sl] - cx, Y[sl] - cy)
        extra[sl] += 0.25 * np.sqrt(np.clip(1.0 - (d / rad) ** 2, 0.0, 1.0))
    trachea = np.zeros_like(X)
    sl = win(0.4, 0.56, -1.0, apex + 0.3)
    Xt, Yt = X[sl], Y[sl]
    trachea[sl] = _ramp(0.017 - _seg_dist(Xt, Yt, (0.44, -0.02), (0.52, apex + 0.26)), w)
    if f.devices.ett_cm is not None:
        extra[sl] += 0.16 * _ramp(0.006 + 0.3 * w - _seg_dist(Xt, Yt, (0.445, -0.02),
                                                                (0.505, apex + 0.19)), w)
    if f.devices.line is not None:
        sl = win(0.36, 0.44, -1.0, apex + 0.24)
        extra[sl] += 0.2 * _ramp(0.003 + 0.35 * w - _polyline_dist(
            X[sl], Y[sl], [(0.42, -0.02), (0.4, apex + 0.08), (0.42, apex + 0.22)]), w)

    bones = np.zeros_like(X)
    sl = win(0.55, 1.0, -1.0, 2.0)
    Xb, Yb, spf = X[sl], Y[sl], sp_front[sl]
    vb = np.abs((Yb / 0.058) - np.round(Yb / 0.058)) * 0.058
    spine = _ramp(np.minimum(Xb - spf - 0.005, spf + 0.085 - Xb), w)
    bones[sl] = (0.09 * spine * (0.4 + 0.6 * _ramp(vb - 0.008, w)) * (1.0 - 0.4 * np.clip(Yb, 0, 1))
                 + 0.04 * _ramp(0.02 - np.abs(Xb - spf - 0.13), 0.01))
    rb = (Yb + 0.25 * Xb) / 0.075
    rb = np.abs(rb - np.round(rb)) * 0.075
    bones[sl] += 0.025 * _ramp(0.008 - rb, w) * _ramp(Xb - 0.6, 0.05) * lung[sl]
    sl = win(0.1, 0.3, 0.1, 0.7)
    Xs_, Ys_ = X[sl], Y[sl]
    bones[sl] += 0.1 * (_ramp(0.012 - np.abs(Xs_ - ant[sl] - 0.015), w) * _ramp(Ys_ - 0.15, 0.02)
                        * _ramp(0.6 - Ys_, 0.02))
    shoulders = np.zeros_like(X)
    sl = win(0.15, 1.0, -1.0, 0.6)
    shoulders[sl] = np.exp(-((Y[sl] + 0.05) / 0.25) ** 2) * _ramp(X[sl] - 0.3, 0.2)
    hilum = np.zeros_like(X)
    sl = win(0.3, 0.75, apex + 0.05, apex + 0.55)
    hilum[sl] = np.exp(-(((X[sl] - 0.52) / 0.06) ** 2 + ((Y[sl] - apex - 0.3) / 0.07) ** 2))
    mottle = ndimage.gaussian_filter(rng(_PARENCHYMA).standard_normal(X.shape, dtype=F32),
                                     1.0 * size / 128)
    mottle *= F32(1.0 / (mottle.std() + 1e-6))

    lung_vis = lung * (1.0 - 0.6 * heart)
    dense = np.maximum(0.14 * heart, 0.24 * abdomen) * body
    D = ((a.soft + 0.05) * body + dense + 0.12 * shoulders * body + 0.05 * aorta * (1.0 - heart)
         - (a.air * 0.8) * lung_vis * clear
         + (0.12 * hilum + 0.012 * mottle) * lung_vis
         - 0.07 * trachea + bones + extra)
    return _expose(D, a, size, np.random.default_rng([a.texture_seed, _NOISE, 1]))


def render_study(f: StudyFindings, a: Anatomy, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(frontal, lateral) uint8 images of one study."""
    return render_frontal(f, a, size), render_lateral(f, a, size)

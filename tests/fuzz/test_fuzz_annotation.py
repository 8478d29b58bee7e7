"""Fuzzing a data root (annotation.json + images/) as ``uarbench data info`` reads it.

Generates: a small valid R2Gen release (6 studies, two 16x16 PNG views each) with one mutation
drawn per case: the JSON structure (top level, splits, studies of the wrong type, missing or
renamed splits and fields, nesting 1,000-100,000 deep), types and values of ids / reports /
image paths (null, blank, bool, numbers, lists, objects, duplicates, absolute, ``..``, NUL,
over-long names), the file's bytes (cut short, NUL bytes, latin-1, UTF-16/32, a UTF-8 BOM, random
bytes, empty, a folder, missing) and the image files (cut short, random or text bytes, empty,
deleted, a folder, a symlink loop, a PNG header claiming a huge image, a JPEG named .png).

Property: :func:`uarbench.data.datasets.load_dataset` with the full image decode, then the
cleaned reports and the vocabulary (what ``data info`` prints), either succeeds (only when the
mutation can be harmless) or raises ``UarbenchError`` naming annotation.json; never another
exception.
"""
from __future__ import annotations

import copy
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fuzzlib import (EITHER, JPEG, MIN_CASES, MUST_FAIL, MUST_PASS, PNG, PNG_TRAILER, Tally, check,
                     cut, fuzz_settings, insert, png_header_only, scratch)
from uarbench.data.datasets import load_dataset

N_CASES = 150
VIEWS = 2            # iu_xray reads two views per study


def base_release() -> dict:
    reports = ["The heart is normal. The lungs are clear.", "Mild cardiomegaly. No effusion.",
               "No pneumothorax. Lungs are clear.", "Heart size normal. No consolidation."]
    out = {}
    for split, n in (("train", 3), ("val", 1), ("test", 2)):
        out[split] = [{"id": f"CXR{split}{i}_IM-00{i}", "report": reports[i % len(reports)],
                       "image_path": [f"CXR{split}{i}/0.png", f"CXR{split}{i}/1.png"],
                       "split": split} for i in range(n)]
    return out


BASE = base_release()
STUDIES = [(s, i) for s, items in BASE.items() for i in range(len(items))]
IMAGES = [p for items in BASE.values() for it in items for p in it["image_path"]]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                 max_size=3), max_leaves=6)
BAD_IDS = [None, "", "  ", "\t\n", True, False, [], ["CXR1"], {}, {"id": "x"}, 1.5, -0.0]
BAD_REPORTS = [None, "", " ", "\n\t ", 0, 2.5, True, [], ["The heart is normal."],
               {"findings": "normal"}]
BAD_IMAGE_LISTS = [[], ["CXRtrain0/0.png"], "CXRtrain0/0.png", None, 3, {}, {"0": "a.png"},
                   [None, None], [1, 2], [[], []], [{"p": 1}, "CXRtrain0/0.png"], [True, False],
                   ["CXRtrain0/0.png", 7]]
MISSING_PATHS = ["nope.png", "", ".", "/", "..", "../annotation.json", "/nonexistent/0.png",
                 "CXRtrain0/0.png\x00", "a\x00b.png", "x" * 300, "d/" * 2100 + "x.png",
                 "CXRtrain0", "CXRtrain0/0.PNG"]


class Case:
    def __init__(self) -> None:
        self.data: object = copy.deepcopy(BASE)
        self.raw: bytes | None = None         # bytes written instead of the JSON of data
        self.after: list = []                 # damage done once the release is written


def study(case: Case, draw) -> dict:
    split, i = draw(st.sampled_from(STUDIES), label="study")
    return case.data[split][i]


class _RawDeep:
    """A nesting too deep for json.dumps: spliced into the serialized text."""

    def __init__(self, depth: int) -> None:
        self.text = "[" * depth + "]" * depth


def serialize(data: object) -> bytes:
    marks: dict[str, str] = {}

    def default(o):
        if isinstance(o, _RawDeep):
            key = f"@@deep{len(marks)}@@"
            marks[f'"{key}"'] = o.text
            return key
        raise TypeError(o)

    def walk(o):
        if isinstance(o, _RawDeep):
            return default(o)
        if isinstance(o, list):
            return [walk(x) for x in o]
        if isinstance(o, dict):
            return {k: walk(v) for k, v in o.items()}
        return o
    text = json.dumps(walk(data), ensure_ascii=False)
    for k, v in marks.items():
        text = text.replace(k, v)
    return text.encode("utf-8")


# --- mutations: each changes the case and returns what must happen ----------------------------

def m_top_level(case, draw):
    case.data = draw(st.sampled_from([[], [BASE["train"]], "annotation", 3, None, True,
                                      {"train": []}, {"train": [], "val": []}]))
    return MUST_FAIL


def m_split_missing(case, draw):
    del case.data[draw(st.sampled_from(list(BASE)))]
    return MUST_FAIL


def m_split_renamed(case, draw):
    split = draw(st.sampled_from(list(BASE)))
    case.data[draw(st.sampled_from(["   ", split.upper(), split + " ", "", "tset"]))] = \
        case.data.pop(split)
    return MUST_FAIL


def m_split_type(case, draw):
    split = draw(st.sampled_from(list(BASE)))
    case.data[split] = draw(st.sampled_from([{}, {"0": BASE[split][0]}, "studies", 0, None,
                                             True, BASE[split][0]]))
    return MUST_FAIL


def m_split_empty(case, draw):
    case.data[draw(st.sampled_from(list(BASE)))] = []
    return EITHER


def m_study_type(case, draw):
    split, i = draw(st.sampled_from(STUDIES))
    case.data[split][i] = draw(st.sampled_from([None, "study", 1, True, [], [BASE[split][i]]]))
    return MUST_FAIL


def m_field_missing(case, draw):
    del study(case, draw)[draw(st.sampled_from(["id", "report", "image_path"]))]
    return MUST_FAIL


def m_id_bad(case, draw):
    study(case, draw)["id"] = draw(st.sampled_from(BAD_IDS))
    return MUST_FAIL


def m_id_number(case, draw):
    study(case, draw)["id"] = draw(st.integers(min_value=0, max_value=10**12))
    return EITHER


def m_id_odd(case, draw):
    study(case, draw)["id"] = draw(st.sampled_from([" CXR9 ", "a\x00b", "é/ü", "a/b",
                                                    "x" * 10_000, "\u202eevil", "None"]))
    return EITHER


def m_id_duplicate(case, draw):
    a, b = draw(st.lists(st.sampled_from(STUDIES), min_size=2, max_size=2, unique=True))
    case.data[b[0]][b[1]]["id"] = case.data[a[0]][a[1]]["id"]
    return MUST_FAIL


def m_report_bad(case, draw):
    study(case, draw)["report"] = draw(st.sampled_from(BAD_REPORTS))
    return MUST_FAIL


def m_report_odd(case, draw):
    text = draw(st.one_of(
        st.text(min_size=1, max_size=60).filter(lambda s: s.strip()),
        st.sampled_from(["no\x00effusion .", "\u202eright to left", "🫁 clear", "a\r\nb\rc"]),
        st.integers(min_value=100_000, max_value=2_000_000).map(lambda n: "clear . " * (n // 8))))
    study(case, draw)["report"] = text
    return MUST_PASS


def m_image_list_bad(case, draw):
    study(case, draw)["image_path"] = draw(st.sampled_from(BAD_IMAGE_LISTS))
    return MUST_FAIL


def m_image_path_missing(case, draw):
    s = study(case, draw)
    s["image_path"][draw(st.integers(0, VIEWS - 1))] = draw(st.sampled_from(MISSING_PATHS))
    return MUST_FAIL


def m_image_path_outside(case, draw):
    """An image path that leaves the image root, to a file that is not an image."""
    s = study(case, draw)
    target = draw(st.sampled_from(["../annotation.json", "ABS"]))
    s["image_path"][0] = target
    if target == "ABS":
        case.after.append(lambda root: _set_abs(case, s, root))
    return MUST_FAIL


def _set_abs(case, s, root):
    s["image_path"][0] = str(root / "annotation.json")
    (root / "annotation.json").write_bytes(serialize(case.data))


def m_image_path_shared(case, draw):
    a, b = draw(st.lists(st.sampled_from(STUDIES), min_size=2, max_size=2, unique=True))
    case.data[b[0]][b[1]]["image_path"] = list(case.data[a[0]][a[1]]["image_path"])
    return MUST_PASS


def m_extra_fields(case, draw):
    target = study(case, draw) if draw(st.booleans()) else case.data
    key = draw(st.text(max_size=10).filter(lambda k: k not in ("id", "report", "image_path",
                                                               "train", "val", "test")))
    target[key] = draw(json_values)
    return MUST_PASS


def m_deep(case, draw):
    depth = draw(st.sampled_from([1_000, 5_000, 100_000]))
    where = draw(st.sampled_from(["study", "split", "report", "image_path", "id"]))
    if where == "split":
        case.data[draw(st.sampled_from(list(BASE)))] = _RawDeep(depth)
    else:
        split, i = draw(st.sampled_from(STUDIES))
        if where == "study":
            case.data[split][i] = _RawDeep(depth)
        else:
            case.data[split][i][where] = _RawDeep(depth)
    return MUST_FAIL


def m_truncate(case, draw):
    raw = serialize(case.data)
    case.raw = cut(raw, draw(st.integers(0, len(raw) - 1)))
    return MUST_FAIL


def m_nul_byte(case, draw):
    raw = serialize(case.data)
    case.raw = insert(raw, draw(st.integers(0, len(raw))), b"\x00" * draw(st.integers(1, 3)))
    return MUST_FAIL


def m_encoding(case, draw):
    s = study(case, draw)
    s["report"] = "Épanchement pleural à droite. Cœur normal."
    enc = draw(st.sampled_from(["latin-1", "cp1252", "utf-16", "utf-16-le", "utf-32", "utf-8-sig"]))
    text = serialize(case.data).decode("utf-8")
    if enc == "latin-1":
        text = text.replace("œ", "oe")
    case.raw = text.encode(enc)
    return MUST_PASS if enc == "utf-8-sig" else MUST_FAIL


def m_garbage(case, draw):
    case.raw = draw(st.one_of(st.binary(min_size=1, max_size=300),
                              st.sampled_from([b"", b"   \n", b"\xff\xfe", b"null", b"{}",
                                               b"\xef\xbb\xbf", b"[]", b'"train"'])))
    return MUST_FAIL


def m_annotation_not_file(case, draw):
    how = draw(st.sampled_from(["folder", "missing", "dangling link", "link loop"]))

    def damage(root):
        path = root / "annotation.json"
        path.unlink()
        if how == "folder":
            path.mkdir()
        elif how == "dangling link":
            path.symlink_to(root / "nowhere.json")
        elif how == "link loop":
            path.symlink_to(path)
    case.after.append(damage)
    return MUST_FAIL


def m_image_bytes(case, draw):
    s = study(case, draw)
    rel = s["image_path"][draw(st.integers(0, VIEWS - 1))]
    how = draw(st.sampled_from(["cut", "garbage", "text", "empty", "delete", "folder", "loop",
                                "huge header", "header only", "png magic + garbage", "jpeg",
                                "flip"]))
    expect = MUST_FAIL
    payload = None
    if how == "cut":
        at = draw(st.integers(0, len(PNG) - 1))
        payload = PNG[:at]
        expect = MUST_FAIL if at < len(PNG) - PNG_TRAILER else EITHER
    elif how == "garbage":
        payload = draw(st.binary(min_size=1, max_size=400))
    elif how == "text":
        payload = b"not an image, a text file named .png\n"
    elif how == "empty":
        payload = b""
    elif how == "huge header":
        payload = png_header_only(draw(st.sampled_from([70_000, 2**31 - 1])),
                                  draw(st.sampled_from([70_000, 2**31 - 1])))
    elif how == "header only":
        payload = png_header_only(16, 16)
    elif how == "png magic + garbage":
        payload = PNG[:8] + draw(st.binary(min_size=0, max_size=200))
    elif how == "jpeg":
        payload, expect = JPEG, MUST_PASS
    elif how == "flip":
        at = draw(st.integers(0, len(PNG) - 1))
        payload = PNG[:at] + bytes([PNG[at] ^ draw(st.integers(1, 255))]) + PNG[at + 1:]
        expect = EITHER

    def damage(root):
        p = root / "images" / rel
        p.unlink()
        if payload is not None:
            p.write_bytes(payload)
        elif how == "folder":
            p.mkdir()
        elif how == "loop":
            p.symlink_to(p)
    case.after.append(damage)
    return expect


def m_images_root(case, draw):
    how = draw(st.sampled_from(["file", "missing", "empty folder"]))

    def damage(root):
        import shutil
        shutil.rmtree(root / "images")
        if how == "file":
            (root / "images").write_bytes(PNG)
        elif how == "empty folder":
            (root / "images").mkdir()
    case.after.append(damage)
    return MUST_FAIL


MUTATIONS = {f.__name__[2:]: f for f in (
    m_top_level, m_split_missing, m_split_renamed, m_split_type, m_split_empty, m_study_type,
    m_field_missing, m_id_bad, m_id_number, m_id_odd, m_id_duplicate, m_report_bad,
    m_report_odd, m_image_list_bad, m_image_path_missing, m_image_path_outside,
    m_image_path_shared, m_extra_fields, m_deep, m_truncate, m_nul_byte, m_encoding, m_garbage,
    m_annotation_not_file, m_image_bytes, m_images_root)}


def data_info(root):
    """What ``uarbench data info`` computes: the checked dataset, cleaned reports, vocabulary."""
    ds = load_dataset("iu_xray", root, image_check="open")
    for studies in ds.annotation.splits.values():
        for s in studies:
            ds.clean(s.report)
    return len(ds.tokenizer)


def test_fuzz_data_root():
    tally = Tally()

    @fuzz_settings(N_CASES)
    @given(st.data())
    def one(data):
        name = data.draw(st.sampled_from(sorted(MUTATIONS)), label="mutation")
        case = Case()
        expect = MUTATIONS[name](case, data.draw)
        tally.mutations[name] += 1
        with scratch() as d:
            root = _release(d, case.raw if case.raw is not None else serialize(case.data))
            for damage in case.after:
                damage(root)
            check(lambda: data_info(root), expect=expect, names=["annotation.json"],
                  tally=tally, what=f"mutation {name}")

    one()
    print(tally.summary("data root"))
    assert tally.cases >= N_CASES and tally.malformed >= MIN_CASES, tally.summary("data root")
    assert set(tally.mutations) == set(MUTATIONS)


def _release(d, annotation: bytes):
    """A data root under ``d``: the valid images and this annotation.json."""
    root = d / "release"
    for rel in IMAGES:
        p = root / "images" / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(PNG)
    (root / "annotation.json").write_bytes(annotation)
    return root


def test_the_unmutated_release_loads():
    with scratch() as d:
        assert data_info(_release(d, serialize(BASE))) > 4


# --- the classes this fuzzing found (each failed before its fix), as fixed cases --------------

def _release_with(folder, mutate) -> tuple:
    """A release written under ``folder`` after ``mutate(splits, root)``: (root, splits)."""
    root = folder / "release"
    data = copy.deepcopy(BASE)
    for rel in IMAGES:
        (root / "images" / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / "images" / rel).write_bytes(PNG)
    mutate(data, root)
    if not (root / "annotation.json").exists():
        (root / "annotation.json").write_text(json.dumps(data))
    return root, data


def _set_id(value):
    def mutate(data, root):
        data["test"][1]["id"] = value
    return mutate


def _set_image(value):
    def mutate(data, root):
        data["train"][0]["image_path"][1] = value
    return mutate


def _image_bytes(payload):
    def mutate(data, root):
        (root / "images" / data["val"][0]["image_path"][0]).write_bytes(payload)
    return mutate


@pytest.mark.parametrize("mutate, says", [
    (_set_id(None), "record test[1]: id must be a non-blank string or an integer, not null"),
    (_set_id("  "), "id must be a non-blank string"),
    (_set_id(True), "or an integer, not true"),
    (_set_id(["a"]), 'not ["a"]'),
    (_set_image(3), "image_path entries must be file paths (strings), not 3"),
    (_set_image(None), "image_path entries must be file paths"),
    (_set_image("x" * 300), "missing or unreadable images"),                # ENAMETOOLONG
    (_image_bytes(png_header_only(2**31 - 1, 2**31 - 1)), "missing or unreadable images"),
    (_image_bytes(png_header_only(70_000, 70_000)), "missing or unreadable images"),
], ids=["null id", "blank id", "bool id", "list id", "int image path", "null image path",
        "image name too long", "decompression bomb", "huge header"])
def test_found_by_fuzzing(tmp_path, mutate, says):
    from uarbench.errors import UarbenchError
    root, _ = _release_with(tmp_path, mutate)
    with pytest.raises(UarbenchError) as e:
        data_info(root)
    assert "annotation.json" in str(e.value) and says in str(e.value)


def test_a_bom_is_not_an_error(tmp_path):
    def bom(data, root):
        (root / "annotation.json").write_bytes(b"\xef\xbb\xbf" + json.dumps(data).encode())
    root, _ = _release_with(tmp_path, bom)
    assert data_info(root) > 4


@pytest.mark.parametrize("payload", [png_header_only(2**31 - 1, 2**31 - 1),
                                     png_header_only(70_000, 70_000)], ids=["2^31", "70000"])
def test_images_read_unchecked_are_one_clear_error(tmp_path, payload):
    from uarbench.data.r2gen import Study
    from uarbench.errors import UarbenchError
    from uarbench.training.data import load_views
    path = tmp_path / "0.png"
    path.write_bytes(payload)
    with pytest.raises(UarbenchError, match="0.png: record s: cannot read image"):
        load_views(Study("s", "report", (path,), "test"), 8)

import pytest

from conftest import toy_splits, write_release
from uarbench.data.datasets import load_dataset
from uarbench.conventions import make_convention
from uarbench.errors import UarbenchError


def test_iu_xray_split_counts_and_vocabulary(iu_xray_root, capsys):
    ds = load_dataset("iu_xray", iu_xray_root, image_check="none")
    assert {k: len(v) for k, v in ds.annotation.splits.items()} == {"train": 2069, "val": 296,
                                                                     "test": 590}
    assert all(len(s.image_paths) == 2 for s in ds.split("test"))
    print(f"IU-Xray vocabulary at threshold 3: {len(ds.tokenizer.words)} words")
    assert 700 <= len(ds.tokenizer.words) <= 800  # R2Gen reports ~760 ids incl. <unk>


def test_r2gen_compat_references_are_truncated_and_unk_mapped(iu_xray_root):
    ds = load_dataset("iu_xray", iu_xray_root, image_check="none")
    raw = {s.id: s.report for s in ds.split("test")}
    clean = dict(zip(raw, make_convention("r2gen", dataset=ds).prepare_references(list(raw.values()))))
    conv = make_convention("r2gen_compat", dataset=ds)
    compat = dict(zip(raw, conv.prepare_references(list(raw.values()))))
    assert conv.prepare(["The Heart."]) == ["the heart ."]     # predictions: cleaned only
    longest = max(clean, key=lambda i: len(clean[i].split()))
    assert len(clean[longest].split()) > 59 and len(compat[longest].split()) == 59
    assert any("<unk>" in r for r in compat.values())
    assert not any("<unk>" in r for r in clean.values())
    assert conv.signature_fields() == (("conv", "r2gen_compat"), ("clean", "r2gen-iu"),
                                       ("vocab", "trunc59,unk@3"))


def test_mimic_uses_first_view_only(tmp_path):
    root = write_release(tmp_path / "m", toy_splits())
    ds = load_dataset("mimic_cxr", root)
    assert all(len(s.image_paths) == 1 for s in ds.split("train"))
    assert ds.tokenizer.max_seq_length == 100 and ds.tokenizer.threshold == 10


def _broken(tmp_path, mutate, images=True):
    splits = toy_splits()
    mutate(splits)
    return write_release(tmp_path / "b", splits, images=images)


@pytest.mark.parametrize("mutate, message", [
    (lambda s: s.pop("test"), "split 'test' is missing"),
    (lambda s: s["train"][2].pop("report"), "train2 (train[2]): missing field(s) report"),
    (lambda s: s["val"][1].update(report="  "), "val1 (val[1]): empty report"),
    (lambda s: s["test"].append(dict(s["train"][0])), "duplicate id"),
])
def test_bad_annotation_names_file_record_and_fix(tmp_path, mutate, message):
    root = _broken(tmp_path, mutate)
    with pytest.raises(UarbenchError) as e:
        load_dataset("iu_xray", root)
    assert message in str(e.value) and "annotation.json" in str(e.value) and "Fix:" in str(e.value)


def test_missing_and_unreadable_images_are_counted(tmp_path):
    root = write_release(tmp_path / "i", toy_splits())
    (root / "images" / "train1" / "0.png").unlink()
    (root / "images" / "val2" / "1.png").write_bytes(b"not a png")
    with pytest.raises(UarbenchError, match=r"1 study has missing images .*first: train1"):
        load_dataset("iu_xray", root)
    with pytest.raises(UarbenchError, match=r"2 studies have missing or unreadable images.*train1, val2"):
        load_dataset("iu_xray", root, image_check="open")
    assert len(load_dataset("iu_xray", root, image_check="none").split("train")) == 8


def test_missing_file_and_invalid_json(tmp_path):
    with pytest.raises(UarbenchError, match="annotation file not found"):
        load_dataset("iu_xray", tmp_path / "nowhere")
    (tmp_path / "annotation.json").write_text('{"train": [}')
    with pytest.raises(UarbenchError, match=r"invalid JSON at line 1, column 12"):
        load_dataset("iu_xray", tmp_path)


def test_real_dataset_without_root_is_a_clear_error():
    with pytest.raises(UarbenchError, match="needs --data-root"):
        load_dataset("iu_xray")

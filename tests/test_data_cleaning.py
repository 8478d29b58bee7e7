import pytest

from uarbench.data.cleaning import CLEANERS, clean_report_iu_xray, clean_report_mimic_cxr


@pytest.mark.parametrize("raw, expected", [
    ("The heart is normal. The lungs are clear.", "the heart is normal . the lungs are clear ."),
    ("1. Heart size normal. 2. No effusion.", "heart size normal . no effusion ."),
    ("No acute disease...", "no acute disease ."),
    ("Lungs (clear); no effusion: stable!", "lungs clear no effusion stable ."),
    ("Left-sided 'XXXX' opacity/density", "left-sided xxxx opacitydensity ."),  # "-" is the range operator: kept
    ("heart <normal> @ size = ok", "heart normal size ok ."),  # ':-[' is a range: <=>?@ go too
    ("Normal.  2. No effusion.", "normal . . no effusion ."),  # R2Gen keeps empty sentences
    ("", ""),
    ("   ", ""),
])
def test_iu_cleaning_matches_r2gen_behaviour(raw, expected):
    assert clean_report_iu_xray(raw) == expected


def test_mimic_cleaning_handles_newlines_underscores_and_spaces():
    raw = "FINDINGS:\n1. Heart____ size   normal.. 2. No PTX."
    assert clean_report_mimic_cxr(raw) == "findings heart size normal . no ptx ."


def test_cleaning_is_idempotent_on_real_reports(iu_xray_root):
    import json
    data = json.loads((iu_xray_root / "annotation.json").read_text())
    reports = [s["report"] for split in data.values() for s in split]
    for r in reports:
        once = clean_report_iu_xray(r)
        assert clean_report_iu_xray(once) == once
        assert "  " not in once and once.endswith(" .")


def test_cleaners_are_registered():
    assert CLEANERS.get("r2gen-iu") is clean_report_iu_xray
    assert set(CLEANERS.names()) >= {"r2gen-iu", "r2gen-mimic"}

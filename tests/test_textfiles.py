import pytest

from uarbench.errors import UarbenchError
from uarbench.textfiles import read_texts


def test_reads_jsonl_and_csv(tmp_path):
    j = tmp_path / "p.jsonl"
    j.write_text('{"id": "a", "prediction": "x ."}\n\n{"id": 2, "prediction": "y, \\"z\\" ."}\n')
    assert read_texts(j, "prediction") == {"a": "x .", "2": 'y, "z" .'}
    c = tmp_path / "p.csv"
    c.write_text('id,prediction\na,"x, with comma ."\nb,\n', encoding="utf-8")
    assert read_texts(c, "prediction") == {"a": "x, with comma .", "b": ""}


@pytest.mark.parametrize("content, message", [
    (b'{"id": "a", "prediction": "x"}\n{"id": "a", "prediction": "y"}\n', "a (line 2): duplicate id"),
    (b'{"id": "a", "prediction": "x"}\n{"id": "b"\n', "line 2: invalid JSON"),
    (b'{"id": "a", "text": "x"}\n', "line 1: missing field"),
    (b'{"id": "a", "prediction": 3}\n', "'prediction' must be a string"),
    (b'{"id": "a", "prediction": "caf\xe9"}\n', "not valid UTF-8 (byte 30, line 1)"),
    (b"\n\n", "no records"),
])
def test_bad_files_name_the_file_and_record(tmp_path, content, message):
    p = tmp_path / "preds.jsonl"
    p.write_bytes(content)
    with pytest.raises(UarbenchError) as e:
        read_texts(p, "prediction")
    assert message in str(e.value) and "preds.jsonl" in str(e.value) and "Fix:" in str(e.value)

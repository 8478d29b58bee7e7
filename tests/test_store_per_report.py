"""store.read_per_report: every statistic a finite number (checked for the whole frame at once),
else one error naming the file and the first bad column."""
from __future__ import annotations

import pytest

from uarbench.errors import UarbenchError
from uarbench.store import PER_REPORT_FILE, read_per_report


def write(tmp_path, body: str):
    (tmp_path / PER_REPORT_FILE).write_text(body)
    return tmp_path


def test_numbers_of_every_kind_are_read(tmp_path):
    frame = read_per_report(write(tmp_path, "id,a,b,c\n1,1,0.5,True\n2,3,1e-300,False\n"))
    assert list(frame.index) == ["1", "2"] and list(frame.columns) == ["a", "b", "c"]


@pytest.mark.parametrize("body, column", [
    ("id,a,b\ns1,1,nan\ns2,2,3\n", "b"),
    ("id,a,b\ns1,inf,1\ns2,2,3\n", "a"),
    ("id,a,b,c\ns1,1,x,2\ns2,2,3,nan\n", "b"),      # text first, then NaN: both named
])
def test_a_column_that_is_not_finite_numbers_is_named(tmp_path, body, column):
    with pytest.raises(UarbenchError, match=f"column '{column}'"):
        read_per_report(write(tmp_path, body))
    if body.count(",nan") and ",x," in body:
        with pytest.raises(UarbenchError, match="and 1 more"):
            read_per_report(write(tmp_path, body))

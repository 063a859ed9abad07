"""The Selection value: checked once when it is made, applied the same by the API, by
``get_arrow`` and by ``adc get``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import allye_data_connector as adc
from allye_data_connector import Selection
from allye_data_connector.errors import InvalidArgumentError


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"columns": "a"}, "columns must be a list"),
        ({"rows": (1, 2, 3)}, r"rows must be a \(start, stop\) pair"),
        ({"rows": (1.5, None)}, "rows must hold ints or None"),
        ({"head": -1}, "head must be a non-negative int"),
        ({"head": True}, "head must be a non-negative int"),
        ({"sample": "10"}, "sample must be a non-negative int"),
        ({"start": "not a time"}, "start='not a time' is not a time"),
        ({"end": object()}, "is not a time"),
        ({"time_column": 3}, "time_column must be a column name"),
    ],
)
def test_bad_selections_fail_when_made(kwargs, match):
    with pytest.raises(InvalidArgumentError, match=match):
        Selection(**kwargs)


def test_selection_is_a_normalised_value():
    s = Selection(columns=["a", "b"], rows=[np.int64(1), None], head=np.int32(3), start="2025-01-01")
    assert s.columns == ("a", "b") and s.rows == (1, None) and s.head == 3 and type(s.head) is int
    assert s.start == pd.Timestamp("2025-01-01")
    assert s == Selection(columns=("a", "b"), rows=(1, None), head=3, start=pd.Timestamp("2025-01-01"))
    assert Selection() == Selection()
    with pytest.raises(AttributeError):
        s.head = 4  # type: ignore[misc]


def test_a_bad_selection_fails_before_the_table_is_looked_up(store):
    # The table does not exist: the argument error comes first, not TableNotFoundError.
    with pytest.raises(InvalidArgumentError, match="head"):
        adc.get_dataframe("never", secret_dir=store, head=-1)


def test_selection_argument_equals_the_keywords(store):
    df = pd.DataFrame({"a": np.arange(100), "b": np.arange(100.0)}, index=pd.date_range("2025", periods=100, freq="h", name="t"))
    adc.send_dataframe(df, "s", secret_dir=store, transport="file", chunk_rows=30)
    kw = dict(columns=["b"], rows=(5, 90), head=40, sample=10, seed=3, start="2025-01-01 02:00", end="2025-01-04")
    by_keywords = adc.get_dataframe("s", secret_dir=store, **kw)
    by_value = adc.get_dataframe("s", secret_dir=store, selection=Selection(**kw))
    pd.testing.assert_frame_equal(by_value, by_keywords)
    assert len(by_value) == 10 and list(by_value.columns) == ["b"]
    arrow = adc.get_arrow("s", secret_dir=store, selection=Selection(**kw))
    pd.testing.assert_frame_equal(arrow.to_pandas(), by_keywords, check_freq=False)
    with pytest.raises(InvalidArgumentError, match="not both"):
        adc.get_dataframe("s", secret_dir=store, head=3, selection=Selection(head=3))
    with pytest.raises(InvalidArgumentError, match="selection must be a Selection, got dict"):
        adc.get_arrow("s", secret_dir=store, selection={"head": 3})  # type: ignore[arg-type]

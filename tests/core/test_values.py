"""Canonical JSON, output encoding and parameter coercion."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from terrapipe.core.values import (
    canonical_json,
    coerce_param,
    decode_outputs,
    encode_outputs,
    stable_hash,
)
from terrapipe.errors import ParameterError, UnstorableOutput

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.text()
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=20,
)


@given(st.dictionaries(st.text(max_size=8), st.integers(), max_size=8))
def test_canonical_json_ignores_key_order(d: dict) -> None:
    reordered = dict(reversed(list(d.items())))
    assert canonical_json(d) == canonical_json(reordered)
    assert stable_hash(d) == stable_hash(reordered)


@given(json_values)
def test_encode_decode_round_trip(value) -> None:
    assert decode_outputs(json.loads(json.dumps(encode_outputs(value)))) == value


def test_paths_round_trip_as_paths() -> None:
    value = {"file": Path("/a/b.tif"), "many": [Path("x"), 1]}
    assert decode_outputs(json.loads(json.dumps(encode_outputs(value)))) == value


def test_unstorable_output_names_where() -> None:
    with pytest.raises(UnstorableOutput, match=r"outputs\['a'\]\[1\] is a builtins.object"):
        encode_outputs({"a": [1, object()]})
    with pytest.raises(UnstorableOutput, match="keys must be strings"):
        encode_outputs({1: "x"})


@given(st.integers())
def test_coerce_int_from_string(n: int) -> None:
    assert coerce_param("n", str(n), int) == n


@pytest.mark.parametrize(
    ("raw", "kind", "expected"),
    [
        ("yes", bool, True),
        ("0", bool, False),
        ("2.5", float, 2.5),
        ("a, b,c", list, ["a", "b", "c"]),
        ('["a", 1]', list, ["a", 1]),
        ('{"k": 1}', dict, {"k": 1}),
        ("2024-03-01", dt.date, dt.date(2024, 3, 1)),
    ],
)
def test_coerce_values(raw, kind, expected) -> None:
    assert coerce_param("p", raw, kind) == expected


@pytest.mark.parametrize(
    ("raw", "kind"), [("maybe", bool), ("1.5", int), (True, int), ("x", float)]
)
def test_coerce_rejects(raw, kind) -> None:
    with pytest.raises(ParameterError, match="parameter 'p'"):
        coerce_param("p", raw, kind)

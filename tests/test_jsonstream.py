"""parity.jsonstream: a JSON object read in pieces gives what json.loads gives, element by
element, with byte ranges that read the same element again; malformed text is one clear
error with its byte; an element changed since it was read is refused."""

from __future__ import annotations

import functools
import json
import random

import pytest

from parity import jsonstream


def _value(rng: random.Random, depth: int = 0):
    r = rng.random()
    if depth > 3 or r < 0.35:
        return rng.choice([1, -2.5e-7, 10**30, 0.5, 1e300, "x", 'é€😀"\\\n', "", None, True, False, -0.0])
    if r < 0.65:
        return [_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {f"k{i}ü": _value(rng, depth + 1) for i in range(rng.randint(0, 4))}


def _keep(into: list, *element) -> None:
    into.append(element)


@pytest.mark.parametrize("chunk", [1, 2, 5, 64, 1 << 20])
def test_elements_and_members_are_what_json_loads_reads(tmp_path, monkeypatch, chunk):
    """Chunks of one byte cut every number, string and multi-byte character somewhere."""
    monkeypatch.setattr(jsonstream, "CHUNK", chunk)
    rng = random.Random(chunk)
    path = tmp_path / "doc.json"
    for _ in range(60):
        doc = {"schema": "s", "cases": [_value(rng) for _ in range(rng.randint(0, 5))], "x": _value(rng),
               "runs": [_value(rng) for _ in range(rng.randint(0, 5))], "n": rng.choice([7, 1.5e-3, -12])}
        text = json.dumps(doc, ensure_ascii=rng.random() < 0.5, indent=rng.choice([None, 1])).encode()
        path.write_bytes(text)
        got: dict = {"cases": [], "runs": []}
        with open(path, "rb") as f:
            head, counts = jsonstream.read_object(f, {k: functools.partial(_keep, got[k]) for k in got})
            assert head == {"schema": "s", "x": doc["x"], "n": doc["n"]}
            assert counts == {k: len(doc[k]) for k in got}
            for k, elements in got.items():
                assert [i for i, *_ in elements] == list(range(len(doc[k])))
                assert [v for _, v, *_ in elements] == doc[k]
                for _, v, s, e, crc in elements:
                    assert json.loads(text[s:e]) == v
                    assert jsonstream.element(f, s, e, crc) == v


@pytest.mark.parametrize("text, said", [
    (b"", "expected a JSON object, found the end of the file at byte 0"),
    (b"[1]", "expected a JSON object, found '[' at byte 0"),
    (b"{", "expected a member name at byte 1"),
    (b'{"a":1,}', "expected a member name at byte 7"),
    (b'{"a":1} x', "more text after the object at byte 8"),
    (b'{"cases":[1,]}', "Expecting value at byte 12"),
    (b'{"cases":[1 2]}', "expected ',' or ']', found '2' at byte 12"),
    (b'{"a":1,"a":2}', "member 'a' is given twice"),
    (b'{"a":"\xff"}', "not UTF-8 text"),
    (b'{"cases":[{"a":tru}]}', "Expecting value at byte 15"),
    (b'{"a":1.}', "expected ',' or '}', found '.' at byte 6"),
    (b'{"cases":[' + b"[" * 100000 + b"]" * 100000 + b"]}", "nested too deeply"),
])
def test_malformed_text_is_one_error_with_its_byte(tmp_path, monkeypatch, text, said):
    monkeypatch.setattr(jsonstream, "CHUNK", 3)
    path = tmp_path / "bad.json"
    path.write_bytes(text)
    with open(path, "rb") as f, pytest.raises(jsonstream.Unreadable) as exc:
        jsonstream.read_object(f, {"cases": lambda *a: None})
    assert said in str(exc.value)


def test_an_element_changed_since_it_was_read_is_refused(tmp_path):
    path = tmp_path / "doc.json"
    path.write_bytes(b'{"cases":[{"seconds":0.125},{"seconds":0.5}]}')
    seen = []
    with open(path, "r+b") as f:
        jsonstream.read_object(f, {"cases": lambda i, v, s, e, crc: seen.append((s, e, crc))})
        f.seek(seen[1][0] + len(b'{"seconds":0.'))
        f.write(b"7")  # in place: same length, same file
        f.flush()
        assert jsonstream.element(f, *seen[0]) == {"seconds": 0.125}
        with pytest.raises(jsonstream.Unreadable, match="changed since they were read"):
            jsonstream.element(f, *seen[1])

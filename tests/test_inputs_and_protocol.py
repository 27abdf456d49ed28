"""Deterministic inputs and the worker wire format."""

from __future__ import annotations

import io
import os

import ml_dtypes
import numpy as np
import pytest

from parity import protocol
from parity.inputs import InputSpec, digest


def test_same_spec_same_bits():
    spec = InputSpec("x", "random", (4, 5, 6), "float32", init="normal", seed=3, args={"std": 2.0})
    a, b = spec.materialize(), spec.materialize()
    assert a.dtype == np.float32 and a.tobytes() == b.tobytes()
    other = InputSpec("x", "random", (4, 5, 6), "float32", init="normal", seed=4, args={"std": 2.0})
    assert other.materialize().tobytes() != a.tobytes()


def test_inputs_are_drawn_in_float64_then_rounded_once():
    f32 = InputSpec("x", "random", (100,), "float32", init="uniform", seed=1).materialize()
    f64 = InputSpec("x", "random", (100,), "float64", init="uniform", seed=1).materialize()
    assert np.array_equal(f32, f64.astype(np.float32))


def test_pcg64_stream_is_the_recorded_one():
    # Recorded by a run of this test on numpy 2.4.6 (x86-64). NumPy keeps Generator
    # streams stable for a given algorithm; a change here means inputs changed.
    spec = InputSpec("x", "random", (2, 3), "float32", init="normal", seed=0)
    assert spec.materialize().tolist() == [[0.1257302165031433, -0.13210485875606537, 0.6404226422309875],
                                           [0.10490011423826218, -0.5356693863868713, 0.3615950644016266]]


def test_literal_values_and_generated():
    v = InputSpec("x", "values", (1, 2), "float16", values=[[0.1, 2.5]]).materialize()
    assert v.dtype == np.float16 and v.tolist() == [[np.float16(0.1), 2.5]]
    a = InputSpec("x", "generated", (2, 2), "float32", init="arange", args={"start": 0.1, "step": 0.1})
    assert a.materialize().ravel().tolist() == pytest.approx([0.1, 0.2, 0.3, 0.4])


def test_digest_distinguishes_dtype_and_shape():
    x = np.zeros(4, np.float32)
    assert digest({"x": x}) != digest({"x": x.reshape(2, 2)}) != digest({"x": x.astype(np.float64)})


def test_protocol_round_trip_with_bfloat16():
    arrays = {"a": np.arange(6, dtype=np.float32).reshape(2, 3),
              "b": np.array([1.5, -2.0], dtype=ml_dtypes.bfloat16),
              "c": np.float64(3.0) * np.ones(())}
    data = protocol.pack({"cmd": "run", "native": {"size": 3}}, arrays)
    header, back = protocol.read(protocol.stream_reader(io.BytesIO(data)))
    assert header == {"cmd": "run", "native": {"size": 3}}
    for k in arrays:
        assert back[k].dtype == arrays[k].dtype and np.array_equal(back[k].astype(float), arrays[k].astype(float))


def test_protocol_refuses_pickles():
    buf = io.BytesIO()
    np.save(buf, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    blob = buf.getvalue()
    import json
    import struct

    head = json.dumps({"arrays": ["x"], "tags": {}}).encode()
    data = struct.pack(">I", len(head)) + head + struct.pack(">Q", len(blob)) + blob
    with pytest.raises(protocol.ProtocolError, match="dtype object is not supported"):  # never unpickled
        protocol.read(protocol.stream_reader(io.BytesIO(data)))
    assert issubclass(protocol.ProtocolError, ValueError)  # the runner's "the worker died" for a garbled answer



def _fake_worker(script: str):
    """A runner.Worker whose process is ``script`` (a plain Python process writing protocol
    messages to its stdout), for the parent's side of the pipe."""
    import subprocess
    import sys

    from parity import runner

    w = runner.Worker("torch", "cpu", None, None, 10)
    w.proc = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              start_new_session=True)
    return w


def test_the_parent_reads_a_message_in_pieces_or_whole(tmp_path):
    """The parent reads what the pipe holds at once: a message written whole, or in pieces
    with pauses between them (a 3 MB array among them), reads back the same."""
    import time

    arrays = {"x": np.arange(6, dtype=np.float32), "big": np.ones(800_000, np.float32)}
    msg = tmp_path / "message"
    msg.write_bytes(protocol.pack({"status": "OK"}, arrays))
    cuts = [0, 3, 40, 5000, None]
    for script in (f"import sys; sys.stdout.buffer.write(open({str(msg)!r}, 'rb').read()); sys.stdout.flush()",
                   f"import sys, time\nm = open({str(msg)!r}, 'rb').read()\ncuts = {cuts!r}\n"
                   "for a, b in zip(cuts, cuts[1:]):\n"
                   "    sys.stdout.buffer.write(m[a:b]); sys.stdout.flush(); time.sleep(0.05)"):
        w = _fake_worker(script)
        try:
            header, back = w._read(time.monotonic() + 30)
        finally:
            w.stop()
        assert header == {"status": "OK"}
        assert all(np.array_equal(back[k], arrays[k]) for k in arrays)


def test_a_worker_that_sends_more_than_it_was_asked_is_a_crash():
    """Bytes after the end of an answer would be read as the next run's answer: the worker is
    killed and the run is a CRASH that says why."""
    import time

    from parity import runner

    msg = protocol.pack({"status": "OK"})
    w = _fake_worker(f"import sys, time; sys.stdout.buffer.write({msg + msg!r}); sys.stdout.flush(); time.sleep(60)")
    try:
        with pytest.raises(runner.WorkerDied) as exc:
            w._read(time.monotonic() + 30)
        assert exc.value.status == runner.CRASH
        assert f"sent {len(msg)} bytes after the end of its message" in exc.value.message
        assert w.proc.poll() is not None  # killed, not left running
    finally:
        w.stop()

ARRAYS = [np.arange(24, dtype=np.float32).reshape(2, 3, 4), np.asfortranarray(np.ones((3, 4))),
          np.zeros((0, 3), np.int8), np.array(3.5), np.ones((2, 2), bool)[:, :1], np.arange(5, dtype=">i4"),
          np.ones((1,) * 32, np.float16), np.arange(6, dtype=np.uint16).view(ml_dtypes.bfloat16).view(np.uint16)]


@pytest.mark.parametrize("arr", ARRAYS, ids=lambda a: f"{a.dtype.str}{a.shape}")
def test_npy_bytes_are_numpys_and_read_back(arr, tmp_path):
    """The wire and the store write .npy with headers made once per dtype and shape: the bytes
    np.save writes, twice in a row (the second from the remembered header), read back the same."""
    from parity import npyio

    ref = io.BytesIO()
    np.save(ref, arr, allow_pickle=False)
    assert npyio.to_bytes(arr) == npyio.to_bytes(arr) == ref.getvalue()
    fd = os.open(tmp_path / "pack", os.O_WRONLY | os.O_CREAT)
    try:  # a store's pack: the record after a first one, where it says it is
        assert npyio.append(fd, np.ones(3)) == 128 + 24
        assert npyio.append(fd, arr) == len(ref.getvalue())
    finally:
        os.close(fd)
    assert (tmp_path / "pack").read_bytes()[152:] == ref.getvalue()
    back = npyio.from_bytes(ref.getvalue())
    assert back.dtype == arr.dtype and back.shape == arr.shape and np.array_equal(back, arr) and back.flags.writeable
    again = npyio.load_at(tmp_path / "pack", 152, len(ref.getvalue()))
    assert again.dtype == arr.dtype and again.shape == arr.shape and np.array_equal(again, arr)
    assert npyio.check_at(tmp_path / "pack", 152, len(ref.getvalue())).shape == arr.shape
    with pytest.raises(npyio.NpyError, match="bytes after the data"):  # a record is its size, no more
        npyio.check_at(tmp_path / "pack", 0, 153)


def test_packs_read_many_records_of_one_open_file(tmp_path):
    """npyio.Packs reads a store's records through one open file each: small records come
    whole with their header, a large one (past the header's read) is read into its array; a
    file cut short after it was checked is refused, not read as a shorter array."""
    from parity import npyio

    arrays = [np.arange(5, dtype=np.float32), np.ones((300, 300)), np.asfortranarray(np.eye(40, 30)),
              np.zeros((0, 3), np.int8)]
    fd = os.open(tmp_path / "pack", os.O_WRONLY | os.O_CREAT)
    try:
        sizes = [npyio.append(fd, a) for a in arrays]
    finally:
        os.close(fd)
    offsets = np.cumsum([0] + sizes[:-1]).tolist()
    with npyio.Packs() as packs:
        for a, offset, size in zip(arrays, offsets, sizes):
            assert packs.check(tmp_path / "pack", offset, size).shape == a.shape
            back = packs.load(tmp_path / "pack", offset, size)
            assert back.dtype == a.dtype and back.shape == a.shape and np.array_equal(back, a)
            assert back.flags.f_contiguous == a.flags.f_contiguous and back.flags.writeable
        assert len(packs._fds) == 1  # one open file for all of them
        assert packs.read(tmp_path / "pack", offsets[1], 6) == b"\x93NUMPY"
        os.truncate(tmp_path / "pack", offsets[1] + sizes[1] // 2)  # cut inside the large record
        with pytest.raises(npyio.NpyError, match="truncated while reading"):
            packs.load(tmp_path / "pack", offsets[1], sizes[1])
    assert not packs._fds  # closed at the end of the with
    with pytest.raises(npyio.NpyError, match="unreadable"):
        npyio.Packs().load(tmp_path / "missing", 0, 10)


def test_npy_bytes_that_do_not_match_their_header_are_refused():
    from parity import npyio

    data = npyio.to_bytes(np.ones((2, 3), np.float32))
    for bad, said in ((data[:-1], "truncated: the header declares 6 elements"), (data + b"x", "1 bytes after the data"),
                      (b"junk" * 4, "no NumPy magic"), (data[:9], "truncated header")):
        with pytest.raises(npyio.NpyError, match=said):
            npyio.from_bytes(bad)


def _feed_runs(monkeypatch, modes, timeout=None):
    """Runs of the test-only fault op on a real torch worker, one per mode, in one _Feed."""
    import parity
    from parity import runner

    monkeypatch.setenv("PARITY_TEST_OPS", "1")
    planner = runner.Planner(["torch"])
    runs = []
    for i, mode in enumerate(modes):
        case = parity.case("fault", inputs={"x": np.full(3, i, np.float32)}, native={"torch": {"mode": mode}},
                           name=f"feed/{i}-{mode}", frameworks=["torch"], **({"timeout": timeout} if timeout else {}))
        runs += planner.runs(case)
    return runs


def test_queued_runs_behind_a_crash_or_a_hang_are_sent_again_to_a_fresh_worker(monkeypatch):
    """A worker holds several requests at once; the oldest unanswered one is the one it was
    making when it died or hung, and only that run fails: the runs queued behind it are sent
    again, in order, to a new worker, and each gets its own answer."""
    from parity import inputs, runner

    runs = _feed_runs(monkeypatch, ["ok", "abort", "ok", "ok", "hang", "ok"], timeout=3)
    worker = runner.Worker("torch", "cpu", None, None, 120)
    got = []
    feed = runner._Feed(worker, 300, lambda i, r: got.append((i, r)))
    try:
        for i, run in enumerate(runs):
            arrays = {k: s.materialize() for k, s in run.case.inputs.items()}
            feed.submit(i, run, lambda a=arrays: (a, inputs.digest(a)))
        assert len(feed.flight) > 1  # queued: sent before the answers before them were read
        feed.drain()
    finally:
        worker.stop()
    assert [i for i, _ in got] == list(range(6))
    assert [r.status for _, r in got] == [runner.OK, runner.CRASH, runner.OK, runner.OK, runner.TIMEOUT, runner.OK]
    assert "SIGABRT" in got[1][1].message
    assert got[4][1].message == "no answer after 3 s; the worker was killed"
    # its 3 s counted from when the worker could begin it, not from when it was sent
    assert 3 <= got[4][1].seconds < 10
    for (i, r) in got:
        if r.status == runner.OK:
            np.testing.assert_array_equal(r.outputs["y"], np.full(3, 2 * i, np.float32))
    pids = [r.worker["pid"] for _, r in got]
    assert pids[0] == pids[1] != pids[2] == pids[3] == pids[4] != pids[5] and worker.starts == 3


def test_a_worker_that_answers_another_run_than_the_next_is_a_crash():
    """Answers come in the order of the requests; one for another run would be taken for the
    wrong case: the worker is killed and the run is a CRASH that says so."""
    import parity
    from parity import runner

    msg = protocol.pack({"status": "OK", "id": "some/other::torch@cpu[]/float32"})
    w = _fake_worker(f"import sys, time; sys.stdin.buffer.read(1); sys.stdout.buffer.write({msg!r}); "
                     "sys.stdout.flush(); time.sleep(60)")
    w.hello = {"status": "OK"}
    case = parity.case("lrn", inputs={"x": np.ones((1, 2, 2, 2), np.float32)}, params={"size": 3}, name="feed/x",
                       frameworks=["torch"])
    run = runner.Planner(["torch"]).runs(case)[0]
    got = []
    feed = runner._Feed(w, 30, lambda i, r: got.append(r))
    try:
        feed.submit(0, run, lambda: ({"x": np.ones((1, 2, 2, 2), np.float32)}, None))
        feed.drain()
    finally:
        w.stop()
    assert [r.status for r in got] == [runner.CRASH]
    assert "answered run 'some/other::torch@cpu[]/float32' when 'feed/x::torch@cpu[]/float32' was next" \
        in got[0].message
    assert w.proc.poll() is not None

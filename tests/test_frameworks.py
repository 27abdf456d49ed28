"""Facts about the installed frameworks that the adapters depend on (real imports, subprocesses)."""

from __future__ import annotations

import subprocess
import sys

from conftest import ROOT, run_cli, write_case

PROBE = """
import numpy as np, mindspore as ms
try:
    ms.ops.reshape(ms.Tensor(np.zeros(2, np.float32)), (2, 1))
    print("first: ok")
except SystemError as exc:
    print("first: SystemError")
print("second:", ms.ops.reshape(ms.Tensor(np.zeros(2, np.float32)), (2, 1)).shape)
"""


def test_mindspore_first_tuple_op_fails_under_numpy_2():
    """mindspore 2.10 is built against NumPy 1.x: under NumPy 2 its first tuple-argument op
    raises SystemError and the next works. The mindspore adapter makes that first call
    itself. If this test fails, mindspore fixed it: drop the warm-up in
    parity/frameworks/mindspore.py."""
    p = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=300,
                       env={"GLOG_v": "3", "PATH": "/usr/bin:/bin"})
    assert "first: SystemError" in p.stdout, p.stdout + p.stderr[-2000:]
    assert "second: (2, 1)" in p.stdout


def test_worker_records_the_warm_up_and_environment(tmp_path):
    write_case(tmp_path, "c", """
        op: layer_norm
        params: {normalized_shape: [4]}
        inputs: {x: {shape: [2, 4], dtype: float32}}
    """)
    r = run_cli("run", tmp_path, report_dir=tmp_path / "r")
    assert r.code == 0, r.stdout + r.stderr
    runs = {run["framework"]: run for run in r.json["cases"][0]["runs"]}
    assert runs["mindspore"]["worker"]["info"]["numpy_abi_warmup"].startswith("first tuple-argument op raised")
    assert runs["torch"]["worker"]["info"]["threads"] >= 1
    assert runs["tensorflow"]["worker"]["info"]["keras_backend"] == "tensorflow"
    for run in runs.values():
        assert run["worker"]["python"].startswith("3.") and run["worker"]["numpy"].startswith("2.")


def test_a_worker_lets_idle_openmp_threads_sleep_unless_told_otherwise(monkeypatch):
    """Each worker starts with OMP_WAIT_POLICY=PASSIVE (a worker is idle between requests most
    of the time, and its spinning OpenMP threads took the other workers' CPU); the user's own
    setting, or one given with --env, wins. Read from the live worker process."""
    from pathlib import Path

    from parity import runner

    def policy(**kw):
        w = runner.Worker("torch", "cpu", None, None, 120, **kw)
        assert w.start()["status"] == "OK"
        try:
            environ = Path(f"/proc/{w.proc.pid}/environ").read_bytes().split(b"\0")
        finally:
            w.stop()
        return [v.split(b"=", 1)[1].decode() for v in environ if v.startswith(b"OMP_WAIT_POLICY=")]

    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    assert policy() == ["PASSIVE"]
    assert policy(env={"OMP_WAIT_POLICY": "ACTIVE"}) == ["ACTIVE"]
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    assert policy() == ["ACTIVE"]


REUSE_PROBE = """
import json
import numpy as np
from parity.frameworks.mindspore import Adapter
from parity.ops import lrn
fw = Adapter("cpu")
x = np.random.default_rng(0).standard_normal((2, 7, 3, 3)).astype(np.float32)
p = dict(depth_radius=2, bias=1.5, alpha=1e-4, beta=0.75)
fresh = fw.lib.nn.LRN(**lrn._mindspore_args(p))(fw.tensor(x)).asnumpy()
a = lrn._mindspore_nn(fw, {"x": x}, p)["y"]
b = lrn._mindspore_nn(fw, {"x": x}, p)["y"]
o = lrn._mindspore_ops(fw, {"x": x}, p)["y"]
one = len(fw._made)
lrn._mindspore_nn(fw, {"x": x}, {**p, "depth_radius": 1})
keys = [fw.stateless("t", {"v": v}, object) for v in (0.0, -0.0, 1, 1.0, True)]
out = {"same": bool((a.view(np.uint32) == fresh.view(np.uint32)).all() and (b.view(np.uint32) == a.view(np.uint32)).all()
                   and (o.view(np.uint32) == a.view(np.uint32)).all()),
       "one": one, "two": len(fw._made) - 5, "distinct": len({id(k) for k in keys}),
       "again": fw.stateless("t", {"v": 0.0}, object) is keys[0]}
fw.recover()
out["after_recover"] = len(fw._made)
print(json.dumps(out))
"""


def test_mindspore_lrn_cells_are_made_once_per_parameter_set_and_give_the_same_bits():
    """The mindspore worker reuses one nn.LRN (and ops.LRN) per parameter set (Adapter.stateless;
    LRN has no parameters): the outputs are a new cell's, bit for bit; parameters that differ,
    in value or type (0.0 and -0.0, 1 and 1.0 and True), make another; a failed call
    (recover) forgets them all."""
    import json

    p = subprocess.run([sys.executable, "-c", REUSE_PROBE], check=False, capture_output=True, text=True, timeout=300,
                       env={"GLOG_v": "3", "PATH": "/usr/bin:/bin"}, cwd=str(ROOT))
    assert p.returncode == 0, p.stderr[-3000:]
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert out == {"same": True, "one": 2, "two": 3, "distinct": 5, "again": True, "after_recover": 0}

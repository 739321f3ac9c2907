"""Optional pytest entry to the GPU suite: one test per workload, the same
runs and checks as run_suite.py (one rgpu-server for the whole module).

    python3 -m pytest tests/gpu/test_gpu_suite.py -v
    GPU_SUITE_ARGS="--only 'train_*' --rgpu-build build-lead" python3 -m pytest tests/gpu -v

GPU_SUITE_ARGS takes run_suite.py's options. Skipped where `nvidia-smi -L`
fails (no GPU) unless GPU_SUITE_ARGS has --fake. run_suite.py itself needs
no pytest.
"""
import os
import shlex
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run_suite  # noqa: E402

ARGS = run_suite.parse_args(shlex.split(os.environ.get("GPU_SUITE_ARGS", "")))


def _have_gpu():
    try:
        return subprocess.run(["nvidia-smi", "-L"], capture_output=True,
                              timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


pytestmark = pytest.mark.skipif(not ARGS.fake and not _have_gpu(), reason="no GPU here")
WORKLOADS = run_suite.discover(ARGS.workloads_dir, ARGS.only, ARGS.skip)


@pytest.fixture(scope="module")
def suite():
    s = run_suite.Suite(ARGS)
    try:
        s.start()
        yield s
    finally:
        s.stop()
        if s.records:
            print("\n" + "\n".join(s.report()[0]))


@pytest.mark.parametrize("workload", WORKLOADS, ids=[w.name for w in WORKLOADS])
def test_workload(suite, workload):
    rec = suite.run_workload(workload)
    v = rec["verdict"]
    assert v["passed"], "%s\n%s" % (v["reason"], "\n".join(v["diffs"][:10]))

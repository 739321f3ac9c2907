# compare: exact
# env: SELFTEST_EMPTY=
# env: SELFTEST_SPACES=a b=c
"""Header env lines reach both runs; the runner's own settings are present."""
import json, os, sys
e = os.environ
checks = {
    "empty": e.get("SELFTEST_EMPTY"),
    "spaces": e.get("SELFTEST_SPACES"),
    "cvd": e.get("CUDA_VISIBLE_DEVICES"),
    "cublas": e.get("CUBLAS_WORKSPACE_CONFIG"),
    "nobytecode": e.get("PYTHONDONTWRITEBYTECODE"),
    "triton_cache_fresh": os.path.isdir(e["TRITON_CACHE_DIR"]) is False and "TRITON_CACHE_DIR" in e,
    "cwd_is_script_dir": os.getcwd() == os.path.dirname(os.path.abspath(__file__)),
    "no_out": "OUT" not in e,
    "rgpu_log": e.get("RGPU_LOG"),
}
want = {"empty": "", "spaces": "a b=c", "cvd": "0", "cublas": ":4096:8", "nobytecode": "1",
        "triton_cache_fresh": True, "cwd_is_script_dir": True, "no_out": True, "rgpu_log": "warn"}
if checks != want:
    print("env check failed: %r" % checks, file=sys.stderr)
    sys.exit(1)
print("RESULT " + json.dumps(dict(checks, time_s=0.1)))

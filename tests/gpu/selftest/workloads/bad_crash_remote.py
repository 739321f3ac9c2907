# compare: exact
"""Remote raises before printing a result: fails with the error's last line."""
import json, os
if os.environ["GPU_SUITE_SIDE"] == "remote":
    raise RuntimeError("CUDA error: simulated remote failure")
print("RESULT " + json.dumps({"v": 1, "time_s": 0.1}))

# compare: exact
"""Remote maps a real libnvidia-ml but only libcuda is required: a note, still passes."""
import json, os
libs = {"libcuda": [], "libnvidia-ml": []}
if os.environ["GPU_SUITE_SIDE"] == "remote":
    libs["libnvidia-ml"] = ["/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.580.1"]
print("RESULT " + json.dumps({"v": 1, "_libs": libs, "time_s": 0.1}))

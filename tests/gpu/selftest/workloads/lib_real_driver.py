# compare: exact
# require-rgpu: libcuda
"""Remote maps the real libcuda: fails when library paths are checked (not under --fake)."""
import json, os
libs = {"libcuda": [], "libnvidia-ml": []}
if os.environ["GPU_SUITE_SIDE"] == "remote":
    libs["libcuda"] = ["/usr/lib/x86_64-linux-gnu/libcuda.so.580.1"]
print("RESULT " + json.dumps({"v": 1, "_libs": libs, "time_s": 0.1}))

# compare: exact
"""Remote prints the same result but exits 3: fails on the exit status."""
import json, os, sys
print("RESULT " + json.dumps({"v": 1, "time_s": 0.1}), flush=True)
if os.environ["GPU_SUITE_SIDE"] == "remote":
    sys.exit(3)

# compare: exact
"""A last-bit difference in the remote loss: fails under exact."""
import json, os
remote = os.environ["GPU_SUITE_SIDE"] == "remote"
print("RESULT " + json.dumps({"losses": [1.0, 0.5000000000000001 if remote else 0.5], "time_s": 0.3}))

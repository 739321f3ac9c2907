# compare: rtol=1e-3 atol=1e-9
"""Remote floats differ by 1e-5 relative and sha keys differ: passes under rtol."""
import json, os
remote = os.environ["GPU_SUITE_SIDE"] == "remote"
f = 1 + 1e-5 if remote else 1.0
print("RESULT " + json.dumps({"loss": [3.0 * f, 0.5 * f], "d": {"sum": 10.0 * f, "sha": "b" if remote else "a"},
                              "count": 7, "time_s": 0.2}))

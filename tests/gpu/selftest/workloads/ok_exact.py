# compare: exact
"""Same result on both sides: passes."""
import json
print("some noise", flush=True)
print("RESULT " + json.dumps({"losses": [2.5, 1.25, float("nan")], "n": 3, "ok": True,
                              "name": "x", "_info": __import__("os").environ["GPU_SUITE_SIDE"],
                              "time_s": 0.5 if __import__("os").environ["GPU_SUITE_SIDE"] == "local" else 1.0}))

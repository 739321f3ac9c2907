# compare: exact
"""Remote hangs with a child process: the runner's timeout kills the whole group."""
import json, os, subprocess, sys, time
if os.environ["GPU_SUITE_SIDE"] == "remote":
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    with open(os.path.join(os.environ["SELFTEST_DIR"], "hang_child.pid"), "w") as f:
        f.write(str(child.pid))
    time.sleep(300)
print("RESULT " + json.dumps({"v": 1, "time_s": 0.1}))

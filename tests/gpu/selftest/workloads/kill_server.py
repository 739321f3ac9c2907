# compare: exact
"""Remote kills the (fake) rgpu-server: that workload fails, the runner restarts
the server, and later workloads still pass. Under --fake there is no server."""
import json, os, signal
pidfile = os.path.join(os.environ["SELFTEST_DIR"], "server.pid")
if os.environ["GPU_SUITE_SIDE"] == "remote" and "RGPU_SERVER" in os.environ \
        and os.path.exists(pidfile):
    with open(pidfile) as f:
        pid = int(f.read())
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        if b"rgpu-server" in f.read():
            os.kill(pid, signal.SIGKILL)
print("RESULT " + json.dumps({"v": 1, "time_s": 0.1}))

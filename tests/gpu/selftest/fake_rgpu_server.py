#!/usr/bin/env python3
"""Fake rgpu-server for the runner's self-test: logs its arguments, listens,
accepts and closes connections, exits on SIGTERM."""
import os, signal, socket, sys
argv = sys.argv[1:]
listen = argv[argv.index("--listen") + 1]
host, port = listen.rsplit(":", 1)
print("fake rgpu-server args: %s RGPU_LOG=%s CUDA_VISIBLE_DEVICES=%s"
      % (" ".join(argv), os.environ.get("RGPU_LOG"), os.environ.get("CUDA_VISIBLE_DEVICES")),
      flush=True)
with open(os.path.join(os.environ["SELFTEST_DIR"], "server.pid"), "w") as f:
    f.write(str(os.getpid()))
def stop(signum, frame):
    print("fake rgpu-server: stopping on signal %d" % signum, flush=True)
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((host, int(port)))
s.listen(16)
while True:
    c, _ = s.accept()
    c.close()

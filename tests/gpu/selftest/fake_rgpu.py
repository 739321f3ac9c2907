#!/usr/bin/env python3
"""Fake `rgpu` for the runner's self-test: `rgpu --version`, `rgpu run -- CMD`.
run checks that RGPU_SERVER names a listening port, then execs CMD."""
import os, socket, sys
args = sys.argv[1:]
if args == ["--version"]:
    print("rgpu 0.0.0-fake (protocol 0)")
    sys.exit(0)
if not args or args[0] != "run" or "--" not in args:
    sys.exit("fake rgpu: usage: rgpu run -- CMD")
cmd = args[args.index("--") + 1:]
host, port = os.environ["RGPU_SERVER"].rsplit(":", 1)
try:
    socket.create_connection((host, int(port)), timeout=2).close()
except OSError as e:
    sys.exit("fake rgpu: server %s: %s" % (os.environ["RGPU_SERVER"], e))
lib = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib")
os.environ["LD_LIBRARY_PATH"] = lib + ":" + os.environ.get("LD_LIBRARY_PATH", "")
os.environ["TRITON_LIBCUDA_PATH"] = lib
os.execvp(cmd[0], cmd)

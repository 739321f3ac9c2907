#!/usr/bin/env python3
"""Runs every PyTorch workload in tests/gpu/workloads/ on the local GPU and
through rgpu, and compares the two.

    tests/gpu/run.sh [--rgpu-build DIR] [--port P] [--only NAME[,NAME]] [--skip NAME]
                     [--skip-local] [--timeout S] [--deadline S] [--python PY]
                     [--visible-devices V] [--server-arg A] [--list] [--fake]

It starts DIR/bin/rgpu-server --listen 127.0.0.1:PORT --backend cuda (RGPU_LOG=warn,
output to a log file), waits for the port, then for each workload runs
`python3 workload.py` (local) and `DIR/bin/rgpu run -- python3 workload.py`
(remote, RGPU_SERVER=127.0.0.1:PORT), each in its own process group with a
time limit. Each workload prints one final line `RESULT <json>`; the two results
are compared as the workload's header says:

    # compare: exact                  every value identical
    # compare: rtol=1e-3 [atol=1e-6]  floats within atol + rtol*|local|; keys sha* skipped
    # env: NAME=VALUE                 set for both runs (repeatable; VALUE may be empty)
    # timeout: S                      this workload's limit, when above --timeout
    # require-rgpu: libcuda libnvidia-ml
                                      libraries that the remote run must have loaded
                                      from rgpu's lib dir, never the real driver's
                                      (default: libcuda)

Keys `time_s` and `_*` are never compared. A workload passes when both runs
printed a result, exited with the same status, loaded the right libraries,
and the results are equal. The table shows time ratio = remote time_s /
local time_s (each workload times its own steady-state part).

Full outputs (every run's stdout/stderr, the server log, a JSON of results)
go to $OUT when set, else to a fresh /tmp/rgpu-gpu-suite-* directory.
The last line printed is `N passed, N failed`; the exit status is 1 when any
failed, 2 when the suite could not run at all.

--fake runs without rgpu: no server, and the "remote" run is plain python3
too (with GPU_SUITE_SIDE=remote); used by selftest/selftest.py to test this
script on a machine without a GPU.
"""
import argparse
import fnmatch
import json
import math
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
DEFAULT_WORKLOADS = os.path.join(HERE, "workloads")
LOG_CAP = 2 << 20  # bytes of each stream kept in the combined log
CELL = 60  # width of the local/remote cells in the table
DEADLINE_RESERVE = 15.0  # seconds kept back from --deadline for stopping and reporting


# ----------------------------------------------------------------- workloads

class Workload:
    def __init__(self, name, path, compare, env, timeout, require):
        self.name = name
        self.path = path
        self.compare = compare  # {"mode": "exact"} or {"mode": "rtol", "rtol": x, "atol": y}
        self.env = env  # dict
        self.timeout = timeout  # seconds or None
        self.require = require  # set of library keys


def parse_compare(text):
    """'exact' or 'rtol=X [atol=Y]' -> dict; ValueError when malformed."""
    words = text.split()
    if words == ["exact"]:
        return {"mode": "exact"}
    cfg = {"mode": "rtol", "rtol": None, "atol": 0.0}
    for w in words:
        key, sep, val = w.partition("=")
        if not sep or key not in ("rtol", "atol"):
            raise ValueError("bad compare word %r (want: exact | rtol=X [atol=Y])" % w)
        cfg[key] = float(val)
        if not cfg[key] >= 0:
            raise ValueError("%s must be >= 0" % key)
    if cfg["rtol"] is None:
        raise ValueError("compare: rtol=X needed (or exact)")
    return cfg


def parse_workload(path):
    """Reads the leading `# key: value` comment lines of a workload script."""
    name = os.path.splitext(os.path.basename(path))[0]
    compare, env, timeout, require = None, {}, None, {"libcuda"}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.startswith("#"):
                break
            body = line[1:].strip()
            key, sep, val = body.partition(":")
            if not sep:
                continue
            key, val = key.strip(), val.strip()
            if key == "compare":
                compare = parse_compare(val)
            elif key == "env":
                var, eq, value = val.partition("=")
                if not eq or not var.strip():
                    raise ValueError("%s: bad env line %r (want NAME=VALUE)" % (name, line))
                env[var.strip()] = value
            elif key == "timeout":
                timeout = float(val)
            elif key == "require-rgpu":
                require = set(val.replace(",", " ").split())
    if compare is None:
        raise ValueError("%s: no `# compare:` line at the top" % name)
    return Workload(name, path, compare, env, timeout, require)


def _patterns(specs):
    return [p.strip()[:-3] if p.strip().endswith(".py") else p.strip()
            for spec in specs for p in spec.split(",") if p.strip()]


def discover(directory, only=None, skip=None):
    directory = os.path.abspath(directory)
    names = sorted(f for f in os.listdir(directory)
                   if f.endswith(".py") and not f.startswith(("_", ".")))
    workloads = [parse_workload(os.path.join(directory, f)) for f in names]
    if only:
        pats = _patterns(only)
        workloads = [w for w in workloads if any(fnmatch.fnmatchcase(w.name, p) for p in pats)]
        if not workloads:
            raise ValueError("--only %s matches no workload in %s" % (",".join(pats), directory))
    if skip:
        pats = _patterns(skip)
        workloads = [w for w in workloads
                     if not any(fnmatch.fnmatchcase(w.name, p) for p in pats)]
    return workloads


# ------------------------------------------------------------------ results

def parse_result(stdout):
    """The dict of the last `RESULT <json>` line, or (None, why)."""
    for line in reversed(stdout.splitlines()):
        if line.startswith("RESULT "):
            try:
                value = json.loads(line[len("RESULT "):])
            except ValueError as e:
                return None, "bad RESULT json: %s" % e
            if not isinstance(value, dict):
                return None, "RESULT is not an object"
            return value, None
    return None, "no RESULT line"


def _is_num(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _short(x, n=40):
    s = json.dumps(x) if not isinstance(x, str) else repr(x)
    return s if len(s) <= n else s[: n - 3] + "..."


def compare_results(local, remote, cfg):
    """(equal, diffs, max_rel). diffs: up to 20 'path: a != b' strings."""
    diffs = []
    stats = {"max_rel": 0.0}
    rtol_mode = cfg["mode"] == "rtol"

    def skip(key):
        return key.startswith("_") or (rtol_mode and key.startswith("sha"))

    def walk(a, b, path):
        if isinstance(a, dict) and isinstance(b, dict):
            for k in sorted(set(a) | set(b)):
                if skip(k) or (path == "" and k == "time_s"):
                    continue
                p = "%s.%s" % (path, k) if path else k
                if k not in a or k not in b:
                    diffs.append("%s: only in %s" % (p, "local" if k in a else "remote"))
                    continue
                walk(a[k], b[k], p)
        elif isinstance(a, list) and isinstance(b, list):
            if len(a) != len(b):
                diffs.append("%s: length %d != %d" % (path, len(a), len(b)))
            for i, (x, y) in enumerate(zip(a, b)):
                walk(x, y, "%s[%d]" % (path, i))
        elif _is_num(a) and _is_num(b) and (isinstance(a, float) or isinstance(b, float)):
            a, b = float(a), float(b)
            if math.isnan(a) or math.isnan(b):
                if not (math.isnan(a) and math.isnan(b)):
                    diffs.append("%s: %r != %r" % (path, a, b))
                return
            if a == b:
                return
            if math.isinf(a) or math.isinf(b):
                diffs.append("%s: %r != %r" % (path, a, b))
                return
            rel = abs(a - b) / max(abs(a), abs(b), 1e-300)
            stats["max_rel"] = max(stats["max_rel"], rel)
            if not rtol_mode or abs(a - b) > cfg["atol"] + cfg["rtol"] * abs(a):
                diffs.append("%s: %r != %r (rel %.2g)" % (path, a, b, rel))
        elif type(a) is not type(b) or a != b:
            diffs.append("%s: %s != %s" % (path, _short(a), _short(b)))

    walk(local, remote, "")
    return not diffs, diffs[:20] + (["... %d more" % (len(diffs) - 20)] if len(diffs) > 20 else []), \
        stats["max_rel"]


def rgpu_lib_files(rgpu_lib):
    """Real paths of the files in rgpu's lib dir (they may be links to elsewhere)."""
    try:
        return {os.path.realpath(os.path.join(rgpu_lib, f)) for f in os.listdir(rgpu_lib)}
    except OSError:
        return set()


def check_libs(result, rgpu_lib, side, require, ours_files=()):
    """Problems with where libcuda/libnvidia-ml came from; (errors, notes)."""
    errors, notes = [], []
    libs = (result or {}).get("_libs") or {}
    prefix = rgpu_lib.rstrip("/") + "/"
    for key, paths in sorted(libs.items()):
        for p in paths:
            ours = p.startswith(prefix) or p in ours_files
            if side == "local" and ours:
                errors.append("local run loaded rgpu's %s (%s)" % (key, p))
            elif side == "remote" and not ours:
                msg = "remote run loaded the real %s (%s), not rgpu's" % (key, p)
                (errors if key in require else notes).append(msg)
    return errors, notes


def error_line(run):
    """A one-line reason for a run without a usable result."""
    if run.get("skipped"):
        return "skipped"
    if run.get("timed_out"):
        return "TIMEOUT after %.0fs" % run["limit_s"]
    if run.get("launch_error"):
        return run["launch_error"]
    for stream in ("stderr", "stdout"):
        lines = [l.strip() for l in run.get(stream, "").splitlines() if l.strip()]
        if lines:
            return "%s (rc=%s)" % (lines[-1], run["rc"])
    return "rc=%s, no output (%s)" % (run["rc"], run.get("parse_error"))


def cell(run):
    if run.get("skipped"):
        return "skipped"
    if run.get("result") is None:
        return "FAIL: " + error_line(run)
    t = run["result"].get("time_s")
    s = "ok %.3fs" % t if _is_num(t) else "ok"
    if run["rc"] != 0:
        s += " rc=%s" % run["rc"]
    return s


def judge(w, local, remote, rgpu_lib, check_lib_paths, skip_local):
    """Fills in the verdict: passed, reason, equal, diffs, max_rel, notes."""
    v = {"passed": False, "reason": "", "equal": None, "diffs": [], "max_rel": None, "notes": []}
    lr, rr = local.get("result"), remote.get("result")
    errors = []
    if check_lib_paths:
        ours = rgpu_lib_files(rgpu_lib)
        if lr is not None:
            e, n = check_libs(lr, rgpu_lib, "local", w.require, ours)
            errors += e
            v["notes"] += n
        if rr is not None:
            e, n = check_libs(rr, rgpu_lib, "remote", w.require, ours)
            errors += e
            v["notes"] += n
    if not skip_local and lr is not None and rr is not None:
        eq, diffs, max_rel = compare_results(lr, rr, w.compare)
        v.update(equal=eq, diffs=diffs, max_rel=max_rel)
    if not skip_local and lr is None:
        v["reason"] = "local: " + error_line(local)
    elif rr is None:
        v["reason"] = "remote: " + error_line(remote)
    elif errors:
        v["reason"] = errors[0]
    elif skip_local:
        v["passed"] = remote["rc"] == 0
        v["reason"] = "" if v["passed"] else "remote exited with %s" % remote["rc"]
    elif local["rc"] != remote["rc"]:
        v["reason"] = "exit status local %s, remote %s" % (local["rc"], remote["rc"])
    elif not v["equal"]:
        v["reason"] = "differs: " + v["diffs"][0]
    else:
        v["passed"] = True
    return v


def equal_cell(v, local, remote, skip_local):
    if skip_local or v["equal"] is None:
        return "-"
    if not v["equal"]:
        return "NO"
    if local["rc"] != remote["rc"]:
        return "NO (exit %s vs %s)" % (local["rc"], remote["rc"])
    if not v["passed"]:
        return "yes, but see below"
    tag = "yes"
    if v["max_rel"]:
        tag += " (rel %.1g)" % v["max_rel"]
    return tag


def ratio_cell(local, remote):
    lt = (local.get("result") or {}).get("time_s")
    rt = (remote.get("result") or {}).get("time_s")
    if _is_num(lt) and _is_num(rt) and lt > 0:
        return "%.2fx" % (rt / lt)
    return "-"


def _fit(s, n):
    s = " ".join(str(s).split())
    return s if len(s) <= n else s[: n - 1] + "~"


def format_table(rows):
    """rows: list of (name, local, remote, equal, ratio)."""
    head = ("workload", "local", "remote", "equal", "time ratio")
    rows = [tuple(_fit(c, CELL if i in (1, 2) else 60) for i, c in enumerate(r)) for r in rows]
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(5)]
    fmt = " | ".join("%%-%ds" % wd for wd in widths)
    out = [fmt % head, "-+-".join("-" * wd for wd in widths)]
    out += [fmt % r for r in rows]
    return [l.rstrip() for l in out]


# ---------------------------------------------------------------- processes

_live_groups = set()  # process groups of running children, killed on the way out


def _kill_group(pgid, sig=signal.SIGKILL):
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def run_process(cmd, env, timeout, cwd):
    """Runs cmd in its own process group; kills the group on timeout and after
    the leader exits (leftover children). Returns a dict with rc, timed_out,
    wall_s, stdout, stderr."""
    res = {"cmd": cmd, "limit_s": timeout, "timed_out": False, "rc": None,
           "stdout": "", "stderr": ""}
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.monotonic()
        try:
            p = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                 env=env, cwd=cwd, start_new_session=True)
        except OSError as e:
            res["launch_error"] = "cannot start %s: %s" % (cmd[0], e)
            res["wall_s"] = 0.0
            return res
        _live_groups.add(p.pid)
        try:
            res["rc"] = p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            res["timed_out"] = True
            _kill_group(p.pid)
            res["rc"] = p.wait()
        finally:
            _kill_group(p.pid)  # whatever it left behind (dataloader workers, ...)
            _live_groups.discard(p.pid)
        res["wall_s"] = time.monotonic() - t0
        for name, f in (("stdout", out), ("stderr", err)):
            f.seek(0)
            res[name] = f.read().decode("utf-8", errors="replace")
    return res


def port_open(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """rgpu-server in its own process group, output appended to log_path."""

    def __init__(self, binary, port, log_path, env, backend="cuda", wait_s=30.0, extra=()):
        self.binary, self.port, self.log_path, self.env, self.wait_s = \
            binary, port, log_path, env, wait_s
        self.proc = None
        self.cmd = [binary, "--listen", "127.0.0.1:%d" % port, "--backend", backend] + list(extra)

    def start(self):
        if port_open(self.port):
            raise RuntimeError("127.0.0.1:%d already accepts connections; stop that server "
                               "or pass another --port" % self.port)
        with open(self.log_path, "ab") as log:
            log.write(("\n==== %s  %s\n" % (time.strftime("%H:%M:%S"),
                                            " ".join(map(shlex.quote, self.cmd)))).encode())
            log.flush()
            self.proc = subprocess.Popen(self.cmd, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env=self.env,
                                         start_new_session=True)
        deadline = time.monotonic() + self.wait_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("rgpu-server exited with %s before listening:\n%s"
                                   % (self.proc.returncode, self.log_tail()))
            if port_open(self.port):
                return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("rgpu-server did not listen on port %d within %.0fs:\n%s"
                           % (self.port, self.wait_s, self.log_tail()))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(timeout=10)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                pass
        _kill_group(self.proc.pid)  # the supervisor if still there, workers in its group
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        self.proc = None

    def log_tail(self, n=30):
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""


# -------------------------------------------------------------------- suite

class Suite:
    def __init__(self, args):
        self.args = args
        self.build = os.path.realpath(args.rgpu_build)
        self.rgpu_bin = os.path.join(self.build, "bin", "rgpu")
        self.server_bin = os.path.join(self.build, "bin", "rgpu-server")
        self.rgpu_lib = os.path.realpath(os.path.join(self.build, "lib"))
        self.port = args.port or free_port()
        out = os.environ.get("OUT")
        if out:
            os.makedirs(out, exist_ok=True)
            self.out_dir = out
        else:
            self.out_dir = tempfile.mkdtemp(prefix="rgpu-gpu-suite-", dir="/tmp")
        self.log_path = os.path.join(self.out_dir, "gpu_suite.log")
        self.server_log = os.path.join(self.out_dir, "rgpu-server.log")
        self.json_path = os.path.join(self.out_dir, "gpu_suite_results.json")
        self.scratch = tempfile.mkdtemp(prefix="rgpu-gpu-suite-scratch-")
        self.server = None
        self.records = []
        self.t0 = time.monotonic()
        self.deadline = self.t0 + args.deadline if args.deadline else None
        self.meta = {"args": vars(args), "port": self.port, "build": self.build,
                     "started": time.strftime("%Y-%m-%d %H:%M:%S")}
        open(self.log_path, "w").close()

    # -- setup

    def check_build(self):
        if self.args.fake:
            return
        missing = [p for p in (self.rgpu_bin, self.server_bin,
                               os.path.join(self.rgpu_lib, "libcuda.so.1"))
                   if not os.path.exists(p)]
        if missing:
            raise RuntimeError("rgpu build incomplete (run make build): missing "
                               + ", ".join(missing))

    def base_env(self):
        env = dict(os.environ)
        for k in list(env):
            if k.startswith("RGPU_") or k in ("TRITON_LIBCUDA_PATH", "OUT"):
                del env[k]
        ld = [p for p in env.get("LD_LIBRARY_PATH", "").split(":")
              if p and os.path.realpath(p) != self.rgpu_lib]
        if ld:
            env["LD_LIBRARY_PATH"] = ":".join(ld)
        else:
            env.pop("LD_LIBRARY_PATH", None)
        env.update(PYTHONUNBUFFERED="1", PYTHONDONTWRITEBYTECODE="1", PYTHONHASHSEED="0",
                   CUBLAS_WORKSPACE_CONFIG=":4096:8", RGPU_LOG=self.args.log_level)
        if self.args.visible_devices != "inherit":
            env["CUDA_VISIBLE_DEVICES"] = self.args.visible_devices
        return env

    def start(self):
        self.check_build()
        self.meta["versions"] = self.versions()
        if self.args.fake:
            return
        self.server = Server(self.server_bin, self.port, self.server_log, self.base_env(),
                             backend=self.args.backend, extra=self.args.server_arg)
        self.server.start()

    def stop(self):
        for pgid in list(_live_groups):
            _kill_group(pgid)
        if self.server:
            self.server.stop()
        shutil.rmtree(self.scratch, ignore_errors=True)
        self.write_json()

    def versions(self):
        v = {}
        cmds = {"nvidia-smi": ["nvidia-smi", "-L"]}
        if not self.args.fake:
            cmds["rgpu"] = [self.rgpu_bin, "--version"]
        for key, cmd in cmds.items():
            try:
                out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
                v[key] = (out.stdout + out.stderr).strip()
            except (OSError, subprocess.TimeoutExpired) as e:
                v[key] = "unavailable: %s" % e
        return v

    # -- running

    def run_side(self, w, side):
        env = self.base_env()
        env.update(w.env)
        env["GPU_SUITE_SIDE"] = side
        cache = tempfile.mkdtemp(prefix="%s-%s-" % (w.name, side), dir=self.scratch)
        env["TRITON_CACHE_DIR"] = os.path.join(cache, "triton")
        env["TORCHINDUCTOR_CACHE_DIR"] = os.path.join(cache, "inductor")
        cmd = [self.args.python, w.path]
        if side == "remote" and not self.args.fake:
            env["RGPU_SERVER"] = "127.0.0.1:%d" % self.port
            cmd = [self.rgpu_bin, "run", "--"] + cmd
        limit = max(self.args.timeout, w.timeout or 0)
        if self.deadline is not None:
            limit = max(5.0, min(limit, self.deadline - time.monotonic() - DEADLINE_RESERVE))
        run = run_process(cmd, env, limit, cwd=os.path.dirname(w.path))
        shutil.rmtree(cache, ignore_errors=True)
        run["result"], run["parse_error"] = parse_result(run["stdout"])
        run["env"] = {k: env[k] for k in sorted(set(w.env) | {"RGPU_SERVER"}) if k in env}
        self.log_run(w, side, run)
        return run

    def run_workload(self, w):
        skip_local = self.args.skip_local
        local = {"skipped": True, "rc": None} if skip_local else self.run_side(w, "local")
        if self.server and not self.server.alive():
            self.restart_server("before " + w.name)
        remote = self.run_side(w, "remote")
        server_note = None
        if self.server and not self.server.alive():
            server_note = "rgpu-server died (exit %s) during %s" % (
                self.server.proc.returncode, w.name)
            self.restart_server("after " + w.name)
        v = judge(w, local, remote, self.rgpu_lib, not self.args.fake, skip_local)
        if server_note:
            v["passed"] = False
            v["reason"] = server_note + ("; " + v["reason"] if v["reason"] else "")
        tails = {}
        for side, run in (("local", local), ("remote", remote)):
            if not run.get("skipped") and run.get("result") is None:
                lines = [l for l in run.get("stderr", "").splitlines() if l.strip()]
                tails[side] = lines[-5:-1]  # the last line is already in the reason
        rec = {"name": w.name, "compare": w.compare, "env": w.env, "verdict": v, "tails": tails,
               "local": self.summary(local), "remote": self.summary(remote),
               "row": (w.name, cell(local), cell(remote), equal_cell(v, local, remote, skip_local),
                       ratio_cell(local, remote))}
        self.records.append(rec)
        self.write_json()
        return rec

    def time_left(self):
        return None if self.deadline is None else self.deadline - time.monotonic()

    def skip_workload(self, w, reason):
        v = {"passed": False, "reason": reason, "equal": None, "diffs": [], "max_rel": None,
             "notes": []}
        rec = {"name": w.name, "compare": w.compare, "env": w.env, "verdict": v, "tails": {},
               "local": {"skipped": True}, "remote": {"skipped": True},
               "row": (w.name, "not run", "not run", "-", "-")}
        self.records.append(rec)
        self.write_json()
        return rec

    def restart_server(self, when):
        self.log("rgpu-server is not running (%s): restarting it" % when)
        self.server.stop()
        try:
            self.server.start()
            return
        except RuntimeError as e:
            self.log(str(e))
        # The old port may still be held (TIME_WAIT, a stuck worker): try a fresh one.
        self.port = free_port()
        self.server = Server(self.server_bin, self.port, self.server_log, self.base_env(),
                             backend=self.args.backend, extra=self.args.server_arg)
        self.log("restarting rgpu-server on port %d instead" % self.port)
        try:
            self.server.start()
        except RuntimeError as e:
            self.log(str(e))

    @staticmethod
    def summary(run):
        if run.get("skipped"):
            return {"skipped": True}
        return {"rc": run["rc"], "timed_out": run["timed_out"], "wall_s": round(run["wall_s"], 3),
                "result": run["result"], "error": None if run["result"] else error_line(run),
                "cmd": run["cmd"], "env": run.get("env")}

    # -- output

    def log(self, text):
        with open(self.log_path, "a", encoding="utf-8") as f:
            f.write(text.rstrip("\n") + "\n")

    def log_run(self, w, side, run):
        parts = ["", "=" * 100,
                 "==== %s [%s]  rc=%s%s  wall=%.1fs" % (w.name, side, run["rc"],
                                                       " TIMEOUT" if run["timed_out"] else "",
                                                       run.get("wall_s", 0.0)),
                 "==== env: %s" % " ".join("%s=%s" % kv for kv in run["env"].items()),
                 "==== cmd: %s" % " ".join(map(shlex.quote, run["cmd"]))]
        for name in ("stdout", "stderr"):
            text = run[name]
            if len(text) > LOG_CAP:
                text = "[... %d bytes cut ...]\n" % (len(text) - LOG_CAP) + text[-LOG_CAP:]
            parts += ["---- %s ----" % name, text.rstrip("\n")]
        self.log("\n".join(parts))

    def write_json(self):
        data = {"meta": self.meta, "workloads": [
            {k: v for k, v in r.items() if k not in ("row", "tails")} for r in self.records]}
        tmp = self.json_path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1, sort_keys=True, default=str)
        os.replace(tmp, self.json_path)

    def report(self):
        lines = format_table([r["row"] for r in self.records])
        failed = [r for r in self.records if not r["verdict"]["passed"]]
        notes = [(r["name"], n) for r in self.records for n in r["verdict"]["notes"]]
        if failed:
            lines += ["", "Failures:"]
            for r in failed:
                v = r["verdict"]
                lines.append("  %s: %s" % (r["name"], v["reason"]))
                for d in v["diffs"][1:6]:
                    lines.append("      %s" % d)
                for side, tail in sorted(r["tails"].items()):
                    for l in tail:
                        lines.append("      %s| %s" % (side, _fit(l, 150)))
                if v["max_rel"]:
                    lines.append("      (largest relative difference %.3g; compare %s)"
                                 % (v["max_rel"], r["compare"]))
        if notes:
            lines += ["", "Notes:"] + ["  %s: %s" % n for n in notes]
        lines += ["", "outputs: %s (all runs), %s, %s" % (self.log_path, self.json_path,
                                                        self.server_log if self.server else
                                                        "no server log (--fake)")]
        walls = {side: sum(r[side].get("wall_s", 0.0) for r in self.records)
                 for side in ("local", "remote")}
        lines.append("wall time: local runs %.0fs, remote runs %.0fs, suite %.0fs"
                     % (walls["local"], walls["remote"], time.monotonic() - self.t0))
        n_pass = len(self.records) - len(failed)
        lines.append("%d passed, %d failed" % (n_pass, len(failed)))
        return lines, not failed


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rgpu-build", default=os.path.join(REPO, "build"),
                    help="rgpu build dir holding bin/rgpu, bin/rgpu-server, lib/libcuda.so.1 "
                         "(default: %(default)s)")
    ap.add_argument("--port", type=int, default=0, help="server port (default: a free one)")
    ap.add_argument("--only", action="append", default=[],
                    help="workload name or glob, comma-separated; repeatable")
    ap.add_argument("--skip-local", action="store_true",
                    help="run only through rgpu (pass = a result and exit status 0)")
    ap.add_argument("--timeout", type=float, default=180.0,
                    help="per-run limit in seconds (a workload's `# timeout:` may raise it)")
    ap.add_argument("--skip", action="append", default=[],
                    help="workload name or glob to leave out, comma-separated; repeatable")
    ap.add_argument("--deadline", type=float, default=0,
                    help="whole-suite budget in seconds: runs are cut short to fit and "
                         "workloads left when it is reached are reported as not run "
                         "(failed); 0: none (default)")
    ap.add_argument("--server-arg", action="append", default=[],
                    help="extra rgpu-server argument (repeatable), e.g. --server-arg=--sandbox=on")
    ap.add_argument("--python", default="python3", help="interpreter (default: python3)")
    ap.add_argument("--visible-devices", default="0",
                    help="CUDA_VISIBLE_DEVICES for the server and both runs unless a workload "
                         "sets it; 'inherit' leaves it alone (default: 0)")
    ap.add_argument("--log-level", default="warn", help="RGPU_LOG for server and client")
    ap.add_argument("--workloads-dir", default=DEFAULT_WORKLOADS, help=argparse.SUPPRESS)
    ap.add_argument("--backend", default="cuda", help=argparse.SUPPRESS)  # sim: selftest only
    ap.add_argument("--fake", action="store_true",
                    help="no server, no rgpu: 'remote' is plain python3 too (self-test)")
    ap.add_argument("--list", action="store_true", help="list the workloads and exit")
    return ap.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        workloads = discover(args.workloads_dir, args.only, args.skip)
    except (OSError, ValueError) as e:
        print("run_suite: %s" % e, file=sys.stderr)
        return 2
    if args.list:
        for w in workloads:
            extra = " ".join("%s=%s" % kv for kv in w.env.items())
            print("%-22s %s %s" % (w.name, w.compare, extra))
        return 0

    def on_signal(signum, frame):
        raise KeyboardInterrupt("signal %d" % signum)

    signal.signal(signal.SIGTERM, on_signal)
    suite = Suite(args)
    print("gpu suite: %d workloads, outputs in %s" % (len(workloads), suite.out_dir), flush=True)
    try:
        try:
            suite.start()
        except RuntimeError as e:
            print("run_suite: %s" % e, file=sys.stderr)
            suite.log("setup failed: %s" % e)
            return 2
        for k, v in suite.meta["versions"].items():
            print("  %s: %s" % (k, v.replace("\n", "; ")), flush=True)
        if suite.server:
            print("  server: %s (log %s)" % (" ".join(suite.server.cmd), suite.server_log),
                  flush=True)
        for i, w in enumerate(workloads, 1):
            left = suite.time_left()
            if left is not None and left < 2 * DEADLINE_RESERVE:
                rec = suite.skip_workload(w, "not run: --deadline %gs reached" % args.deadline)
            else:
                rec = suite.run_workload(w)
            v = rec["verdict"]
            walls = " ".join("%s %.1fs" % (side, rec[side]["wall_s"])
                             for side in ("local", "remote") if "wall_s" in rec[side])
            print("[%2d/%d] %-20s %s%s%s" % (
                i, len(workloads), w.name, "pass" if v["passed"] else "FAIL",
                " (%s)" % walls if walls else "",
                "" if v["passed"] else ": " + _fit(v["reason"], 100)), flush=True)
    except KeyboardInterrupt:
        print("run_suite: interrupted; stopping the server and any running workload",
              file=sys.stderr)
        return 130
    finally:
        suite.stop()
    lines, ok = suite.report()
    print()
    print("\n".join(lines), flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Self-test of tests/gpu/run_suite.py; needs no GPU, no torch, no rgpu build.

    python3 tests/gpu/selftest/selftest.py [--rgpu-build DIR]

1. Unit checks of the header parser and the result comparison.
2. Every real workload compiles and has a valid header.
3. tests/gpu/workloads/_common.py emits a RESULT line (without torch).
4. The runner with --fake over selftest/workloads (no server).
5. The runner over a fake build dir (fake rgpu-server and rgpu from this
   directory): server start/stop, RGPU_SERVER, library checks, a server that
   dies mid-suite and is restarted, a hung remote run killed with its child.
6. --only, --skip, --skip-local, --deadline.
7. SIGTERM to the runner: server and the running workload's processes stopped.
8. With --rgpu-build DIR (a real build, no GPU needed): the real rgpu-server
   (--backend sim) and `rgpu run` with a ctypes driver workload, remote only.
Prints `selftest: ok` and exits 0, or the failed checks and exits 1.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
GPU = os.path.dirname(HERE)
sys.path.insert(0, GPU)
import run_suite  # noqa: E402

FAILED = []


def check(cond, what):
    if not cond:
        FAILED.append(what)
        print("  FAILED: " + what)


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is dead for our purposes.
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def unit_checks():
    print("unit checks")
    pc = run_suite.parse_compare
    check(pc("exact") == {"mode": "exact"}, "parse exact")
    check(pc("rtol=1e-3") == {"mode": "rtol", "rtol": 1e-3, "atol": 0.0}, "parse rtol")
    check(pc("rtol=2e-2 atol=1e-4") == {"mode": "rtol", "rtol": 2e-2, "atol": 1e-4}, "parse atol")
    for bad in ("", "exactly", "rtol", "atol=1", "rtol=x", "rtol=-1"):
        try:
            pc(bad)
            check(False, "parse_compare(%r) should fail" % bad)
        except ValueError:
            pass
    cr = run_suite.compare_results
    ex, rt = {"mode": "exact"}, {"mode": "rtol", "rtol": 1e-3, "atol": 0.0}
    nan = float("nan")
    check(cr({"a": [1.0, nan], "time_s": 1}, {"a": [1.0, nan], "time_s": 9}, ex)[0],
          "nan equal, time_s ignored")
    check(cr({"a": 1, "_x": 1}, {"a": 1, "_x": 2}, ex)[0], "_keys ignored")
    check(cr({"d": {"_x": 1, "y": 2}}, {"d": {"_x": 3, "y": 2}}, ex)[0], "nested _keys ignored")
    check(not cr({"a": 1.0}, {"a": 1.0000001}, ex)[0], "exact float differs")
    check(cr({"a": 1.0}, {"a": 1.0000001}, rt)[0], "rtol float equal")
    check(not cr({"a": 1.0}, {"a": 1.01}, rt)[0], "rtol float differs")
    check(cr({"a": 0.0}, {"a": 1e-7}, dict(rt, atol=1e-6))[0], "atol")
    check(not cr({"n": 3}, {"n": 4}, rt)[0], "ints exact under rtol")
    check(not cr({"b": True}, {"b": 1}, ex)[0], "bool vs int differs")
    check(cr({"x": 1}, {"x": 1.0}, ex)[0], "int vs equal float")
    check(cr({"sha": "a", "d": {"sha": "b"}}, {"sha": "c", "d": {"sha": "d"}}, rt)[0],
          "sha skipped under rtol")
    check(not cr({"sha": "a"}, {"sha": "c"}, ex)[0], "sha compared under exact")
    check(not cr({"a": [1, 2]}, {"a": [1]}, ex)[0], "list length")
    check(not cr({"a": 1}, {"b": 1}, ex)[0], "missing key")
    check(not cr({"a": float("inf")}, {"a": 1e308}, rt)[0], "inf")
    eq, diffs, rel = cr({"a": [1.0, 2.0]}, {"a": [1.0, 2.2]}, ex)
    check(not eq and diffs and diffs[0].startswith("a[1]: 2.0 != 2.2") and abs(rel - 0.2 / 2.2) < 1e-9,
          "diff text and max_rel: %r %r" % (diffs, rel))
    r, why = run_suite.parse_result("x\nRESULT {\"a\": 1}\nRESULT {\"a\": 2}\ntrailing\n")
    check(r == {"a": 2} and why is None, "last RESULT line wins")
    check(run_suite.parse_result("RESULT {bad")[0] is None, "bad json")
    check(run_suite.parse_result("nothing")[1] == "no RESULT line", "no result")
    errs, notes = run_suite.check_libs({"_libs": {"libcuda": ["/b/lib/libcuda.so.1"],
                                                  "libnvidia-ml": ["/usr/lib/libnvidia-ml.so.1"]}},
                                       "/b/lib", "remote", {"libcuda"})
    check(not errs and len(notes) == 1, "check_libs remote: %r %r" % (errs, notes))
    errs, _ = run_suite.check_libs({"_libs": {"libcuda": ["/b/lib/libcuda.so.1"]}},
                                   "/b/lib", "local", {"libcuda"})
    check(len(errs) == 1, "check_libs local sees rgpu's lib")
    errs, _ = run_suite.check_libs({"_libs": {"libcuda": ["/b/libx/libcuda.so.1"]}},
                                   "/b/lib", "remote", {"libcuda"})
    check(len(errs) == 1, "check_libs prefix is a directory")
    errs, _ = run_suite.check_libs({"_libs": {"libcuda": ["/b/client/libcuda.so.1.0"]}},
                                   "/b/lib", "remote", {"libcuda"}, {"/b/client/libcuda.so.1.0"})
    check(not errs, "check_libs follows links out of the lib dir")


def workload_checks():
    print("real workloads")
    wdir = run_suite.DEFAULT_WORKLOADS
    ws = run_suite.discover(wdir)
    check(len(ws) >= 25, "at least 25 workloads (%d)" % len(ws))
    names = {w.name for w in ws}
    for w in ws:
        with open(w.path, encoding="utf-8") as f:
            src = f.read()
        try:
            compile(src, w.path, "exec")
        except SyntaxError as e:
            check(False, "%s does not compile: %s" % (w.name, e))
        check('if __name__ == "__main__":\n    _common.run(main)' in src,
              "%s ends with the __main__ guard calling _common.run(main)" % w.name)
        check(len(src.splitlines()) < 200, "%s is small" % w.name)
    with open(os.path.join(wdir, "_common.py"), encoding="utf-8") as f:
        compile(f.read(), "_common.py", "exec")
    byname = {w.name: w for w in ws}
    check(byname["env_cvd_empty"].env == {"CUDA_VISIBLE_DEVICES": ""}, "cvd env parsed")
    check(byname["nvml_ctypes"].require == {"libnvidia-ml"}, "require parsed")
    check(byname["sdpa_flash"].compare["mode"] == "rtol", "sdpa_flash rtol")
    check(byname["compile_fn"].timeout == 300, "timeout parsed")
    for needed in ("device_query", "memory_stats", "sync_events", "streams", "pinned_copies",
                   "cuda_graph", "set_device", "cublas_matmul", "cublaslt", "cudnn_conv_bn",
                   "sdpa_flash", "sdpa_efficient", "amp_bf16", "compile_fn", "train_mlp",
                   "train_cnn", "train_resnet18", "train_gpt_bf16", "train_compiled",
                   "dataloader_pinned", "nvml_torch_check", "nvml_ctypes", "env_cvd_empty",
                   "env_module_lazy", "env_module_eager", "env_launch_blocking",
                   "fault_device_assert", "fault_triton_oob"):
        check(needed in names, "workload %s exists" % needed)

    # _common.run without torch: a RESULT line with _libs and time_s.
    code = ("import sys; sys.path.insert(0, %r); import _common; "
            "_common.run(lambda: {'x': 1})" % wdir)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"))
    r, why = run_suite.parse_result(out.stdout)
    check(out.returncode == 0 and r and r["x"] == 1 and r["time_s"] == 0.0
          and set(r["_libs"]) == {"libcuda", "libnvidia-ml"},
          "_common.run emits RESULT: %r %r %r" % (out.stdout, out.stderr, why))
    code = ("import sys; sys.path.insert(0, %r); import _common; "
            "_common.run(lambda: 1 / 0)" % wdir)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"))
    check(out.returncode == 1 and "RESULT" not in out.stdout and "ZeroDivisionError" in out.stderr,
          "_common.run on an exception: traceback, exit 1, no RESULT")


def run_runner(args, out_dir, selftest_dir):
    env = dict(os.environ, OUT=out_dir, SELFTEST_DIR=selftest_dir)
    env.pop("CUDA_VISIBLE_DEVICES", None)
    p = subprocess.run([sys.executable, os.path.join(GPU, "run_suite.py"),
                        "--workloads-dir", os.path.join(HERE, "workloads")] + args,
                       capture_output=True, text=True, env=env, timeout=300)
    print("  $ run_suite.py %s -> exit %d" % (" ".join(args), p.returncode))
    return p


def table_rows(stdout):
    rows = {}
    for line in stdout.splitlines():
        cells = [c.strip() for c in line.split(" | ")]
        if len(cells) == 5 and cells[0] not in ("workload",):
            rows[cells[0]] = cells
    return rows


def common_suite_checks(p, out_dir, expect_pass, expect_fail, selftest_dir):
    lines = p.stdout.rstrip("\n").splitlines()
    check(lines and lines[-1] == "%d passed, %d failed" % (len(expect_pass), len(expect_fail)),
          "last line: %r (stderr %s)" % (lines[-1:] if lines else None, p.stderr[-2000:]))
    check(p.returncode == (1 if expect_fail else 0), "exit status %d" % p.returncode)
    check(any(re.match(r"workload +\| local +\| remote +\| equal +\| time ratio", l) for l in lines),
          "table header")
    rows = table_rows(p.stdout)
    files = os.listdir(out_dir)
    check(0 < len(files) <= 8, "at most 8 output files: %r" % files)
    with open(os.path.join(out_dir, "gpu_suite_results.json")) as f:
        data = json.load(f)
    verdicts = {w["name"]: w["verdict"]["passed"] for w in data["workloads"]}
    check(verdicts == dict([(n, True) for n in expect_pass] + [(n, False) for n in expect_fail]),
          "verdicts %r" % verdicts)
    with open(os.path.join(out_dir, "gpu_suite.log")) as f:
        log = f.read()
    check("==== ok_exact [remote]" in log and "some noise" in log, "combined log has runs")
    pidfile = os.path.join(selftest_dir, "hang_child.pid")
    if os.path.exists(pidfile):
        with open(pidfile) as f:
            check(not pid_alive(int(f.read())), "hung run's child was killed")
    return rows, data, log


def fake_mode():
    print("--fake (no server)")
    with tempfile.TemporaryDirectory() as out, tempfile.TemporaryDirectory() as sd:
        p = run_runner(["--fake", "--timeout", "3"], out, sd)
        passed = ["kill_server", "lib_real_driver", "ok_env", "ok_exact", "ok_notes", "ok_rtol"]
        failed = ["bad_crash_remote", "bad_hang_remote", "bad_mismatch", "bad_rc"]
        rows, data, _ = common_suite_checks(p, out, passed, failed, sd)
        check(rows.get("ok_exact", [""] * 5)[4] == "2.00x", "time ratio: %r" % rows.get("ok_exact"))
        check(rows.get("ok_exact", [""] * 5)[3] == "yes", "equal yes")
        check(rows.get("ok_rtol", [""] * 5)[3].startswith("yes (rel"), "rtol equal shows rel")
        check(rows.get("bad_mismatch", [""] * 5)[3] == "NO", "mismatch NO")
        check("simulated remote failure" in rows.get("bad_crash_remote", [""] * 5)[2],
              "crash shows the error's last line: %r" % rows.get("bad_crash_remote"))
        check("TIMEOUT" in rows.get("bad_hang_remote", [""] * 5)[2], "hang shows TIMEOUT")
        check("exit status local 0, remote 3" in p.stdout, "rc mismatch reason")
        check("losses[1]: 0.5 != 0.5000000000000001" in p.stdout, "diff detail printed")
        check(not os.path.exists(os.path.join(out, "rgpu-server.log")), "no server log in --fake")


def make_fake_build(root):
    os.makedirs(os.path.join(root, "bin"))
    os.makedirs(os.path.join(root, "lib"))
    shutil.copy(os.path.join(HERE, "fake_rgpu.py"), os.path.join(root, "bin", "rgpu"))
    shutil.copy(os.path.join(HERE, "fake_rgpu_server.py"), os.path.join(root, "bin", "rgpu-server"))
    for b in ("rgpu", "rgpu-server"):
        os.chmod(os.path.join(root, "bin", b), 0o755)
    open(os.path.join(root, "lib", "libcuda.so.1"), "w").close()


def fake_build_mode():
    print("fake build (fake rgpu-server + rgpu)")
    with tempfile.TemporaryDirectory() as out, tempfile.TemporaryDirectory() as sd, \
            tempfile.TemporaryDirectory() as build:
        make_fake_build(build)
        p = run_runner(["--rgpu-build", build, "--timeout", "3"], out, sd)
        passed = ["ok_env", "ok_exact", "ok_notes", "ok_rtol"]
        failed = ["bad_crash_remote", "bad_hang_remote", "bad_mismatch", "bad_rc",
                  "kill_server", "lib_real_driver"]
        rows, data, log = common_suite_checks(p, out, passed, failed, sd)
        with open(os.path.join(out, "rgpu-server.log")) as f:
            slog = f.read()
        check(re.search(r"args: --listen 127\.0\.0\.1:\d+ --backend cuda RGPU_LOG=warn "
                        r"CUDA_VISIBLE_DEVICES=0", slog), "server args/env: %r" % slog[:500])
        check(slog.count("fake rgpu-server args") == 2, "server restarted once after dying")
        check("stopping on signal 15" in slog, "server stopped with SIGTERM at the end")
        with open(os.path.join(sd, "server.pid")) as f:
            check(not pid_alive(int(f.read())), "server gone after the suite")
        check("rgpu-server died" in p.stdout, "server death reported")
        check("remote run loaded the real libcuda" in p.stdout, "real libcuda reported")
        check("Notes:" in p.stdout and "libnvidia-ml" in p.stdout, "nvml note printed")
        check("RGPU_SERVER=127.0.0.1:" in log, "RGPU_SERVER logged for remote runs")

        print("--only / --skip-local")
        shutil.rmtree(out)
        os.makedirs(out)
        p = run_runner(["--rgpu-build", build, "--only", "ok_e*,bad_rc", "--skip-local"], out, sd)
        rows = table_rows(p.stdout)
        check(set(rows) == {"ok_env", "ok_exact", "bad_rc"}, "--only: %r" % sorted(rows))
        check(rows.get("ok_exact", [""] * 5)[1] == "skipped", "local skipped")
        check(p.stdout.rstrip().splitlines()[-1] == "2 passed, 1 failed",
              "skip-local verdicts: %r" % p.stdout[-300:])
        p = run_runner(["--fake", "--only", "ok_*,bad_*", "--skip", "bad_*,ok_notes"], out, sd)
        check(set(table_rows(p.stdout)) == {"ok_env", "ok_exact", "ok_rtol"},
              "--skip: %r" % sorted(table_rows(p.stdout)))
        # The hung run is cut to fit the deadline (32 - 15 reserve = ~17s), the rest not run.
        p = run_runner(["--fake", "--only", "bad_hang_remote,ok_*", "--deadline", "32",
                        "--timeout", "100"], out, sd)
        rows = table_rows(p.stdout)
        check("TIMEOUT after 1" in rows.get("bad_hang_remote", [""] * 5)[2]
              and rows.get("ok_rtol", [""] * 5)[1] == "not run"
              and "not run: --deadline 32s reached" in p.stdout
              and p.stdout.rstrip().splitlines()[-1] == "0 passed, 5 failed",
              "--deadline: %r" % p.stdout[-1500:])
        p = run_runner(["--rgpu-build", build, "--only", "nothing_like_this"], out, sd)
        check(p.returncode == 2 and "matches no workload" in p.stderr, "--only no match")
        p = run_runner(["--rgpu-build", os.path.join(build, "nope")], out, sd)
        check(p.returncode == 2 and "rgpu build incomplete" in p.stderr, "missing build")


def interrupt_mode():
    print("SIGTERM to the runner mid-run")
    import time
    with tempfile.TemporaryDirectory() as out, tempfile.TemporaryDirectory() as sd, \
            tempfile.TemporaryDirectory() as build:
        make_fake_build(build)
        env = dict(os.environ, OUT=out, SELFTEST_DIR=sd)
        p = subprocess.Popen([sys.executable, os.path.join(GPU, "run_suite.py"),
                              "--workloads-dir", os.path.join(HERE, "workloads"),
                              "--rgpu-build", build, "--only", "bad_hang_remote",
                              "--timeout", "100"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        child = os.path.join(sd, "hang_child.pid")
        for _ in range(200):
            if os.path.exists(child) and os.path.getsize(child):
                break
            time.sleep(0.05)
        time.sleep(0.2)
        p.terminate()
        try:
            stdout, stderr = p.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            stdout, stderr = p.communicate()
        check(p.returncode == 130, "runner exit on SIGTERM: %s %r" % (p.returncode, stderr[-500:]))
        with open(child) as f:
            check(not pid_alive(int(f.read())), "hung workload's child killed on SIGTERM")
        with open(os.path.join(sd, "server.pid")) as f:
            check(not pid_alive(int(f.read())), "server stopped on SIGTERM")


def sim_mode(build):
    print("real rgpu build %s over --backend sim (remote only)" % build)
    with tempfile.TemporaryDirectory() as out, tempfile.TemporaryDirectory() as sd:
        env = dict(os.environ, OUT=out, SELFTEST_DIR=sd)
        p = subprocess.run([sys.executable, os.path.join(GPU, "run_suite.py"),
                            "--workloads-dir", os.path.join(HERE, "sim_workloads"),
                            "--rgpu-build", build, "--backend", "sim", "--skip-local",
                            "--timeout", "60"],
                           capture_output=True, text=True, env=env, timeout=300)
        print("  $ run_suite.py --rgpu-build %s --backend sim --skip-local -> exit %d"
              % (build, p.returncode))
        check(p.returncode == 0 and p.stdout.rstrip().splitlines()[-1] == "1 passed, 0 failed",
              "sim smoke: %s %s" % (p.stdout[-1500:], p.stderr[-1500:]))
        with open(os.path.join(out, "gpu_suite_results.json")) as f:
            res = json.load(f)["workloads"][0]["remote"]["result"] or {}
        libs = res.get("_libs", {}).get("libcuda", [])
        check(res.get("cuInit") == 0 and res.get("count", [1, 0])[1] >= 1 and libs
              and all(l.startswith(os.path.realpath(build)) for l in libs),
              "sim smoke result: %r" % res)


def main():
    unit_checks()
    workload_checks()
    fake_mode()
    fake_build_mode()
    interrupt_mode()
    if len(sys.argv) == 3 and sys.argv[1] == "--rgpu-build":
        sim_mode(sys.argv[2])
    if FAILED:
        print("selftest: %d check(s) failed" % len(FAILED))
        return 1
    print("selftest: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())

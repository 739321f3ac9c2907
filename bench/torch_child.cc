#include "bench/torch_child.h"

#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "bench/delay_proxy.h"
#include "bench/subprocess.h"

namespace rgpu::bench {
namespace {

struct Measure {
  const char* name;
  const char* key;
  int steps, quick_steps;  // per timed run (the script times 3 runs)
  double timeout_s;
};
const Measure kMeasures[] = {
    {"first", "torch.first_use_s", 0, 0, 120},
    {"gpt", "torch.gpt.step_ms", 20, 2, 300},
    {"cnn", "torch.cnn.step_ms", 50, 5, 120},
};

std::string DirOf(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

std::string LastLines(const std::string& text, size_t max_chars) {
  size_t end = text.find_last_not_of("\n ");
  if (end == std::string::npos) return "no output";
  std::string s = text.substr(0, end + 1);
  size_t nl = s.rfind('\n');
  std::string last = nl == std::string::npos ? s : s.substr(nl + 1);
  return last.size() > max_chars ? last.substr(0, max_chars) + "..." : last;
}

// The embedded script in a temporary file, removed on destruction.
class ScriptFile {
 public:
  ScriptFile() {
    char tmpl[] = "/tmp/rgpu_bench_torch_XXXXXX.py";
    int fd = mkstemps(tmpl, 3);
    if (fd < 0) return;
    size_t n = strlen(kTorchStepsScript);
    bool ok = write(fd, kTorchStepsScript, n) == static_cast<ssize_t>(n);
    close(fd);
    path_ = tmpl;
    if (!ok) {
      unlink(path_.c_str());
      path_.clear();
    }
  }
  ~ScriptFile() {
    if (!path_.empty()) unlink(path_.c_str());
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

bool Has(const std::string& list, const char* item) {
  std::stringstream ss(list);
  std::string x;
  while (std::getline(ss, x, ','))
    if (x == item) return true;
  return false;
}

}  // namespace

int RunTorchChild(const ChildOptions& o, Emitter* out) {
  const bool remote = o.mode == "torch-rgpu";
  ScriptFile script;
  if (script.path().empty()) {
    out->Error("init", "cannot write the torch script to /tmp");
    return 1;
  }
  // Local runs must not see rgpu; remote runs find rgpu's libcuda first.
  std::vector<std::string> prefix = {"/usr/bin/env", "-u", "RGPU_SERVER", "-u", "TRITON_LIBCUDA_PATH"};
  std::map<std::string, std::string> env = {{"PYTHONUNBUFFERED", "1"}, {"PYTHONDONTWRITEBYTECODE", "1"}};
  std::unique_ptr<DelayProxy> proxy;
  if (remote) {
    if (o.server.empty() || o.driver.empty()) {
      out->Error("init", "torch-rgpu child needs --server and --driver");
      return 1;
    }
    std::string server = o.server;
    if (o.delay_ms > 0) {
      DelayProxyOptions po;
      po.target = o.server;
      po.one_way_delay_ms = o.delay_ms;
      Result<std::unique_ptr<DelayProxy>> p = DelayProxy::Start(po);
      if (!p.ok()) {
        out->Error("init", p.status().message());
        return 1;
      }
      proxy = std::move(p.value());
      server = proxy->address();
    }
    std::string lib_dir = DirOf(o.driver);
    const char* ld = getenv("LD_LIBRARY_PATH");
    env["LD_LIBRARY_PATH"] = lib_dir + (ld != nullptr && *ld != 0 ? ":" + std::string(ld) : "");
    env["TRITON_LIBCUDA_PATH"] = lib_dir;
    env["RGPU_SERVER"] = server;
    prefix = {"/usr/bin/env"};
  }
  for (const Measure& m : kMeasures) {
    if (!Has(o.measures, m.name)) continue;
    std::vector<std::string> argv = prefix;
    argv.insert(argv.end(), {"python3", script.path(), m.name,
                             std::to_string(o.quick ? m.quick_steps : m.steps)});
    Result<ChildResult> r = RunChild(argv, env, m.timeout_s);
    if (!r.ok()) {
      out->Error(m.key, r.status().message());
      continue;
    }
    const Value& v = Lookup(ParseResults(r->out), m.key);
    if (v.is_num() && r->exit_code == 0) {
      out->Num(m.key, v.num);
    } else {
      std::string why = r->timed_out      ? "timed out after " + std::to_string(static_cast<int>(m.timeout_s)) + " s"
                        : r->exit_code == 0 ? std::string("no result line")
                                            : "python3 exit status " + std::to_string(r->exit_code);
      out->Error(m.key, why + ": " + LastLines(r->err, 300));
    }
  }
  fflush(stdout);
  return 0;
}

}  // namespace rgpu::bench

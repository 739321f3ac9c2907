#include "client/client_state.h"

#include <pthread.h>

#include <atomic>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/log.h"
#include "proto/compression.h"
#include "proto/handshake.h"

namespace rgpu::client {
namespace {

std::mutex g_init_mu;
// The one ClientState, published once cuInit succeeded; leaked at exit on
// purpose (other libraries' destructors may still call the driver). Read
// without a lock on every driver call.
std::atomic<ClientState*> g_state{nullptr};
CUresult g_init_result = CUDA_ERROR_NOT_INITIALIZED;
bool g_init_done = false;

std::string Env(const char* name, const char* dflt = "") {
  const char* v = getenv(name);
  return v ? v : dflt;
}

// RGPU_TLS: 1/true/yes/on or 0/false/no/off. Unset, TLS is on when
// RGPU_TLS_CA is set: naming a CA and then talking in plaintext would be a
// silent downgrade.
Result<bool> TlsWanted() {
  const char* v = getenv("RGPU_TLS");
  if (v == nullptr) return !Env("RGPU_TLS_CA").empty();
  std::string s = v;
  for (const char* on : {"1", "true", "yes", "on"})
    if (s == on) return true;
  for (const char* off : {"", "0", "false", "no", "off"})
    if (s == off) return false;
  return Status::Invalid("RGPU_TLS='" + s + "': expected 1 or 0");
}

std::string ReadTokenFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string t = ss.str();
  while (!t.empty() && (t.back() == '\n' || t.back() == '\r' || t.back() == ' ')) t.pop_back();
  return t;
}

// The parent, grandparent, ... pids (up to 8): a helper process of a program
// that holds a GPU (compile workers, DataLoader workers that use CUDA) shares
// that program's lease instead of queueing behind it forever.
std::string Ancestors() {
  std::string out;
  pid_t p = getppid();
  for (int depth = 0; depth < 8 && p > 1; ++depth) {
    out += (out.empty() ? "" : ",") + std::to_string(p);
    std::ifstream in("/proc/" + std::to_string(p) + "/stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    size_t close_paren = stat.rfind(')');
    if (close_paren == std::string::npos) break;
    char state = 0;
    int ppid = 0;
    if (sscanf(stat.c_str() + close_paren + 2, "%c %d", &state, &ppid) != 2) break;
    p = ppid;
  }
  return out;
}

std::string Identity() {
  char host[256] = "?";
  gethostname(host, sizeof host - 1);
  char exe[1024] = "?";
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n > 0) exe[n] = 0;
  const char* user = getenv("USER");
  return std::string(user ? user : "?") + "@" + host + " pid=" + std::to_string(getpid()) +
         " ancestors=" + Ancestors() + " exe=" + exe;
}

std::string UuidString(const std::array<uint8_t, 16>& u) {
  char b[64];
  snprintf(b, sizeof b, "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
           u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13],
           u[14], u[15]);
  return b;
}

// CUDA_VISIBLE_DEVICES as the driver reads it: a comma-separated list of
// ordinals or (prefixes of) UUIDs; parsing stops at the first invalid entry;
// set but empty hides every device.
std::vector<int> VisibleDevices(const proto::DeviceInfo& info) {
  std::vector<int> all;
  for (int i = 0; i < static_cast<int>(info.devices.size()); ++i) all.push_back(i);
  const char* env = getenv("CUDA_VISIBLE_DEVICES");
  if (env == nullptr) return all;
  std::vector<int> out;
  std::stringstream ss(env);
  std::string item;
  while (std::getline(ss, item, ',')) {
    while (!item.empty() && item.front() == ' ') item.erase(0, 1);
    while (!item.empty() && item.back() == ' ') item.pop_back();
    if (item.empty()) break;
    int found = -1;
    if (item.rfind("GPU-", 0) == 0) {
      for (int i : all)
        if (UuidString(info.devices[i].uuid).rfind(item, 0) == 0) found = i;
    } else {
      char* end = nullptr;
      long v = strtol(item.c_str(), &end, 10);
      if (*end == 0 && v >= 0 && v < static_cast<long>(all.size())) found = static_cast<int>(v);
    }
    if (found < 0) break;
    bool dup = false;
    for (int d : out) dup |= d == found;
    if (dup) break;
    out.push_back(found);
  }
  return out;
}

// RGPU_GPUS: how many GPUs this process's session leases (default 1), or
// "all" for every GPU of the server. The server refuses more than it has.
Result<uint32_t> ParseGpusWanted(const std::string& v) {
  if (v == "all") return proto::kAllGpus;
  char* end = nullptr;
  errno = 0;
  long n = strtol(v.c_str(), &end, 10);
  if (end == v.c_str() || *end != 0 || errno != 0 || n < 1 || n > static_cast<long>(proto::kMaxDevices))
    return Status::Invalid("RGPU_GPUS='" + v + "': expected a number of GPUs from 1 to " +
                           std::to_string(proto::kMaxDevices) + ", or all");
  return static_cast<uint32_t>(n);
}

void AtForkChild() {
  if (ClientState* s = g_state.load()) s->OnForkChild();
}

// Registered by the first successful cuInit: see client_state.h.
void OnExit() {
  if (ClientState* s = g_state.load(std::memory_order_acquire)) s->MarkDeinitialized();
}

}  // namespace

ClientState* ClientState::Get() {
  return g_state.load(std::memory_order_acquire);
}

bool ClientState::Deinitialized() {
  ClientState* s = Get();
  return s != nullptr && s->refusal() == CUDA_ERROR_DEINITIALIZED;
}

void ClientState::MarkDeinitialized() {
  // A forked child keeps its own answer.
  int usable = CUDA_SUCCESS;
  refusal_.compare_exchange_strong(usable, CUDA_ERROR_DEINITIALIZED, std::memory_order_relaxed);
}

CUresult ClientState::Init(unsigned flags) {
  std::lock_guard<std::mutex> lock(g_init_mu);
  if (Deinitialized()) return CUDA_ERROR_DEINITIALIZED;
  if (g_init_done) return g_init_result;
  if (flags != 0) return CUDA_ERROR_INVALID_VALUE;
  auto* s = new ClientState();
  g_init_result = s->Start(flags);
  g_init_done = true;
  if (g_init_result == CUDA_SUCCESS) {
    g_state.store(s, std::memory_order_release);
    pthread_atfork(nullptr, nullptr, AtForkChild);
    std::atexit(OnExit);
  } else {
    delete s;
  }
  return g_init_result;
}

CUresult ClientState::Start(unsigned) {
  SetLogTag("rgpu");
  ConnectOptions opt;
  opt.server = Env("RGPU_SERVER", "127.0.0.1:7070");
  opt.token = Env("RGPU_TOKEN");
  if (opt.token.empty() && !Env("RGPU_TOKEN_FILE").empty())
    opt.token = ReadTokenFile(Env("RGPU_TOKEN_FILE"));
  opt.identity = Identity();
  Result<bool> tls = TlsWanted();
  if (!tls.ok()) {
    RGPU_LOG_ERROR("cuInit: %s", tls.status().message().c_str());
    return CUDA_ERROR_INVALID_VALUE;
  }
  opt.tls = *tls;
  opt.tls_ca = Env("RGPU_TLS_CA");
  opt.tls_server_name = Env("RGPU_TLS_SERVER_NAME");
  if (const char* w = getenv("RGPU_WAIT_TIMEOUT"); w != nullptr && *w) {
    double secs = atof(w);
    opt.wait_timeout_ms = secs <= 0 ? 0 : static_cast<int>(secs * 1000);
  }
  if (const char* g = getenv("RGPU_GPUS"); g != nullptr && *g) {
    Result<uint32_t> wanted = ParseGpusWanted(g);
    if (!wanted.ok()) {
      RGPU_LOG_ERROR("cuInit: %s", wanted.status().message().c_str());
      return CUDA_ERROR_INVALID_VALUE;
    }
    opt.gpus_wanted = *wanted;
  }
  opt.compress = Env("RGPU_COMPRESS");
  if (Result<uint8_t> offer = proto::ParseCompressOffer(opt.compress, false); !offer.ok()) {
    RGPU_LOG_ERROR("cuInit: %s", offer.status().message().c_str());
    return CUDA_ERROR_INVALID_VALUE;
  }
  auto sink = [this](int cu, const std::string& msg) { RecordAsyncError(cu, msg); };
  Result<std::unique_ptr<Connection>> c = Connection::Open(opt, sink);
  if (!c.ok()) {
    RGPU_LOG_ERROR("cuInit: cannot reach a GPU: %s", c.status().message().c_str());
    return c.status().code() == Code::kAuth ? CUDA_ERROR_NOT_INITIALIZED : CUDA_ERROR_NO_DEVICE;
  }
  conn_ = std::move(*c);
  Reply reply;
  Status st = conn_->Call(proto::CallId::kGetDeviceInfo, proto::GetDeviceInfoReq{}, &reply);
  if (st.ok() && reply.cu != 0) st = Status::Cuda(reply.cu, "GetDeviceInfo");
  if (st.ok()) {
    proto::Reader r(reply.payload);
    proto::GetDeviceInfoRep rep;
    st = proto::Decode(r, &rep);
    if (st.ok()) st = proto::DecodeDeviceInfo(rep.info, &info_);
  }
  if (!st.ok()) {
    RGPU_LOG_ERROR("cuInit: device info from the server: %s", st.message().c_str());
    conn_.reset();
    return CUDA_ERROR_NO_DEVICE;
  }
  visible_ = VisibleDevices(info_);
  for (size_t i = 0; i < visible_.size(); ++i) {
    auto p = std::make_unique<CtxObj>();
    p->id = NewId();
    p->device = static_cast<int>(i);
    p->primary = true;
    primaries_.push_back(std::move(p));
  }
  if (visible_.empty()) return CUDA_ERROR_NO_DEVICE;
  RGPU_LOG_INFO("connected: session %llu, %d device(s), backend %s",
                (unsigned long long)conn_->session_id(), device_count(), info_.backend.c_str());
  return CUDA_SUCCESS;
}

HostFuncs& ClientState::host_funcs() {
  std::call_once(host_funcs_once_, [this] {
    host_funcs_ = std::make_unique<HostFuncs>(conn_.get());
    conn_->set_host_func_sink([this](uint64_t id) { host_funcs_->Fire(id); });
  });
  return *host_funcs_;
}

CtxObj* ClientState::Primary(int dev) { return primaries_[dev].get(); }

CtxObj* ClientState::NewContext(int dev, unsigned flags) {
  auto c = std::make_unique<CtxObj>();
  c->id = NewId();
  c->device = dev;
  c->flags = flags;
  c->active = true;
  CtxObj* raw = c.get();
  std::lock_guard<std::mutex> lock(mu_);
  contexts_[raw] = std::move(c);
  return raw;
}

bool ClientState::IsContext(CUcontext c) {
  for (auto& p : primaries_)
    if (reinterpret_cast<CUcontext>(p.get()) == c) return true;
  std::lock_guard<std::mutex> lock(mu_);
  return contexts_.count(c) != 0;
}

void ClientState::DropContext(CtxObj* c) {
  std::lock_guard<std::mutex> lock(mu_);
  contexts_.erase(c);
}

// The per-thread state. Not a thread_local object with a destructor: the
// main thread's are destroyed at exit() before the exit handlers and static
// destructors of other libraries run, and those call the driver (cufftDestroy
// from a plan cache's destructor pushes a context: a push_back into a freed
// vector, and Sync() moved a reply into a freed buffer, freeing it twice;
// glibc then aborted with "corrupted double-linked list"). Here the
// thread_local is a plain pointer, and a pthread key's destructor frees the
// state when a thread ends. Key destructors run after the thread's
// thread_local destructors and never at exit(), so the main thread's state
// stays usable to the end; a driver call from a later key destructor makes a
// new state, which glibc's next destructor round frees.
struct ThreadState {
  std::vector<CtxObj*> stack;
  std::vector<std::unique_ptr<Reply>> replies;  // by Sync() slot
};

namespace {

thread_local ThreadState* t_state = nullptr;  // trivially destructible: valid through exit
pthread_key_t g_thread_key;
bool g_thread_key_ok = false;
std::once_flag g_thread_key_once;
std::atomic<size_t> g_next_reply_slot{0};

void FreeThreadState(void* p) {
  if (t_state == p) t_state = nullptr;
  delete static_cast<ThreadState*>(p);
}

ThreadState& MyThreadState() {
  if (ThreadState* t = t_state) return *t;
  std::call_once(g_thread_key_once, [] { g_thread_key_ok = pthread_key_create(&g_thread_key, FreeThreadState) == 0; });
  auto* t = new ThreadState;
  // Without a key (all taken) the state of each thread is leaked.
  if (g_thread_key_ok) pthread_setspecific(g_thread_key, t);
  t_state = t;
  return *t;
}

}  // namespace

std::vector<CtxObj*>& ClientState::Stack() { return MyThreadState().stack; }

Reply& ClientState::SyncReply(size_t slot) {
  auto& replies = MyThreadState().replies;
  if (slot >= replies.size()) replies.resize(slot + 1);
  if (!replies[slot]) replies[slot] = std::make_unique<Reply>();
  return *replies[slot];
}

size_t ClientState::NewSyncReplySlot() { return g_next_reply_slot.fetch_add(1, std::memory_order_relaxed); }

CtxObj* ClientState::Current() {
  auto& s = Stack();
  return s.empty() ? nullptr : s.back();
}

#define RGPU_REGISTRY(Type, Name, map)                                   \
  Type* ClientState::Add##Name(std::unique_ptr<Type> o) {                \
    Type* raw = o.get();                                                 \
    std::lock_guard<std::mutex> lock(mu_);                               \
    map[raw] = std::move(o);                                             \
    return raw;                                                          \
  }

RGPU_REGISTRY(StreamObj, Stream, streams_)
RGPU_REGISTRY(EventObj, Event, events_)
RGPU_REGISTRY(ModuleObj, Module, modules_)
FuncObj* ClientState::AddFunc(std::unique_ptr<FuncObj> f) {
  FuncObj* raw = f.get();
  std::lock_guard<std::mutex> lock(mu_);
  func_names_[{raw->module, raw->is_kernel, raw->name}] = raw;
  funcs_[raw] = std::move(f);
  return raw;
}
FuncObj* ClientState::FindFuncByName(const ModuleObj* m, const std::string& name, bool kernel) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = func_names_.find({m, kernel, name});
  return it == func_names_.end() ? nullptr : it->second;
}
RGPU_REGISTRY(GraphObj, Graph, graphs_)
RGPU_REGISTRY(ExecObj, Exec, execs_)
#undef RGPU_REGISTRY

StreamObj* ClientState::FindStream(CUstream s) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = streams_.find(s);
  return it == streams_.end() ? nullptr : it->second.get();
}
void ClientState::DropStream(StreamObj* s) {
  std::lock_guard<std::mutex> lock(mu_);
  streams_.erase(s);
}
EventObj* ClientState::FindEvent(CUevent e) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = events_.find(e);
  return it == events_.end() ? nullptr : it->second.get();
}
void ClientState::DropEvent(EventObj* e) {
  std::lock_guard<std::mutex> lock(mu_);
  events_.erase(e);
}
ModuleObj* ClientState::FindModule(const void* m) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = modules_.find(m);
  return it == modules_.end() ? nullptr : it->second.get();
}
void ClientState::DropModule(ModuleObj* m) {
  std::lock_guard<std::mutex> lock(mu_);
  BumpFuncEpoch();  // its functions' handles may be reused
  for (auto it = funcs_.begin(); it != funcs_.end();) {
    if (it->second->module == m) it = funcs_.erase(it);
    else ++it;
  }
  for (auto it = func_names_.lower_bound({m, false, std::string()});
       it != func_names_.end() && std::get<0>(it->first) == m;)
    it = func_names_.erase(it);
  modules_.erase(m);
}
FuncObj* ClientState::FindFunc(const void* f) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = funcs_.find(f);
  return it == funcs_.end() ? nullptr : it->second.get();
}

void ClientState::SetFuncAttribute(const FuncObj* f, int attrib, int32_t value) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [handle, g] : funcs_)
    if (g->module == f->module && g->name == f->name && attrib >= 0 && static_cast<size_t>(attrib) < g->attrs.size())
      g->attrs[attrib] = value;
  BumpFuncEpoch();
}

GraphObj* ClientState::FindGraph(const void* g) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = graphs_.find(g);
  return it == graphs_.end() ? nullptr : it->second.get();
}
void ClientState::DropGraph(GraphObj* g) {
  std::lock_guard<std::mutex> lock(mu_);
  graphs_.erase(g);
}
ExecObj* ClientState::FindExec(const void* e) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = execs_.find(e);
  return it == execs_.end() ? nullptr : it->second.get();
}
void ClientState::DropExec(ExecObj* e) {
  std::lock_guard<std::mutex> lock(mu_);
  execs_.erase(e);
}

Capture ClientState::GetCapture(uint64_t stream) {
  if (!any_capture()) return Capture{};
  std::lock_guard<std::mutex> lock(mu_);
  auto it = captures_.find(stream);
  return it == captures_.end() ? Capture{} : it->second;
}

void ClientState::SetCapture(uint64_t stream, const Capture& c) {
  std::lock_guard<std::mutex> lock(mu_);
  if (c.id == 0) captures_.erase(stream);
  else captures_[stream] = c;
  capture_count_.store(static_cast<int>(captures_.size()), std::memory_order_relaxed);
}

bool ClientState::ContextCaptures(const CtxObj* c) {
  if (!any_capture()) return false;
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [stream, cap] : captures_)
    for (const auto& [h, so] : streams_)
      if (so->id == stream && so->ctx == c) return true;
  return false;
}

void ClientState::EndCapture(uint64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = captures_.begin(); it != captures_.end();) {
    if (it->second.id == id) it = captures_.erase(it);
    else ++it;
  }
  capture_count_.store(static_cast<int>(captures_.size()), std::memory_order_relaxed);
}

void ClientState::AddAllocation(CUdeviceptr p, uint64_t size, CtxObj* ctx) {
  std::lock_guard<std::mutex> lock(mu_);
  allocations_[p] = Allocation{size, ctx};
}

bool ClientState::RemoveAllocation(CUdeviceptr p) {
  std::lock_guard<std::mutex> lock(mu_);
  return allocations_.erase(p) != 0;
}

bool ClientState::CoveredByAllocations(CUdeviceptr p, uint64_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = allocations_.upper_bound(p);
  if (it == allocations_.begin()) return false;
  --it;
  if (p - it->first >= std::max<uint64_t>(it->second.size, 1)) return false;
  uint64_t want = p + n < p ? UINT64_MAX : p + n;
  uint64_t covered = it->first + it->second.size;
  for (auto next = std::next(it); covered < want && next != allocations_.end() && next->first == covered; ++next)
    covered = next->first + next->second.size;
  return want <= covered;
}

bool ClientState::FindAllocation(CUdeviceptr p, CUdeviceptr* base, uint64_t* size, CtxObj** ctx) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = allocations_.upper_bound(p);
  if (it == allocations_.begin()) return false;
  --it;
  // A zero-size query at the end is still "inside" for pointer arithmetic.
  if (p - it->first >= std::max<uint64_t>(it->second.size, 1)) return false;
  if (base) *base = it->first;
  if (size) *size = it->second.size;
  if (ctx) *ctx = it->second.ctx;
  return true;
}

void ClientState::AddHostRange(const void* p, uint64_t size, unsigned flags, bool owned) {
  std::lock_guard<std::mutex> lock(mu_);
  host_ranges_[reinterpret_cast<uintptr_t>(p)] = {size, flags};
  host_owned_[reinterpret_cast<uintptr_t>(p)] = owned;
}

bool ClientState::RemoveHostRange(const void* p, bool* owned) {
  std::lock_guard<std::mutex> lock(mu_);
  auto key = reinterpret_cast<uintptr_t>(p);
  if (host_ranges_.erase(key) == 0) return false;
  *owned = host_owned_[key];
  host_owned_.erase(key);
  return true;
}

bool ClientState::IsHostRange(const void* p, uint64_t* base_size, unsigned* flags) {
  std::lock_guard<std::mutex> lock(mu_);
  auto key = reinterpret_cast<uintptr_t>(p);
  auto it = host_ranges_.upper_bound(key);
  if (it == host_ranges_.begin()) return false;
  --it;
  if (key - it->first >= std::max<uint64_t>(it->second.first, 1)) return false;
  if (base_size) *base_size = it->second.first;
  if (flags) *flags = it->second.second;
  return true;
}

void ClientState::RecordAsyncError(int cu, const std::string& msg) {
  std::lock_guard<std::mutex> lock(mu_);
  // Said once per error code: after a sticky error every later launch fails
  // the same way, and a program that keeps launching must not flood stderr
  // (the driver itself prints nothing; the codes reach the program anyway).
  if (++async_errors_seen_[cu] == 1)
    RGPU_LOG_WARN("asynchronous error %d: %s (later ones with this code are logged at debug level)", cu,
                  msg.c_str());
  else
    RGPU_LOG_DEBUG("asynchronous error %d: %s", cu, msg.c_str());
  if (async_error_ == 0) {
    async_error_ = cu;
    async_error_msg_ = msg;
  }
}

bool ClientState::HasAsyncError() {
  std::lock_guard<std::mutex> lock(mu_);
  return async_error_ != 0;
}

CUresult ClientState::TakeAsyncError() {
  std::lock_guard<std::mutex> lock(mu_);
  int e = async_error_;
  async_error_ = 0;
  return static_cast<CUresult>(e);
}

void ClientState::OnForkChild() {
  forked_ = true;
  refusal_.store(CUDA_ERROR_NOT_INITIALIZED, std::memory_order_relaxed);
  if (conn_) conn_->AbandonAfterFork();
}

}  // namespace rgpu::client

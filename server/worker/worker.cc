#include "server/worker/worker.h"

#include <unistd.h>

#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include "common/log.h"
#include "common/net.h"
#include "proto/calls.gen.h"
#include "proto/compression.h"
#include "proto/frame.h"
#include "proto/handshake.h"
#include "server/supervisor/control.h"
#include "server/worker/handlers.gen.h"
#include "server/worker/link.h"
#include "server/worker/nvml_preload.h"
#include "server/worker/output_capture.h"
#include "server/worker/session.h"
#include "server/worker/teardown_guard.h"
#include "server/worker/tls_session.h"
#include "server/worker/card_scrub.h"
#include "server/worker/d2h_staging.h"
#include "server/worker/device_heap.h"
#include "server/worker/swap.h"
#include "server/worker/worker_stats.h"

namespace rgpu::worker {
namespace {

// The client's TLS handshake and Bind follow the hand-over at once.
constexpr int kTlsTimeoutMs = 10000;

Status SendFrame(Link& link, const proto::FrameHeader& req, uint16_t flags, uint16_t call,
                 std::span<const uint8_t> payload, std::vector<uint8_t>* out) {
  out->clear();
  proto::AppendFrame({0, call, flags, req.request_id}, payload, out);
  return link.Send(*out);
}

// Answers an async call's failure: i32 CUresult, then the reason.
Status SendAsyncError(Link& link, const proto::FrameHeader& req, int cu, const std::string& msg,
                      std::vector<uint8_t>* out) {
  std::vector<uint8_t> payload;
  proto::Writer w(&payload);
  w.I32(cu);
  w.Str(msg.substr(0, 1024));
  return SendFrame(link, req, proto::kAsyncError, req.call, payload, out);
}

// Sends captured device output (printf, assert messages) ahead of a reply.
Status SendOutput(Link& link, OutputCapture* capture, std::vector<uint8_t>* out) {
  if (capture == nullptr) return {};
  std::string so, se;
  capture->Take(&so, &se);
  for (auto [kind, text] : {std::pair{EventKind::kStdout, &so}, std::pair{EventKind::kStderr, &se}}) {
    for (size_t at = 0; at < text->size(); at += proto::kMaxChunk) {
      std::vector<uint8_t> payload;
      proto::Writer w(&payload);
      w.I32(0);
      size_t n = std::min<size_t>(proto::kMaxChunk, text->size() - at);
      w.Bytes(text->data() + at, n);
      RGPU_RETURN_IF_ERROR(SendFrame(link, {}, proto::kEvent, static_cast<uint16_t>(kind), payload, out));
    }
  }
  return {};
}

// One request: decode, run, answer. Returns non-OK only when the session
// must end (transport failure or protocol violation).
Status ServeOne(Session& session, Link& link, const Request& req, std::vector<uint8_t>* reply,
                std::vector<uint8_t>* out, OutputCapture* capture) {
  const proto::FrameHeader& h = req.header;
  const HandlerEntry* handler = FindHandler(h.call);
  bool async = (h.flags & proto::kNoReply) != 0;
  if (handler == nullptr) {
    LogOnce(LogLevel::kWarn, "call" + std::to_string(h.call), "unsupported call id %u", h.call);
    std::string msg = "call id " + std::to_string(h.call) + " is not supported by this worker";
    if (async) return SendAsyncError(link, h, CUDA_ERROR_NOT_SUPPORTED, msg, out);
    reply->clear();
    proto::Writer w(reply);
    w.I32(CUDA_ERROR_NOT_SUPPORTED);
    return SendFrame(link, h, proto::kReply, h.call, *reply, out);
  }
  proto::Reader in(req.payload);
  reply->clear();
  proto::Writer w(reply);
  w.I32(0);  // patched below
  std::span<const uint8_t> bulk;
  Status st = handler->fn(session, in, &w, &bulk);
  // Whether `bulk` is device-to-host data still landing (d2h_staging.h).
  D2HStaging& staging = D2HStaging::Get(session.driver());
  bool staged = staging.active();
  staging.End();
  if (!st.ok() && st.code() != Code::kCuda) {
    RGPU_LOG_ERROR("session %llu: %s: %s; closing", (unsigned long long)session.id(),
                   handler->name, st.ToString().c_str());
    return std::move(st).With(handler->name);
  }
  int cu = st.ok() ? 0 : st.cu_result();
  if (!st.ok()) RGPU_LOG_DEBUG("%s -> %d: %s", handler->name, cu, st.message().c_str());
  if (async) {
    if (cu == 0) return {};
    RGPU_RETURN_IF_ERROR(SendOutput(link, capture, out));
    return SendAsyncError(link, h, cu, std::string(handler->name) + ": " + st.message(), out);
  }
  RGPU_RETURN_IF_ERROR(SendOutput(link, capture, out));
  for (int i = 0; i < 4; ++i) (*reply)[i] = static_cast<uint8_t>(static_cast<uint32_t>(cu) >> (8 * i));
  if (bulk.empty()) return SendFrame(link, h, proto::kReply, h.call, *reply, out);
  // Large reply data (device-to-host copies) goes out from where it lies.
  out->resize(proto::kFrameHeaderSize);
  proto::EncodeFrameHeader({static_cast<uint32_t>(reply->size() + bulk.size()), h.call, proto::kReply,
                            h.request_id},
                           out->data());
  out->insert(out->end(), reply->begin(), reply->end());
  if (!staged) return link.Send(*out, bulk);
  // Staged device-to-host data: each piece is sent as soon as it has landed.
  st = link.SendStaged(*out, bulk, D2HStaging::kPiece, [&](size_t upto) { return staging.WaitFor(upto); });
  staging.Finish();
  if (st.ok() || st.code() != Code::kCuda) return st;
  // The reply already said success: the failure comes as an async error,
  // which the client reports at its next call.
  return SendAsyncError(link, h, st.cu_result(), std::string(handler->name) + ": " + st.message(), out);
}

// The session's GPUs must be distinct devices this worker sees.
Status CheckGpus(const backend::DriverTable& driver, const std::vector<int>& gpus) {
  int count = 0;
  if (driver.cuDeviceGetCount == nullptr || driver.cuDeviceGetCount(&count) != CUDA_SUCCESS)
    return Status::Internal("cuDeviceGetCount failed");
  for (size_t i = 0; i < gpus.size(); ++i) {
    if (gpus[i] < 0 || gpus[i] >= count)
      return Status::Internal("GPU ordinal " + std::to_string(gpus[i]) + " not among the " +
                              std::to_string(count) + " this worker sees");
    for (size_t j = 0; j < i; ++j)
      if (gpus[j] == gpus[i]) return Status::Internal("GPU ordinal " + std::to_string(gpus[i]) + " leased twice");
  }
  return {};
}

}  // namespace

int RunWorker(const WorkerOptions& given) {
  WorkerOptions options = given;
  SetLogTag("rgpu-worker[" + std::to_string(getpid()) + "]");
  backend::DriverTable driver;
  // Joined before the worker returns: exit must not run while it loads NVML.
  struct Joined {
    std::thread thread;
    ~Joined() {
      if (thread.joinable()) thread.join();
    }
  } nvml_preload;
  Status loaded = backend::LoadBackend(options.backend, &driver);
  // TLS: the key is read now, before the sandbox closes the file system,
  // and the random generator seeded while getrandom is certainly allowed.
  std::shared_ptr<tls::Context> tls_ctx;
  if (loaded.ok() && !options.tls_cert.empty()) {
    Result<std::shared_ptr<tls::Context>> c = tls::Context::ForServer(options.tls_cert, options.tls_key);
    if (!c.ok()) loaded = c.take_status();
    else if (tls::RandomBytes(16).empty()) loaded = Status::Internal("TLS: no random bytes");
    else tls_ctx = *c;
  }
  // Confine the worker while single-threaded: after dlopen, before cuInit
  // (the driver's threads, OutputCapture and Link then inherit everything).
  if (loaded.ok() && options.sandbox.enabled) {
    const std::string& dp = options.backend.driver_path;
    if (!dp.empty()) options.sandbox.allow_read_paths.push_back(dp.substr(0, dp.rfind('/')));
    const std::string& pp = options.backend.profile_path;
    if (!pp.empty()) options.sandbox.allow_read_paths.push_back(pp.substr(0, pp.rfind('/')));
    if (Status boxed = EnterSandbox(options.sandbox); !boxed.ok()) loaded = std::move(boxed);  // fail closed
  }
  if (loaded.ok() && (driver.cuInit == nullptr || driver.cuInit(0) != CUDA_SUCCESS))
    loaded = Status::Internal("backend " + options.backend.kind + ": cuInit failed");
  std::string secret;  // TLS: what the client must bind its session with
  proto::Codec codec = proto::Codec::kNone;  // wire compression the supervisor agreed
  if (options.control_fd >= 0) {
    // Warm: create the context now, so that a session never waits for it.
    CUdevice dev = 0;
    CUcontext ctx = nullptr;
    if (loaded.ok() && (driver.cuDeviceGet(&dev, options.device) != CUDA_SUCCESS ||
                        driver.cuDevicePrimaryCtxRetain(&ctx, dev) != CUDA_SUCCESS ||
                        driver.cuCtxSetCurrent(ctx) != CUDA_SUCCESS))
      loaded = Status::Internal("backend " + options.backend.kind + ": cannot create a context");
    if (!loaded.ok()) {
      RGPU_LOG_ERROR("warm worker: %s", loaded.ToString().c_str());
      return 1;
    }
    // Ready, with the GPU's name and memory for `rgpu status` (the
    // supervisor loads no CUDA).
    server::ControlMessage ready{server::ControlKind::kReady};
    char name[256] = {};
    size_t total = 0;
    if (driver.cuDeviceGetName && driver.cuDeviceGetName(name, sizeof name - 1, dev) == CUDA_SUCCESS)
      ready.identity = name;
    if (driver.cuDeviceTotalMem_v2 && driver.cuDeviceTotalMem_v2(&total, dev) == CUDA_SUCCESS) ready.value = total;
    if (!server::SendControl(options.control_fd, ready).ok()) return 1;
    // While the session has not come: NVML's init is slow, and its first
    // query should not pay for it. Detached: a session may start (and query
    // NVML, which then waits for this one load) before it ends.
    nvml_preload.thread = std::thread([driver, kind = options.backend.kind] { PreloadNvml(driver, kind); });
    server::ControlMessage m;
    Status st = server::ReceiveControl(options.control_fd, &m);
    // The GPU's last session ended without its wipe: scrub, then be ready again.
    while (st.ok() && m.kind == server::ControlKind::kScrub) {
      auto t0 = std::chrono::steady_clock::now();
      Result<uint64_t> scrubbed = ScrubFreeMemory(driver, options.paranoid_wipe);
      if (!scrubbed.ok()) {
        RGPU_LOG_ERROR("warm worker: %s", scrubbed.status().ToString().c_str());
        return 1;  // the supervisor starts another, which scrubs again
      }
      RGPU_LOG_INFO("gpu %d: scrubbed %.1f GiB of free memory in %.0f ms (its last session ended without its wipe)",
                    options.device, *scrubbed / double(1ull << 30),
                    std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
      if (!server::SendControl(options.control_fd, ready).ok()) return 1;
      st = server::ReceiveControl(options.control_fd, &m);
    }
    if (!st.ok() || m.kind != server::ControlKind::kAttach) return st.ok() ? 2 : 0;  // supervisor gone
    options.fd = m.fd;
    options.session_id = m.session_id;
    secret = m.secret;
    codec = static_cast<proto::Codec>(m.value);  // checked by ReceiveControl
    options.gpus = m.gpus;
  }
  if (options.gpus.empty()) options.gpus = {options.device};
  // Contexts on the session's other GPUs are created when the client first
  // uses them (its cuDevicePrimaryCtxRetain), not here: only the first GPU's
  // is warm, and a GPU the program never touches costs nothing.
  if (loaded.ok()) loaded = CheckGpus(driver, options.gpus);
  // The worker, not the supervisor, accepts the session: only now is it
  // known that the backend works, and the client gets the reason if not.
  proto::HelloReply hello;
  hello.session_id = options.session_id;
  hello.codec = static_cast<uint8_t>(codec);
  if (!loaded.ok()) {
    RGPU_LOG_ERROR("backend: %s", loaded.ToString().c_str());
    hello.status = proto::HelloStatus::kNoCapacity;
    hello.message = "GPU host cannot start a session: " + loaded.message();
  }
  // Over TLS the client first opens its session with us and proves it is
  // the one the supervisor admitted; whoever cannot gets nothing.
  std::unique_ptr<tls::Stream> tls;
  if (tls_ctx != nullptr) {
    Result<std::unique_ptr<tls::Stream>> s = AcceptBoundSession(tls_ctx, options.fd, secret, kTlsTimeoutMs);
    if (!s.ok()) {
      RGPU_LOG_WARN("session %llu: %s", (unsigned long long)options.session_id, s.status().message().c_str());
      close(options.fd);
      return 0;
    }
    tls = std::move(*s);
    RGPU_LOG_DEBUG("session %llu over %s", (unsigned long long)options.session_id, tls->Describe().c_str());
  }
  std::vector<uint8_t> hello_frame = proto::EncodeHelloReplyFrame(hello);
  Status sent = tls != nullptr ? tls->WriteAll(hello_frame.data(), hello_frame.size())
                               : net::WriteAll(options.fd, hello_frame.data(), hello_frame.size());
  if (!loaded.ok() || !sent.ok()) {
    close(options.fd);
    return loaded.ok() ? 0 : 1;
  }
  // Device output goes to the client from here on.
  auto capture = std::make_unique<OutputCapture>();
  if (Status cs = capture->Start(); !cs.ok()) {
    RGPU_LOG_WARN("device output stays on the server: %s", cs.message().c_str());
    capture.reset();
  }
  int rc = 0;
  bool wiped = true;
  {
    // A session whose GPU work never ends must not keep the card leased.
    // Declared before the link: the link's reader arms it until it stops.
    TeardownGuard guard(options.session_id,
                        std::chrono::milliseconds(static_cast<int64_t>(options.teardown_grace_s * 1e3)));
    Link link(options.fd, tls.get(), options.max_pending_bytes, codec);
    // Idle detach needs the supervisor (warm mode) and VMM in the backend.
    // The heap outlives the session's ReleaseAll (declared first).
    DeviceHeap heap(driver);
    std::unique_ptr<IdleDetacher> detacher;
    // Multi-GPU sessions stay attached: peers reach VMM memory only through
    // cuMemSetAccess grants, which the heap does not make.
    bool detach = options.control_fd >= 0 && options.detach.mode != DetachMode::kNever && options.gpus.size() <= 1;
    if (detach && !heap.Usable())
      RGPU_LOG_WARN("idle detach is off: the %s backend lacks virtual memory calls", options.backend.kind.c_str());
    Session session(driver, options.session_id, options.backend.kind, DeviceMap(options.gpus));
    session.set_link(&link);
    session.quota().set_limit(options.max_mem);
    if (detach && heap.Usable()) {
      session.set_heap(&heap);
      // The pool's GPUs are all visible to the worker: with one, a session
      // always comes back to it and never needs its modules' images again.
      int gpus = 0;
      session.set_keep_module_images(driver.cuDeviceGetCount != nullptr &&
                                     driver.cuDeviceGetCount(&gpus) == CUDA_SUCCESS && gpus > 1);
      DetachOptions detach_options = options.detach;
      detach_options.warm_device = options.device;  // its primary context moves with the session
      detacher = std::make_unique<IdleDetacher>(session, heap, options.control_fd, detach_options);
      detacher->set_client_gone([&link] { return link.ended(); });
    }
    link.Start([&guard] { guard.Arm("the client left"); });
    std::vector<uint8_t> reply, out;
    WorkerStats stats;
    for (;;) {
      Request req;
      Status why;
      stats.Waiting();
      if (detacher && !link.WaitForRequest(detacher->TickInterval())) {
        if (Status t = detacher->Tick(); !t.ok()) {
          RGPU_LOG_ERROR("session %llu: %s; closing", (unsigned long long)options.session_id, t.ToString().c_str());
          rc = 2;
          break;
        }
        continue;
      }
      if (!link.NextRequest(&req, &why)) {
        if (why.code() != Code::kTransport) {
          RGPU_LOG_ERROR("session %llu: %s; closing", (unsigned long long)options.session_id,
                         why.ToString().c_str());
          rc = 2;
        }
        break;
      }
      stats.Arrived();
      if (detacher) {
        if (Status b = detacher->BeforeRequest(); !b.ok()) {
          bool gone = b.code() == Code::kTransport;  // the client or the supervisor left
          if (gone) RGPU_LOG_INFO("session %llu: %s; closing", (unsigned long long)options.session_id, b.message().c_str());
          else RGPU_LOG_ERROR("session %llu: %s; closing", (unsigned long long)options.session_id, b.ToString().c_str());
          rc = gone ? 0 : 2;
          break;
        }
      }
      Status st = ServeOne(session, link, req, &reply, &out, capture.get());
      if (detacher) detacher->AfterRequest();
      stats.Served(options.session_id, req.header.call, (req.header.flags & proto::kNoReply) == 0);
      link.Recycle(std::move(req));
      if (!st.ok()) {
        rc = st.code() == Code::kTransport ? 0 : 2;
        break;
      }
    }
    stats.Log(options.session_id, "at session end");
    guard.Arm("the session ended");
    // Host functions still waiting must not hold the streams forever.
    link.Close();
    wiped = session.ReleaseAll(options.paranoid_wipe);
    session.set_link(nullptr);
    guard.Finished();
  }
  // Wiped and freed: the GPU can serve the next session while this process
  // destroys its context and exits. Not wiped: no kReleased, so the
  // supervisor has the card scrubbed once this process is gone.
  if (options.control_fd >= 0 && wiped) {
    (void)server::SendControl(options.control_fd, {server::ControlKind::kReleased, options.session_id});
    close(options.control_fd);
  }
  if (tls != nullptr) (void)tls->Close(100);  // close_notify: a clean end, not a cut link
  close(options.fd);
  return rc;
}

}  // namespace rgpu::worker

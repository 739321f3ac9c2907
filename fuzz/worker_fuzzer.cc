// End-to-end worker harness: a client's frame stream, fed through the
// worker's dispatch (server/worker/handlers.gen.h FindHandler, the real
// hand-written handlers and Session) over the sim backend with the recorded
// H200 profile. Bad input must give errors, never a crash, a leak or UB.
//
// Input: the bytes a client would send after the handshake, i.e. frames
// (16-byte header + payload, proto/frame.h). Each is handled as
// server/worker/worker.cc's ServeOne does (that code is private to
// worker.cc, so its few steps are repeated here; keep them in step; the
// socket side, Link and proto::FrameReader, is left out: frame_reader_fuzzer
// covers the reader):
//   decode the header with kMaxFramePayload (a bad header ends the session),
//   refuse reply-only flags, stop when the input ends inside a payload (the
//   client went away), find the handler (unknown ids are answered, not
//   fatal), run it into a reply Writer; a non-kCuda error ends the session.
// A fresh Session per input; ReleaseAll at the end (as the worker does), so
// LeakSanitizer sees what a session leaves behind.
//
// Device addresses: the sim maps device memory wherever mmap puts it, so a
// stored input cannot name an allocation by address. The harness therefore
// relocates "pointer tokens": any 8 payload bytes whose value v has
// v >> 48 == 0xFDFD are replaced, before the handler sees them, by
// allocation[(v >> 32) & 0xFFFF modulo count] + (v & 0xFFFFFFFF), where the
// allocations are the device pointers this session's MemAlloc,
// MemAllocPitch and GetGlobal replies returned, in order (PointerToken()
// below builds one; fuzz/make_seeds.cc uses it). Any other value, valid or
// not, passes through untouched.
//
// Limits that keep the harness about the code and not about host memory (the
// sim backs device memory with host pages): MemAlloc / MemAllocPitch frames
// asking for more than kMaxFuzzAlloc, or that would take the session over
// kMaxFuzzSessionBytes, are answered CUDA_ERROR_OUT_OF_MEMORY without reaching
// the handler. Everything else reaches it unchanged.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "backend/driver_table.h"
#include "common/log.h"
#include "image/image.h"
#include "proto/calls.gen.h"
#include "proto/coding.h"
#include "proto/frame.h"
#include "server/worker/handlers.gen.h"
#include "server/worker/session.h"

#ifndef RGPU_FUZZ_SIM_PROFILE
#error "RGPU_FUZZ_SIM_PROFILE must name data/driver/h200-device-profile.json"
#endif

namespace rgpu::fuzz {
namespace {

constexpr uint64_t kMaxFuzzAlloc = uint64_t{64} << 20;
constexpr uint64_t kMaxFuzzSessionBytes = uint64_t{256} << 20;

const backend::DriverTable& Driver() {
  static const backend::DriverTable* table = [] {
    if (getenv("RGPU_LOG") == nullptr) SetLogLevelForTest(LogLevel::kOff);
    auto* t = new backend::DriverTable;
    backend::BackendOptions o;
    o.kind = "sim";
    o.profile_path = RGPU_FUZZ_SIM_PROFILE;
    Status st = backend::LoadBackend(o, t);
    if (!st.ok() || t->cuInit == nullptr || t->cuInit(0) != CUDA_SUCCESS) {
      fprintf(stderr, "worker_fuzzer: sim backend: %s\n", st.ToString().c_str());
      abort();
    }
    return t;
  }();
  return *table;
}

// Triage aid, off by default: RGPU_FUZZ_WORKER_BOUND_IMAGES=1 refuses
// ModuleLoad images whose size (image::ImageSize within the frame) does not
// fit the frame, as the worker must (see fuzz/README.md, known bugs), so that
// fuzzing can go past that bug while it is open.
bool BoundImagesOnly() {
  static const bool on = getenv("RGPU_FUZZ_WORKER_BOUND_IMAGES") != nullptr;
  return on;
}

bool UnboundedImage(const proto::FrameHeader& h, std::span<const uint8_t> body) {
  if (!BoundImagesOnly() || h.call != static_cast<uint16_t>(proto::CallId::kModuleLoad)) return false;
  proto::Reader in(body);
  proto::ModuleLoadReq req;
  if (!proto::Decode(in, &req).ok()) return false;
  return !image::ImageSize(req.image.data(), req.image.size()).ok();
}

// True when an allocation request would exceed the harness's memory budget.
bool OverBudget(const worker::Session& s, const proto::FrameHeader& h,
                std::span<const uint8_t> body) {
  proto::Reader in(body);
  uint64_t want = 0;
  if (h.call == static_cast<uint16_t>(proto::CallId::kMemAlloc)) {
    proto::MemAllocReq req;
    if (!proto::Decode(in, &req).ok()) return false;  // the handler reports it
    want = req.size;
  } else if (h.call == static_cast<uint16_t>(proto::CallId::kMemAllocPitch)) {
    proto::MemAllocPitchReq req;
    if (!proto::Decode(in, &req).ok()) return false;
    // The sim rounds the pitch up; twice the width is a safe upper bound.
    if (req.width > kMaxFuzzAlloc || req.height > kMaxFuzzAlloc) return true;
    want = 2 * req.width * req.height;
  } else {
    return false;
  }
  return want > kMaxFuzzAlloc || s.bytes_allocated() + want > kMaxFuzzSessionBytes;
}

std::vector<uint64_t>& Allocations() {
  static std::vector<uint64_t> a;
  return a;
}

void Relocate(std::vector<uint8_t>* body) {
  const std::vector<uint64_t>& allocs = Allocations();
  if (allocs.empty() || body->size() < 8) return;
  uint8_t* p = body->data();
  for (size_t i = 0; i + 8 <= body->size(); ++i) {
    if (p[i + 6] != 0xFD || p[i + 7] != 0xFD) continue;
    uint64_t v = 0;
    for (int k = 0; k < 8; ++k) v |= uint64_t{p[i + k]} << (8 * k);
    uint64_t addr = allocs[((v >> 32) & 0xFFFF) % allocs.size()] + (v & 0xFFFFFFFF);
    for (int k = 0; k < 8; ++k) p[i + k] = static_cast<uint8_t>(addr >> (8 * k));
    i += 7;
  }
}

// Records the device pointer a successful allocation reply carries.
void Remember(const proto::FrameHeader& h, const std::vector<uint8_t>& reply) {
  if (reply.size() < 4 || reply[0] | reply[1] | reply[2] | reply[3]) return;
  proto::Reader r(std::span<const uint8_t>(reply).subspan(4));
  uint64_t dptr = 0;
  if (h.call == static_cast<uint16_t>(proto::CallId::kMemAlloc)) {
    proto::MemAllocRep rep;
    if (proto::Decode(r, &rep).ok()) dptr = rep.dptr;
  } else if (h.call == static_cast<uint16_t>(proto::CallId::kMemAllocPitch)) {
    proto::MemAllocPitchRep rep;
    if (proto::Decode(r, &rep).ok()) dptr = rep.dptr;
  } else if (h.call == static_cast<uint16_t>(proto::CallId::kGetGlobal)) {
    proto::GetGlobalRep rep;
    if (proto::Decode(r, &rep).ok()) dptr = rep.dptr;
  }
  if (dptr != 0) Allocations().push_back(dptr);
}

// worker.cc ServeOne, minus the socket: false when the session must end.
bool ServeOne(worker::Session& session, const proto::FrameHeader& h,
              std::span<const uint8_t> body, std::vector<uint8_t>* reply) {
  reply->clear();
  proto::Writer w(reply);
  const worker::HandlerEntry* handler = worker::FindHandler(h.call);
  if (handler == nullptr) {
    w.I32(CUDA_ERROR_NOT_SUPPORTED);
    return true;
  }
  if (OverBudget(session, h, body)) {
    w.I32(CUDA_ERROR_OUT_OF_MEMORY);
    return true;
  }
  if (UnboundedImage(h, body)) {
    w.I32(CUDA_ERROR_INVALID_IMAGE);
    return true;
  }
  proto::Reader in(body);
  w.I32(0);
  std::span<const uint8_t> bulk;  // large reply data, sent from where it lies
  Status st = handler->fn(session, in, &w, &bulk);
  if (!st.ok() && st.code() != Code::kCuda) return false;
  int cu = st.ok() ? 0 : st.cu_result();
  for (int i = 0; i < 4; ++i) (*reply)[i] = static_cast<uint8_t>(static_cast<uint32_t>(cu) >> (8 * i));
  return true;
}

}  // namespace
}  // namespace rgpu::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)rgpu::fuzz::Driver();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace rgpu;
  worker::Session session(fuzz::Driver(), /*session_id=*/1, "sim");
  fuzz::Allocations().clear();
  std::vector<uint8_t> reply;
  size_t at = 0;
  while (size - at >= proto::kFrameHeaderSize) {
    proto::FrameHeader h;
    if (!proto::DecodeFrameHeader(data + at, proto::kMaxFramePayload, &h).ok()) break;
    if (h.flags & (proto::kReply | proto::kAsyncError | proto::kEvent)) break;
    at += proto::kFrameHeaderSize;
    if (h.length > size - at) break;  // the client went away mid-frame
    // A copy of exactly the payload (the worker's body buffer), so that ASan
    // sees any read past it.
    std::vector<uint8_t> body(data + at, data + at + h.length);
    at += h.length;
    fuzz::Relocate(&body);
    if (!fuzz::ServeOne(session, h, body, &reply)) break;
    fuzz::Remember(h, reply);
  }
  session.ReleaseAll();
  return 0;
}

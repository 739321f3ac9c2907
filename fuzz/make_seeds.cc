// Writes the seed corpus of the protocol harnesses: small valid inputs
// encoded with the real Writer / Encode functions, so that the fuzzers start
// from messages the code accepts and mutate from there.
//
// Usage: make_seeds OUT_DIR KERNELS_CUBIN KERNELS_FATBIN
//   writes OUT_DIR/{frame,frame_reader,handshake,calls,device_info,worker}/<name>
//   (fuzz/make_corpus.sh runs it, together with nvcc for the image corpora).
// The cubin / fatbin are fuzz/seeds/kernels.cu built for sm_90; the worker
// seeds load them into the sim and launch its kernels.
#include <cuda.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "fuzz/calls_fuzzer.h"
#include "fuzz/worker_fuzzer.h"
#include "proto/calls.gen.h"
#include "proto/coding.h"
#include "proto/device_info.h"
#include "proto/frame.h"
#include "proto/handshake.h"
#include "proto/version.h"

namespace rgpu::fuzz {
namespace {

using Bytes = std::vector<uint8_t>;
std::string g_out;

void Write(const std::string& harness, const std::string& name, const Bytes& data) {
  std::string dir = g_out + "/" + harness;
  mkdir(g_out.c_str(), 0755);
  mkdir(dir.c_str(), 0755);
  std::ofstream f(dir + "/" + name, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
  if (!f) {
    fprintf(stderr, "make_seeds: cannot write %s/%s\n", dir.c_str(), name.c_str());
    exit(1);
  }
}

Bytes ReadFile(const char* path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    fprintf(stderr, "make_seeds: cannot read %s\n", path);
    exit(1);
  }
  return Bytes(std::istreambuf_iterator<char>(f), {});
}

// ---- frame, handshake, device info -------------------------------------------

proto::Hello SampleHello() {
  proto::Hello h;
  h.magic = proto::kHelloMagic;
  h.version = proto::kProtocolVersion;
  h.token = "0123456789abcdef0123456789abcdef";
  h.identity = "alice@client pid=4242 exe=/usr/bin/python3";
  h.gpus_wanted = 1;
  return h;
}

void FrameSeeds() {
  Write("frame", "hello", proto::EncodeHelloFrame(SampleHello()));
  Bytes stream;
  proto::AppendFrame({0, 1, 0, 7}, {}, &stream);  // Ping
  Bytes payload = {1, 0, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0, 0, 0, 0, 0};
  proto::AppendFrame({0, 14, 0, 8}, payload, &stream);
  proto::AppendFrame({0, 16, proto::kNoReply, 9}, payload, &stream);
  proto::AppendFrame({0, 14, proto::kReply, 8}, Bytes{0, 0, 0, 0}, &stream);
  Write("frame", "stream", stream);
  // frame_reader: byte 0 sizes the reader's buffer (16 + 4 * byte).
  Bytes big(300, 0x5a);
  proto::AppendFrame({0, 18, proto::kNoReply, 10}, big, &stream);
  for (uint8_t size_byte : {0, 4, 255}) {
    Bytes in = {size_byte};
    in.insert(in.end(), stream.begin(), stream.end());
    Write("frame_reader", "stream_buffer" + std::to_string(16 + 4 * size_byte), in);
  }
}

void HandshakeSeeds() {
  auto payload_of = [](const Bytes& frame, uint8_t selector) {
    Bytes in = {selector};
    in.insert(in.end(), frame.begin() + proto::kFrameHeaderSize, frame.end());
    return in;
  };
  Write("handshake", "hello", payload_of(proto::EncodeHelloFrame(SampleHello()), 0));
  proto::Hello empty;
  empty.magic = proto::kHelloMagic;
  Write("handshake", "hello_empty", payload_of(proto::EncodeHelloFrame(empty), 0));
  proto::HelloReply ok;
  ok.session_id = 77;
  Write("handshake", "reply_ok", payload_of(proto::EncodeHelloReplyFrame(ok), 1));
  proto::HelloReply no;
  no.status = proto::HelloStatus::kBadToken;
  no.message = "wrong token";
  Write("handshake", "reply_refused", payload_of(proto::EncodeHelloReplyFrame(no), 1));
  std::string secret(proto::kHandOverSecretSize, '\0');
  for (size_t i = 0; i < secret.size(); ++i) secret[i] = static_cast<char>(i);
  Write("handshake", "handover", payload_of(proto::EncodeHandOverFrame(secret), 2));
  Write("handshake", "bind", payload_of(proto::EncodeBindFrame(secret), 3));
}

void DeviceInfoSeeds() {
  proto::DeviceInfo info;
  info.driver_version = 13000;
  info.backend = "sim";
  for (int i = 0; i < 2; ++i) {
    proto::DeviceFacts d;
    d.name = "NVIDIA H200";
    for (int k = 0; k < 16; ++k) d.uuid[k] = static_cast<uint8_t>(k * 17 + i);
    d.total_mem = uint64_t{150} << 30;
    d.pci_bus_id = i == 0 ? "0000:19:00.0" : "0000:3b:00.0";
    d.attributes.assign(160, 0);
    for (int a = 1; a < 160; ++a) d.attributes[a] = a * 3;
    d.stream_priority_least = 0;
    d.stream_priority_greatest = -5;
    info.devices.push_back(d);
  }
  Write("device_info", "two_devices", proto::EncodeDeviceInfo(info));
  info.devices.clear();
  Write("device_info", "no_device", proto::EncodeDeviceInfo(info));
}

void CallsSeeds() {
  ForEachSeed([](int index, const std::string& name, const Bytes& payload) {
    Write("calls", name, CallsFuzzerInput(index, payload));
  });
}

// ---- worker frame sequences ------------------------------------------------

class Session {
 public:
  template <class M>
  Session& Call(proto::CallId id, const M& m) {
    Bytes payload;
    proto::Writer w(&payload);
    proto::Encode(w, m);
    const proto::CallInfo* info = proto::FindCall(static_cast<uint16_t>(id));
    uint16_t flags = info != nullptr && info->async ? proto::kNoReply : 0;
    proto::AppendFrame({0, static_cast<uint16_t>(id), flags, ++request_id_}, payload, &stream_);
    return *this;
  }
  const Bytes& bytes() const { return stream_; }

 private:
  Bytes stream_;
  uint64_t request_id_ = 0;
};

constexpr uint64_t kCtx = 1;
using proto::CallId;

Session Retained() {
  Session s;
  s.Call(CallId::kPing, proto::PingReq{});
  s.Call(CallId::kPrimaryCtxRetain, proto::PrimaryCtxRetainReq{kCtx, 0});
  return s;
}

Bytes Le32(std::initializer_list<uint32_t> v) {
  Bytes out;
  proto::Writer w(&out);
  for (uint32_t x : v) w.U32(x);
  return out;
}

void WorkerSeeds(const Bytes& cubin, const Bytes& fatbin) {
  static const uint8_t kData[256] = {1, 2, 3, 4, 5, 6, 7, 8};
  std::span<const uint8_t> data(kData, sizeof kData);
  {
    Session s;
    s.Call(CallId::kPing, proto::PingReq{});
    s.Call(CallId::kGetDeviceInfo, proto::GetDeviceInfoReq{});
    Write("worker", "device_info", s.bytes());
  }
  {
    Session s = Retained();
    s.Call(CallId::kMemAlloc, proto::MemAllocReq{kCtx, 4096});
    proto::MemcpyHtoDReq h2d{kCtx, 0, 0, PointerToken(0, 0), data};
    s.Call(CallId::kMemcpyHtoD, h2d);
    h2d.is_async = 1;
    h2d.dst = PointerToken(0, 1024);
    s.Call(CallId::kMemcpyHtoD, h2d);
    s.Call(CallId::kMemcpyDtoH, proto::MemcpyDtoHReq{kCtx, 0, 0, PointerToken(0, 0), 256});
    s.Call(CallId::kMemcpyDtoD,
           proto::MemcpyDtoDReq{kCtx, 0, 0, PointerToken(0, 2048), PointerToken(0, 0), 256});
    proto::MemsetReq ms{};
    ms.ctx = kCtx;
    ms.dst = PointerToken(0, 512);
    ms.value = 0x7f;
    ms.elem_size = 4;
    ms.width = 64;
    ms.height = 1;
    s.Call(CallId::kMemset, ms);
    s.Call(CallId::kMemGetInfo, proto::MemGetInfoReq{kCtx});
    s.Call(CallId::kMemFree, proto::MemFreeReq{kCtx, PointerToken(0, 0)});
    s.Call(CallId::kPrimaryCtxRelease, proto::PrimaryCtxReleaseReq{kCtx, 0});
    Write("worker", "memory", s.bytes());
  }
  {
    Session s = Retained();
    s.Call(CallId::kMemAllocPitch, proto::MemAllocPitchReq{kCtx, 100, 8, 4});
    proto::MemsetReq ms{};
    ms.ctx = kCtx;
    ms.dst = PointerToken(0, 0);
    ms.pitch = 512;
    ms.value = 1;
    ms.elem_size = 2;
    ms.width = 40;
    ms.height = 8;
    s.Call(CallId::kMemset, ms);
    proto::Memcpy3DReq c{};
    c.ctx = kCtx;
    c.src_type = CU_MEMORYTYPE_HOST;
    c.dst_type = CU_MEMORYTYPE_DEVICE;
    c.dst_dev = PointerToken(0, 0);
    c.dst_pitch = 512;
    c.width_bytes = 32;
    c.height = 8;
    c.depth = 1;
    c.data = data;
    s.Call(CallId::kMemcpy3D, c);
    c = {};
    c.ctx = kCtx;
    c.src_type = CU_MEMORYTYPE_DEVICE;
    c.src_dev = PointerToken(0, 0);
    c.src_x = 4;
    c.src_y = 1;
    c.src_pitch = 512;
    c.dst_type = CU_MEMORYTYPE_HOST;
    c.width_bytes = 16;
    c.height = 4;
    c.depth = 1;
    s.Call(CallId::kMemcpy3D, c);
    Write("worker", "pitched", s.bytes());
  }
  {
    Session s = Retained();
    s.Call(CallId::kStreamCreate, proto::StreamCreateReq{kCtx, 16, 1, 0});
    s.Call(CallId::kEventCreate, proto::EventCreateReq{kCtx, 32, 0});
    s.Call(CallId::kEventCreate, proto::EventCreateReq{kCtx, 48, 0});
    s.Call(CallId::kEventRecord, proto::EventRecordReq{kCtx, 32, 16, 0});
    s.Call(CallId::kStreamWaitEvent, proto::StreamWaitEventReq{kCtx, 0, 32, 0});
    s.Call(CallId::kEventRecord, proto::EventRecordReq{kCtx, 48, 0, 0});
    s.Call(CallId::kStreamQuery, proto::StreamQueryReq{kCtx, 16});
    s.Call(CallId::kStreamSynchronize, proto::StreamSynchronizeReq{kCtx, 16});
    s.Call(CallId::kEventSynchronize, proto::EventSynchronizeReq{kCtx, 48});
    s.Call(CallId::kEventQuery, proto::EventQueryReq{kCtx, 32});
    s.Call(CallId::kEventElapsedTime, proto::EventElapsedTimeReq{kCtx, 32, 48});
    s.Call(CallId::kEventDestroy, proto::EventDestroyReq{kCtx, 48});
    s.Call(CallId::kStreamDestroy, proto::StreamDestroyReq{kCtx, 16});
    s.Call(CallId::kCtxSynchronize, proto::CtxSynchronizeReq{kCtx});
    s.Call(CallId::kCtxSetLimit, proto::CtxSetLimitReq{kCtx, CU_LIMIT_STACK_SIZE, 2048});
    s.Call(CallId::kCtxGetLimit, proto::CtxGetLimitReq{kCtx, CU_LIMIT_STACK_SIZE});
    s.Call(CallId::kCtxSetCacheConfig, proto::CtxSetCacheConfigReq{kCtx, 1});
    s.Call(CallId::kCtxGetStreamPriorityRange, proto::CtxGetStreamPriorityRangeReq{kCtx});
    s.Call(CallId::kCtxGetFlags, proto::CtxGetFlagsReq{kCtx});
    Write("worker", "streams_events", s.bytes());
  }
  {
    Session s;
    s.Call(CallId::kPrimaryCtxSetFlags, proto::PrimaryCtxSetFlagsReq{0, 4});
    s.Call(CallId::kCtxCreate, proto::CtxCreateReq{2, 0, 0});
    s.Call(CallId::kMemAlloc, proto::MemAllocReq{2, 1 << 20});
    s.Call(CallId::kStreamCreate, proto::StreamCreateReq{2, 16, 0, 0});
    s.Call(CallId::kCtxDestroy, proto::CtxDestroyReq{2});
    s.Call(CallId::kPrimaryCtxRetain, proto::PrimaryCtxRetainReq{kCtx, 0});
    s.Call(CallId::kPrimaryCtxReset, proto::PrimaryCtxResetReq{kCtx, 0});
    Write("worker", "contexts", s.bytes());
  }
  for (int library = 0; library < 2; ++library) {
    Session s = Retained();
    const Bytes& image = library ? fatbin : cubin;
    s.Call(CallId::kModuleLoad, proto::ModuleLoadReq{kCtx, 64, static_cast<uint8_t>(library),
                                                     0x1234, image});
    s.Call(CallId::kGetFunction, proto::GetFunctionReq{kCtx, 64, 80, "_Z9vectorAddPKfS0_Pfi"});
    s.Call(CallId::kGetFunction, proto::GetFunctionReq{kCtx, 64, 96, "multiplyByGlobal"});
    s.Call(CallId::kGetGlobal, proto::GetGlobalReq{kCtx, 64, "g_factor"});  // allocation 0
    for (int i = 0; i < 3; ++i) s.Call(CallId::kMemAlloc, proto::MemAllocReq{kCtx, 1024});
    s.Call(CallId::kMemcpyHtoD, proto::MemcpyHtoDReq{kCtx, 0, 0, PointerToken(1, 0), data});
    Bytes params;
    proto::Writer pw(&params);
    pw.U64(PointerToken(1, 0));
    pw.U64(PointerToken(2, 0));
    pw.U64(PointerToken(3, 0));
    pw.I32(64);
    proto::LaunchKernelReq launch{};
    launch.ctx = kCtx;
    launch.func = 80;
    launch.gx = 1;
    launch.gy = launch.gz = launch.by = launch.bz = 1;
    launch.bx = 64;
    launch.params = params;
    s.Call(CallId::kLaunchKernel, launch);
    Bytes params2;
    proto::Writer pw2(&params2);
    pw2.U64(PointerToken(3, 0));
    pw2.I32(64);
    launch.func = 96;
    launch.params = params2;
    // One launch attribute (u32 count, then u32 id + 64-byte value).
    Bytes attrs = Le32({1, CU_LAUNCH_ATTRIBUTE_PRIORITY, 1});
    attrs.resize(4 + 4 + 64);
    launch.attrs = attrs;
    s.Call(CallId::kLaunchKernel, launch);
    s.Call(CallId::kMemcpyDtoH, proto::MemcpyDtoHReq{kCtx, 0, 0, PointerToken(3, 0), 256});
    s.Call(CallId::kFuncSetAttribute,
           proto::FuncSetAttributeReq{kCtx, 80, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, 1024});
    s.Call(CallId::kFuncSetCacheConfig, proto::FuncSetCacheConfigReq{kCtx, 80, 2});
    s.Call(CallId::kOccupancyMaxActiveBlocks,
           proto::OccupancyMaxActiveBlocksReq{kCtx, 80, 256, 0, 0});
    s.Call(CallId::kModuleUnload, proto::ModuleUnloadReq{kCtx, 64});
    Write("worker", library ? "library_launch" : "module_launch", s.bytes());
  }
  {
    Session s = Retained();
    s.Call(CallId::kModuleLoad, proto::ModuleLoadReq{kCtx, 64, 0, 1, cubin});
    s.Call(CallId::kGetFunction, proto::GetFunctionReq{kCtx, 64, 80, "multiplyByGlobal"});
    s.Call(CallId::kMemAlloc, proto::MemAllocReq{kCtx, 1024});
    s.Call(CallId::kStreamCreate, proto::StreamCreateReq{kCtx, 16, 1, 0});
    s.Call(CallId::kStreamBeginCapture, proto::StreamBeginCaptureReq{kCtx, 16, 0});
    Bytes params;
    proto::Writer pw(&params);
    pw.U64(PointerToken(0, 0));
    pw.I32(16);
    proto::LaunchKernelReq launch{};
    launch.ctx = kCtx;
    launch.func = 80;
    launch.gx = launch.gy = launch.gz = launch.by = launch.bz = 1;
    launch.bx = 16;
    launch.stream = 16;
    launch.params = params;
    s.Call(CallId::kLaunchKernel, launch);
    s.Call(CallId::kStreamEndCapture, proto::StreamEndCaptureReq{kCtx, 16, 200});
    s.Call(CallId::kGraphInstantiate, proto::GraphInstantiateReq{kCtx, 200, 300, 0});
    s.Call(CallId::kGraphUpload, proto::GraphUploadReq{kCtx, 300, 16});
    s.Call(CallId::kGraphLaunch, proto::GraphLaunchReq{kCtx, 300, 16});
    s.Call(CallId::kStreamSynchronize, proto::StreamSynchronizeReq{kCtx, 16});
    s.Call(CallId::kGraphExecDestroy, proto::GraphExecDestroyReq{kCtx, 300});
    s.Call(CallId::kGraphDestroy, proto::GraphDestroyReq{kCtx, 200});
    Write("worker", "graph", s.bytes());
  }
}

}  // namespace
}  // namespace rgpu::fuzz

int main(int argc, char** argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: make_seeds OUT_DIR KERNELS_CUBIN KERNELS_FATBIN\n");
    return 2;
  }
  using namespace rgpu::fuzz;
  g_out = argv[1];
  FrameSeeds();
  HandshakeSeeds();
  DeviceInfoSeeds();
  CallsSeeds();
  WorkerSeeds(ReadFile(argv[2]), ReadFile(argv[3]));
  return 0;
}

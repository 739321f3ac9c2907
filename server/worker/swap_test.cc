// DeviceHeap and IdleDetacher over the sim backend: memory leaves the card
// and comes back at the same addresses with its contents; what stays behind
// on the card reads as zero; small allocations share chunks; the detacher
// follows its policy and speaks the control protocol; a detached session
// moves to another GPU (SessionMover) with its memory at the same addresses
// and its streams, events, modules, functions and module globals made again
// behind the same ids, unless something it holds pins it to its own GPU;
// the swap store is pinned in pieces, in the background.
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "server/supervisor/control.h"
#include "server/worker/device_heap.h"
#include "server/worker/session.h"
#include "server/worker/swap.h"
#include "server/worker/swap_store.h"

namespace rgpu::worker {
namespace {

class SwapTest : public ::testing::Test {
 protected:
  void SetUp() override {
    backend::BackendOptions o;
    o.kind = "sim";
    o.profile_path = RGPU_SIM_PROFILE;
    o.sim_gpus = gpus_;
    ASSERT_TRUE(backend::LoadBackend(o, &d_).ok());
    ASSERT_EQ(d_.cuInit(0), CUDA_SUCCESS);
    CUdevice dev = 0;
    ASSERT_EQ(d_.cuDeviceGet(&dev, 0), CUDA_SUCCESS);
    ASSERT_EQ(d_.cuDevicePrimaryCtxRetain(&ctx_, dev), CUDA_SUCCESS);
    ASSERT_EQ(d_.cuCtxSetCurrent(ctx_), CUDA_SUCCESS);
  }
  void TearDown() override {
    CUdevice dev = 0;
    d_.cuDeviceGet(&dev, 0);
    d_.cuDevicePrimaryCtxRelease_v2(dev);
  }
  void Fill(CUdeviceptr p, size_t n, uint8_t seed) {
    std::vector<uint8_t> h(n);
    for (size_t i = 0; i < n; ++i) h[i] = static_cast<uint8_t>(seed + i * 13);
    ASSERT_EQ(d_.cuMemcpyHtoD_v2(p, h.data(), n), CUDA_SUCCESS);
  }
  // -1: intact; else the first wrong byte.
  long Check(CUdeviceptr p, size_t n, uint8_t seed) {
    std::vector<uint8_t> h(n, 0xee);
    if (d_.cuMemcpyDtoH_v2(h.data(), p, n) != CUDA_SUCCESS) return 0;
    for (size_t i = 0; i < n; ++i)
      if (h[i] != static_cast<uint8_t>(seed + i * 13)) return static_cast<long>(i);
    return -1;
  }
  bool AllZero(CUdeviceptr p, size_t n) {
    std::vector<uint8_t> h(n, 0xee);
    if (d_.cuMemcpyDtoH_v2(h.data(), p, n) != CUDA_SUCCESS) return false;
    for (uint8_t b : h)
      if (b != 0) return false;
    return true;
  }
  backend::DriverTable d_;
  CUcontext ctx_ = nullptr;
  int gpus_ = 1;
};

TEST_F(SwapTest, SmallAllocationsShareOneChunk) {
  DeviceHeap heap(d_);
  ASSERT_TRUE(heap.Usable());
  std::vector<CUdeviceptr> ps;
  for (int i = 0; i < 100; ++i) {
    Result<CUdeviceptr> p = heap.Alloc(4);
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    EXPECT_EQ(*p % 512, 0u);
    ps.push_back(*p);
  }
  EXPECT_EQ(heap.chunk_bytes(), 2u << 20) << "100 tiny allocations fit one 2 MiB chunk";
  for (CUdeviceptr p : ps) ASSERT_TRUE(heap.Free(p).ok());
  // Freed ranges merge: a 1 MiB - 512 allocation fits where they were.
  Result<CUdeviceptr> big = heap.Alloc((1u << 20) - 512);
  ASSERT_TRUE(big.ok());
  EXPECT_EQ(*big, ps[0]);
  EXPECT_EQ(heap.chunk_bytes(), 2u << 20);
  EXPECT_FALSE(heap.Free(*big + 512).ok()) << "only allocation bases are freed";
}

TEST_F(SwapTest, MemoryBelongsToItsContext) {
  DeviceHeap heap(d_);
  Result<CUdeviceptr> a = heap.Alloc(64);
  ASSERT_TRUE(a.ok());
  CUcontext other = nullptr;
  CUdevice dev = 0;
  ASSERT_EQ(d_.cuDeviceGet(&dev, 0), CUDA_SUCCESS);
  ASSERT_EQ(d_.cuCtxCreate_v4(&other, nullptr, 0, dev), CUDA_SUCCESS);
  ASSERT_EQ(d_.cuCtxSetCurrent(other), CUDA_SUCCESS);
  Result<CUdeviceptr> b = heap.Alloc(64), c = heap.Alloc(3u << 20);
  ASSERT_TRUE(b.ok() && c.ok());
  EXPECT_EQ(heap.chunk_bytes(), 8u << 20) << "a slab per context, and the large chunk";
  std::vector<CUdeviceptr> gone = heap.ForgetContext(other);
  EXPECT_EQ(gone.size(), 2u);
  EXPECT_FALSE(heap.Owns(*b));
  EXPECT_TRUE(heap.Owns(*a));
  EXPECT_EQ(heap.chunk_bytes(), 2u << 20);
  ASSERT_EQ(d_.cuCtxDestroy_v2(other), CUDA_SUCCESS);
  ASSERT_EQ(d_.cuCtxSetCurrent(ctx_), CUDA_SUCCESS);
  EXPECT_TRUE(heap.Free(*a).ok());
}

TEST_F(SwapTest, SwapOutWipesAndSwapInRestoresAtTheSameAddresses) {
  DeviceHeap heap(d_);
  Result<CUdeviceptr> small = heap.Alloc(1000), large = heap.Alloc(5u << 20);
  ASSERT_TRUE(small.ok() && large.ok());
  Fill(*small, 1000, 1);
  Fill(*large, 5u << 20, 7);
  Result<uint64_t> out = heap.SwapOut(/*paranoid_wipe=*/true);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(*out, (2u << 20) + (6u << 20));
  EXPECT_TRUE(heap.swapped_out());
  // The sim keeps the reserved range addressable: it must read as zero now.
  EXPECT_TRUE(AllZero(*large, 5u << 20));
  EXPECT_TRUE(AllZero(*small, 1000));
  EXPECT_FALSE(heap.Alloc(16).ok()) << "no allocation while swapped out";
  Result<uint64_t> in = heap.SwapIn();
  ASSERT_TRUE(in.ok()) << in.status().ToString();
  EXPECT_EQ(*in, *out);
  EXPECT_EQ(Check(*small, 1000, 1), -1);
  EXPECT_EQ(Check(*large, 5u << 20, 7), -1);
  // And again: the swap store is reused.
  Fill(*large, 5u << 20, 9);
  ASSERT_TRUE(heap.SwapOut(false).ok());
  ASSERT_TRUE(heap.SwapIn().ok());
  EXPECT_EQ(Check(*large, 5u << 20, 9), -1);
  EXPECT_TRUE(heap.Free(*large).ok());
  EXPECT_EQ(heap.chunk_bytes(), 2u << 20);
}

TEST_F(SwapTest, DetacherFollowsPolicyAndTheControlProtocol) {
  int fds[2];
  ASSERT_TRUE(server::ControlPair(fds).ok());
  {
    DeviceHeap heap(d_);
    Session session(d_, 42, "sim");
    session.set_heap(&heap);
    session.set_keep_module_images(true);
    ASSERT_TRUE(session.AddContext(1, ctx_, /*primary=*/false, 0).ok());
    Result<CUdeviceptr> p = heap.Alloc(3u << 20);
    ASSERT_TRUE(p.ok());
    session.AddAllocation(*p, 3u << 20, /*owned=*/false);
    Fill(*p, 3u << 20, 3);
    DetachOptions o;
    o.mode = DetachMode::kWaiting;
    o.idle_timeout_s = 0.05;
    IdleDetacher det(session, heap, fds[1], o);
    std::this_thread::sleep_for(std::chrono::milliseconds(80));
    ASSERT_TRUE(det.Tick().ok());
    EXPECT_FALSE(det.detached()) << "mode waiting: nobody waits yet";
    ASSERT_TRUE(server::SendControl(fds[0], {server::ControlKind::kWaiting, 0, "", -1, 1}).ok());
    ASSERT_TRUE(det.Tick().ok());
    ASSERT_TRUE(det.detached());
    // The supervisor hears of usage and of the detach, with the bytes moved.
    bool saw_detached = false;
    for (int i = 0; i < 4 && !saw_detached; ++i) {
      server::ControlMessage m;
      ASSERT_TRUE(server::ReceiveControl(fds[0], &m).ok());
      if (m.kind == server::ControlKind::kDetached) {
        saw_detached = true;
        EXPECT_EQ(m.session_id, 42u);
        EXPECT_EQ(m.value, 4u << 20);
      }
    }
    EXPECT_TRUE(saw_detached);
    EXPECT_TRUE(AllZero(*p, 3u << 20));
    // The next request reattaches once the supervisor says so.
    std::thread sup([&] {
      server::ControlMessage m;
      while (server::ReceiveControl(fds[0], &m).ok() && m.kind != server::ControlKind::kReattach) {
      }
      EXPECT_EQ(m.kind, server::ControlKind::kReattach);
      EXPECT_TRUE(server::SendControl(fds[0], {server::ControlKind::kResume, 42}).ok());
    });
    ASSERT_TRUE(det.BeforeRequest().ok());
    sup.join();
    EXPECT_FALSE(det.detached());
    EXPECT_EQ(Check(*p, 3u << 20, 3), -1);
    det.AfterRequest();
    session.RemoveContext(1);
  }
  close(fds[0]);
  close(fds[1]);
}

TEST_F(SwapTest, GraphsKeepASessionAttached) {
  int fds[2];
  ASSERT_TRUE(server::ControlPair(fds).ok());
  {
    DeviceHeap heap(d_);
    Session session(d_, 7, "sim");
    session.set_heap(&heap);
    session.set_keep_module_images(true);
    ASSERT_TRUE(session.AddContext(1, ctx_, false, 0).ok());
    CUgraph g = nullptr;
    ASSERT_TRUE(session.AddGraph(5, g).ok());
    DetachOptions o;
    o.mode = DetachMode::kAlways;
    o.idle_timeout_s = 0.01;
    IdleDetacher det(session, heap, fds[1], o);
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    ASSERT_TRUE(det.Tick().ok());
    EXPECT_FALSE(det.detached());
    (void)session.TakeGraph(5);
    ASSERT_TRUE(det.Tick().ok());
    EXPECT_TRUE(det.detached()) << "mode always: detached once nothing blocks it";
    session.RemoveContext(1);
  }
  close(fds[0]);
  close(fds[1]);
}

// Two sim GPUs of one type; the fixture's retain of GPU 0's primary context
// plays the worker's warm retain.
class MoveTest : public SwapTest {
 protected:
  MoveTest() { gpus_ = 2; }
  static std::shared_ptr<const std::vector<uint8_t>> Image(const char* name) {
    std::ifstream in(std::string(RGPU_IMAGE_TESTDATA) + "/" + name, std::ios::binary);
    return std::make_shared<const std::vector<uint8_t>>(std::istreambuf_iterator<char>(in),
                                                        std::istreambuf_iterator<char>());
  }
  // A session on GPU 0 with heap memory, a stream, an event, a module
  // (sample.fatbin: globals g_counter, g_table, c_coef) and a function with
  // an attribute set; g_counter holds 1234.
  void Build(Session& session, DeviceHeap& heap, CUdeviceptr* big, CUdeviceptr* tiny) {
    session.set_heap(&heap);
    session.set_keep_module_images(true);
    CUdevice dev0 = 0;
    CUcontext ctx = nullptr;
    ASSERT_EQ(d_.cuDeviceGet(&dev0, 0), CUDA_SUCCESS);
    ASSERT_EQ(d_.cuDevicePrimaryCtxRetain(&ctx, dev0), CUDA_SUCCESS);  // the client's retain
    ASSERT_TRUE(session.AddContext(1, ctx, /*primary=*/true, 0).ok());
    ASSERT_TRUE(session.UseContext(1).ok());
    Result<CUdeviceptr> p = heap.Alloc(3u << 20), q = heap.Alloc(4);
    ASSERT_TRUE(p.ok() && q.ok());
    session.AddAllocation(*p, 3u << 20, /*owned=*/false);
    session.AddAllocation(*q, 4, /*owned=*/false);
    Fill(*p, 3u << 20, 5);
    Fill(*q, 4, 9);
    *big = *p;
    *tiny = *q;
    CUstream st = nullptr;
    ASSERT_EQ(d_.cuStreamCreateWithPriority(&st, CU_STREAM_NON_BLOCKING, -1), CUDA_SUCCESS);
    ASSERT_TRUE(session.AddStream(10, st, CU_STREAM_NON_BLOCKING, -1).ok());
    CUevent ev = nullptr;
    ASSERT_EQ(d_.cuEventCreate(&ev, CU_EVENT_DISABLE_TIMING), CUDA_SUCCESS);
    ASSERT_TRUE(session.AddEvent(20, ev, CU_EVENT_DISABLE_TIMING).ok());
    ModuleEntry m;
    m.image = Image("sample.fatbin");
    ASSERT_GT(m.image->size(), 0u) << "image/testdata not built";
    ASSERT_EQ(d_.cuModuleLoadData(&m.module, m.image->data()), CUDA_SUCCESS);
    m.ctx = ctx;
    m.ctx_id = 1;
    ASSERT_TRUE(session.AddModule(30, m).ok());
    FunctionEntry f;
    f.module = 30;
    f.name = "_Z8bigparam3BigPi";
    ASSERT_EQ(d_.cuModuleGetFunction(&f.fn, m.module, f.name.c_str()), CUDA_SUCCESS);
    ASSERT_EQ(d_.cuFuncSetAttribute(f.fn, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, 1024), CUDA_SUCCESS);
    f.attrs[CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES] = 1024;
    ASSERT_TRUE(session.AddFunction(40, f).ok());
    CUdeviceptr g = 0;
    size_t gs = 0;
    ASSERT_EQ(d_.cuModuleGetGlobal_v2(&g, &gs, m.module, "g_counter"), CUDA_SUCCESS);
    int v = 1234;
    ASSERT_EQ(d_.cuMemcpyHtoD_v2(g, &v, sizeof v), CUDA_SUCCESS);
    // The same image as a library, with a kernel whose attribute is set
    // per device (cudart's way of loading code).
    ModuleEntry lib;
    lib.is_library = true;
    lib.image = m.image;
    ASSERT_EQ(d_.cuLibraryLoadData(&lib.library, lib.image->data(), nullptr, nullptr, 0, nullptr, nullptr, 0),
              CUDA_SUCCESS);
    lib.ctx = ctx;
    lib.ctx_id = 1;
    ASSERT_TRUE(session.AddModule(31, lib).ok());
    FunctionEntry k;
    k.module = 31;
    k.name = "_Z8bigparam3BigPi";
    ASSERT_EQ(d_.cuLibraryGetKernel(&k.kernel, lib.library, k.name.c_str()), CUDA_SUCCESS);
    ASSERT_EQ(d_.cuKernelSetAttribute(CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, 2048, k.kernel, dev0),
              CUDA_SUCCESS);
    k.attrs[CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES] = 2048;
    ASSERT_TRUE(session.AddFunction(41, k).ok());
  }
  // Detaches, then reattaches with a supervisor that answers kResume with
  // `gpus`; returns kReattach's value (1: the session said it can move).
  uint64_t DetachAndResume(Session& session, DeviceHeap& heap, std::vector<int> gpus) {
    int fds[2];
    EXPECT_TRUE(server::ControlPair(fds).ok());
    DetachOptions o;
    o.mode = DetachMode::kAlways;
    o.idle_timeout_s = 0.01;
    o.warm_device = 0;
    uint64_t can_move = 99;
    {
      IdleDetacher det(session, heap, fds[1], o);
      std::this_thread::sleep_for(std::chrono::milliseconds(30));
      EXPECT_TRUE(det.Tick().ok());
      EXPECT_TRUE(det.detached());
      if (!det.detached()) {  // nothing to resume: no kReattach will come
        close(fds[0]);
        close(fds[1]);
        return can_move;
      }
      std::thread sup([&] {
        server::ControlMessage m;
        while (server::ReceiveControl(fds[0], &m).ok() && m.kind != server::ControlKind::kReattach) {
        }
        can_move = m.value;
        server::ControlMessage resume{server::ControlKind::kResume, session.id()};
        resume.gpus = gpus;
        EXPECT_TRUE(server::SendControl(fds[0], resume).ok());
      });
      Status st = det.BeforeRequest();
      sup.join();
      EXPECT_TRUE(st.ok()) << st.ToString();
      EXPECT_FALSE(det.detached());
    }
    close(fds[0]);
    close(fds[1]);
    return can_move;
  }
};

TEST_F(MoveTest, DetachedSessionMovesToAnotherGpuAtTheSameAddresses) {
  DeviceHeap heap(d_);
  Session session(d_, 9, "sim", DeviceMap({0}));
  CUdeviceptr big = 0, tiny = 0;
  Build(session, heap, &big, &tiny);
  if (HasFatalFailure()) return;
  ASSERT_EQ(DetachAndResume(session, heap, {1}), 1u) << "nothing pins it: it says it can move";
  EXPECT_EQ(session.devices().BackendOrdinal(0), 1) << "client device 0 is GPU 1 now";
  ASSERT_TRUE(session.UseContext(1).ok());
  CUdevice cur = -1;
  ASSERT_EQ(d_.cuCtxGetDevice(&cur), CUDA_SUCCESS);
  EXPECT_EQ(cur, 1) << "the client's context lives on GPU 1";
  // Memory: same addresses, same bytes.
  EXPECT_EQ(Check(big, 3u << 20, 5), -1);
  EXPECT_EQ(Check(tiny, 4, 9), -1);
  EXPECT_EQ(heap.Devices(), std::vector<int>{1});
  // Handles: same ids, made again with the same flags.
  Result<CUstream> st = session.FindStream(10);
  ASSERT_TRUE(st.ok());
  unsigned flags = 0;
  int prio = 0;
  EXPECT_EQ(d_.cuStreamGetFlags(*st, &flags), CUDA_SUCCESS);
  EXPECT_EQ(flags, unsigned{CU_STREAM_NON_BLOCKING});
  EXPECT_EQ(d_.cuStreamGetPriority(*st, &prio), CUDA_SUCCESS);
  EXPECT_EQ(prio, -1);
  Result<CUevent> ev = session.FindEvent(20);
  ASSERT_TRUE(ev.ok());
  EXPECT_EQ(d_.cuEventQuery(*ev), CUDA_SUCCESS);
  Result<FunctionEntry*> f = session.FindFunction(40);
  ASSERT_TRUE(f.ok());
  int smem = 0;
  EXPECT_EQ(d_.cuFuncGetAttribute(&smem, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, (*f)->fn), CUDA_SUCCESS);
  EXPECT_EQ(smem, 1024) << "attributes set on a function are set again";
  FunctionEntry* k = nullptr;
  ASSERT_TRUE(LaunchableFunctionFor(session, 41, &k).ok()) << "a library kernel resolves on the new GPU";
  ASSERT_NE(k->fn, nullptr);
  smem = 0;
  EXPECT_EQ(d_.cuFuncGetAttribute(&smem, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, k->fn), CUDA_SUCCESS);
  EXPECT_EQ(smem, 2048) << "a kernel's attribute is set again for the new device";
  // The module global's contents came along.
  Result<ModuleEntry*> m = session.FindModule(30);
  ASSERT_TRUE(m.ok());
  CUdeviceptr g = 0;
  size_t gs = 0;
  ASSERT_EQ(d_.cuModuleGetGlobal_v2(&g, &gs, (*m)->module, "g_counter"), CUDA_SUCCESS);
  int v = 0;
  ASSERT_EQ(d_.cuMemcpyDtoH_v2(&v, g, sizeof v), CUDA_SUCCESS);
  EXPECT_EQ(v, 1234);
  // Nothing of it is left on GPU 0: the worker's and the client's retains
  // of its primary context are released, so the context is gone.
  CUdevice dev0 = 0;
  unsigned pflags = 0;
  int active = 1;
  ASSERT_EQ(d_.cuDeviceGet(&dev0, 0), CUDA_SUCCESS);
  ASSERT_EQ(d_.cuDevicePrimaryCtxGetState(dev0, &pflags, &active), CUDA_SUCCESS);
  EXPECT_EQ(active, 0);
  // It can leave again and come back (on its new own GPU, no move).
  ASSERT_EQ(DetachAndResume(session, heap, {1}), 1u);
  EXPECT_EQ(Check(big, 3u << 20, 5), -1);
  session.ReleaseAll();
}

TEST_F(MoveTest, ASessionHoldingAGlobalsAddressWaitsForItsOwnGpu) {
  DeviceHeap heap(d_);
  Session session(d_, 10, "sim", DeviceMap({0}));
  CUdeviceptr big = 0, tiny = 0;
  Build(session, heap, &big, &tiny);
  if (HasFatalFailure()) return;
  // The program asked for g_table's address: a reload elsewhere would move it.
  Result<ModuleEntry*> m = session.FindModule(30);
  ASSERT_TRUE(m.ok());
  CUdeviceptr g = 0;
  size_t gs = 0;
  ASSERT_EQ(d_.cuModuleGetGlobal_v2(&g, &gs, (*m)->module, "g_table"), CUDA_SUCCESS);
  session.AddModuleGlobal(30, g, gs);
  ASSERT_EQ(DetachAndResume(session, heap, {0}), 0u) << "it says it cannot move";
  EXPECT_EQ(session.devices().BackendOrdinal(0), 0);
  EXPECT_EQ(Check(big, 3u << 20, 5), -1);
  session.ReleaseAll();
}

TEST_F(SwapTest, StoreIsPinnedInPiecesAndInTheBackground) {
  SwapStore store(d_);
  ASSERT_TRUE(store.Ensure(SwapStore::kMinPiece * 3).ok());
  EXPECT_EQ(store.bytes(), SwapStore::kMinPiece * 3);
  int pieces = 0;
  uint64_t seen = 0;
  ASSERT_TRUE(store.ForEach(0, store.bytes(), [&](uint8_t* p, uint64_t n) {
                     ++pieces;
                     seen += n;
                     p[0] = 1;
                     return Status();
                   }).ok());
  EXPECT_EQ(pieces, 3) << "three pieces of 64 MiB, pinned by three threads";
  EXPECT_EQ(seen, store.bytes());
  EXPECT_FALSE(store.ForEach(store.bytes() - 1, 2, [](uint8_t*, uint64_t) { return Status(); }).ok());
  // In the background: Ensure then finds it ready and pins nothing.
  store.Prepare(SwapStore::kMinPiece * 5, ctx_);
  ASSERT_TRUE(store.Ensure(SwapStore::kMinPiece * 5).ok());
  EXPECT_EQ(store.bytes(), SwapStore::kMinPiece * 5);
  EXPECT_EQ(store.last_pin_ms(), 0.0);
  store.Release();
  EXPECT_EQ(store.bytes(), 0u);
}

}  // namespace
}  // namespace rgpu::worker

// DeviceHeap and IdleDetacher over the sim backend: memory leaves the card
// and comes back at the same addresses with its contents; what stays behind
// on the card reads as zero; small allocations share chunks; the detacher
// follows its policy and speaks the control protocol.
#include <sys/socket.h>
#include <unistd.h>

#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "server/supervisor/control.h"
#include "server/worker/device_heap.h"
#include "server/worker/session.h"
#include "server/worker/swap.h"

namespace rgpu::worker {
namespace {

class SwapTest : public ::testing::Test {
 protected:
  void SetUp() override {
    backend::BackendOptions o;
    o.kind = "sim";
    o.profile_path = RGPU_SIM_PROFILE;
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

}  // namespace
}  // namespace rgpu::worker

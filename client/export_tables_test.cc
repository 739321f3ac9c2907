// Export tables: the INTEGRITY_CHECK hash against published and measured
// vectors, table shapes as the real driver serves them, and the slots' logic
// on top of fake driver functions (strong definitions below replace the weak
// stubs in this test binary, as the client's implementation will in the
// library).
#include "client/export_tables.h"

#include <gtest/gtest.h>
#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "client/integrity_hash.h"

namespace {

// ---------------------------------------------------------------------------
// Fake driver functions the slots call.

CUcontext g_current = nullptr;
int g_retains = 0, g_releases = 0;
const void* g_loaded_image = nullptr;
const CUcontext kPrimary = reinterpret_cast<CUcontext>(0x5000);

}  // namespace

extern "C" CUresult cuCtxGetCurrent(CUcontext* ctx) {
  *ctx = g_current;
  return CUDA_SUCCESS;
}
extern "C" CUresult cuCtxGetDevice(CUdevice* dev) {
  if (g_current == nullptr) return CUDA_ERROR_INVALID_CONTEXT;
  *dev = 2;
  return CUDA_SUCCESS;
}
extern "C" CUresult cuCtxGetId(CUcontext ctx, unsigned long long* id) {
  *id = reinterpret_cast<uintptr_t>(ctx) + 1;
  return CUDA_SUCCESS;
}
extern "C" CUresult cuDevicePrimaryCtxRetain(CUcontext* ctx, CUdevice dev) {
  if (dev != 0) return CUDA_ERROR_INVALID_DEVICE;
  ++g_retains;
  *ctx = kPrimary;
  return CUDA_SUCCESS;
}
extern "C" CUresult cuDevicePrimaryCtxRelease_v2(CUdevice dev) {
  ++g_releases;
  return CUDA_SUCCESS;
}
extern "C" CUresult cuModuleLoadData(CUmodule* module, const void* image) {
  g_loaded_image = image;
  *module = reinterpret_cast<CUmodule>(0x7000);
  return CUDA_SUCCESS;
}
// Streams: the two special handles and 0x8100/0x8200 exist, with ids 1..4.
extern "C" CUresult cuStreamGetId(CUstream stream, unsigned long long* id) {
  const uintptr_t h = reinterpret_cast<uintptr_t>(stream);
  const uintptr_t known[] = {0x1, 0x2, 0x8100, 0x8200};
  for (unsigned i = 0; i < 4; ++i)
    if (h == known[i]) return *id = i + 1, CUDA_SUCCESS;
  return CUDA_ERROR_INVALID_HANDLE;
}

// Module 0x7000 holds the functions in g_functions; others are unknown.
std::vector<CUfunction> g_functions;
extern "C" CUresult cuModuleGetFunctionCount(unsigned* count, CUmodule module) {
  if (module != reinterpret_cast<CUmodule>(0x7000)) return CUDA_ERROR_INVALID_HANDLE;
  *count = static_cast<unsigned>(g_functions.size());
  return CUDA_SUCCESS;
}
extern "C" CUresult cuModuleEnumerateFunctions(CUfunction* out, unsigned n, CUmodule module) {
  if (module != reinterpret_cast<CUmodule>(0x7000)) return CUDA_ERROR_INVALID_HANDLE;
  for (unsigned i = 0; i < n && i < g_functions.size(); ++i) out[i] = g_functions[i];
  return CUDA_SUCCESS;
}
extern "C" CUresult cuDriverGetVersion(int* version) {
  *version = 13000;
  return CUDA_SUCCESS;
}
extern "C" CUresult cuDeviceGetCount(int* count) {
  *count = 1;
  return CUDA_SUCCESS;
}
extern "C" CUresult cuDeviceGetUuid_v2(CUuuid* uuid, CUdevice dev) {
  for (int i = 0; i < 16; ++i) uuid->bytes[i] = static_cast<char>(0xa0 + i);
  return CUDA_SUCCESS;
}
extern "C" CUresult cuDeviceGetAttribute(int* value, CUdevice_attribute attr, CUdevice dev) {
  switch (attr) {
    case CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID: *value = 0; return CUDA_SUCCESS;
    case CU_DEVICE_ATTRIBUTE_PCI_BUS_ID: *value = 0x1b; return CUDA_SUCCESS;
    case CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID: *value = 0; return CUDA_SUCCESS;
    default: return CUDA_ERROR_INVALID_VALUE;
  }
}

namespace rgpu::client {

// The GPU host's TPC layout, as a strong definition will fetch it. Unset:
// unknown, as the library's default answers.
namespace {
bool g_have_layout = false;
std::vector<uint8_t> g_gpc_of_tpc, g_tpc_in_gpc;
CUdevice g_layout_device = -1;
}  // namespace

CUresult DeviceTpcLayout(CUdevice dev, std::vector<uint8_t>* gpc_of_tpc, std::vector<uint8_t>* tpc_in_gpc) {
  g_layout_device = dev;
  if (!g_have_layout) return CUDA_ERROR_NOT_SUPPORTED;
  *gpc_of_tpc = g_gpc_of_tpc;
  *tpc_in_gpc = g_tpc_in_gpc;
  return CUDA_SUCCESS;
}

namespace {

Md2::State StateFromHex(const char* hex) {
  Md2::State s{};
  for (size_t i = 0; i < s.size(); ++i) s[i] = static_cast<uint8_t>(std::stoi(std::string(hex + 2 * i, 2), nullptr, 16));
  return s;
}

std::string Hex(const uint8_t* p, size_t n) {
  static const char* kDigits = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    out += kDigits[p[i] >> 4];
    out += kDigits[p[i] & 15];
  }
  return out;
}

CUuuid Uuid(const char* hex) {
  CUuuid u;
  for (int i = 0; i < 16; ++i) u.bytes[i] = static_cast<char>(std::stoi(std::string(hex + 2 * i, 2), nullptr, 16));
  return u;
}

const void* const* Table(const char* hex) {
  const CUuuid id = Uuid(hex);
  const void* table = nullptr;
  EXPECT_EQ(cuGetExportTable(&table, &id), CUDA_SUCCESS) << hex;
  return static_cast<const void* const*>(table);
}

template <class F>
F Slot(const char* uuid, size_t slot) {
  return reinterpret_cast<F>(const_cast<void*>(Table(uuid)[slot]));
}

constexpr const char* kCudart = "6bd5fb6c5bf4e74a8987d93912fd9df9";
constexpr const char* kStorage = "c693336e1121df11a8c368f355d89593";
constexpr const char* kIntegrity = "d4082055bde6704b8d34ba123c66e1f2";
constexpr const char* kCluster = "1734dc26800d47458726c0f1e7dd8bca";

// ---------------------------------------------------------------------------
// The hash.

TEST(IntegrityHashTest, Md2MatchesRfc1319) {
  const std::pair<const char*, const char*> kVectors[] = {
      {"", "8350e5a3e24c153df2275c9f80692773"},
      {"a", "32ec01ec4a6dac72c0ab96fb34c0b5d1"},
      {"abc", "da853b0d3f88d99b30283a69e6ded6bb"},
      {"message digest", "ab4f496bfb2a530b219ff33031fe06b0"},
      {"abcdefghijklmnopqrstuvwxyz", "4e8ddff3650292ab5a4108c3aa47940b"},
  };
  for (const auto& [message, digest] : kVectors) {
    Md2 md2;
    md2.Update(message, std::strlen(message));
    const auto got = md2.Finish();
    EXPECT_EQ(Hex(got.data(), got.size()), digest) << message;
  }
}

// ZLUDA's unit-test vectors (dark_api/src/lib.rs): raw state before/after each stage.
TEST(IntegrityHashTest, ZludaStageVectors) {
  {  // one byte into a partly filled block
    Md2 md2(StateFromHex("0000000000000000000000000000000038c09bf7ff7f0000a361e442f66794ff18c09bf7ff7f0000a45772f7ff7f0000000000000000000000000000000000000000"));
    md2.UpdateByte(34);
    EXPECT_EQ(md2.state(), StateFromHex("0000000000000000000000000000000022c09bf7ff7f0000a361e442f66794ff22c09bf7ff7f0000a45772f7ff7f0000570000000000000000000000000000000157"));
  }
  {  // key ^ ipad from a zero state
    const uint8_t key[16] = {0x14, 0x6A, 0xDD, 0xAE, 0x53, 0xA9, 0xA7, 0x52, 0xAA, 0x08, 0x41, 0x36, 0x0B, 0xF5, 0x5A, 0x9F};
    Md2 md2;
    md2.Update(key, sizeof key, 0x36);
    EXPECT_EQ(md2.state(), StateFromHex("8b219a49e86d1aeef237f9b54a8c3c75c71eee21cf298ae51383f4ec3304e2fdb02f09014ff7686d6946437eb62b21ed57a110860e60441e705f67d1eb67a13d003d"));
  }
  {  // the 48-byte record
    Md2 md2(StateFromHex("8b219a49e86d1aeef237f9b54a8c3c75c71eee21cf298ae51383f4ec3304e2fdb02f09014ff7686d6946437eb62b21ed57a110860e60441e705f67d1eb67a13d003d"));
    IntegrityRecord record{0x2f30, 12082, 0x002fa423, 0xf79c1000,
                           reinterpret_cast<const void*>(0x00007ffff6958240),
                           reinterpret_cast<const void*>(0x00007ffff6958220),
                           reinterpret_cast<const void*>(0x00007ffff2aaf4a0), 0x682b9cee};
    md2.Update(&record, sizeof record);
    EXPECT_EQ(md2.state(), StateFromHex("0afdabc9ff9ba0be4d303282744fa7489d2382a387fa6cdb9249d9b54b2b5e516ef7f94d288a640619b3e6bea4ec7e546428d9e1d434c0a94988c96158dd66740074"));
  }
  {  // one device
    Md2 md2(StateFromHex("84fd9310c6dbb3bc49c225e7da6e226f9bbd8159c3019a7a2634390f2a5613b1f6bc7fa18f04a54d0d78ab20f82320a53f6736e2de8ae5dfe1f20394addc9ada00da"));
    IntegrityDevice device{};
    const uint32_t words[4] = {0x8a2bfe9a, 0x382d25ac, 0xc5ae37ea, 0x5f32716d};
    std::memcpy(device.uuid, words, sizeof words);
    device.pci_domain = 0;
    device.pci_bus = 2;
    device.pci_device = 0;
    md2.Update(&device, sizeof device);
    EXPECT_EQ(md2.state(), StateFromHex("1fd825d2dffa64c7b61aaf22b879fb960000000002000000000000007c9d46d21fd825d2ddfa64c7b61aaf22e617bd3ad7dd5f828c87ce8666afa0507a7dbbbc0c50"));
  }
  {  // finishing
    Md2 md2(StateFromHex("3e4bf29571f56b5107bf4bf1040e8e0b5f4d300c0f0caefb48af23b5ea4cc2dbd7df88743958163a1f7c9b207e7e94c88bc6b2380d077dbd90d53963eb1d4f400040"));
    const auto digest = md2.Finish();
    EXPECT_EQ(md2.state(), StateFromHex("002353065e96f69c61aa962d2ecda858e9cac02e35ed5fcae10ecd1fd08e8b9c294d1c946bf710b0070891d61406c0ece19c8e33d4e9435c860c724d2798917f007f"));
    EXPECT_EQ(Hex(digest.data(), digest.size()), "002353065e96f69c61aa962d2ecda858");
  }
}

// Measured: INTEGRITY_CHECK[1](13002, 1764000000, out) on driver 580.159 with
// one H200, and every input the hash takes, read back from the same process.
TEST(IntegrityHashTest, MatchesTheRealDriver) {
  const IntegrityRecord record{13000, 13002, 414, 642180928,
                               reinterpret_cast<const void*>(0x7fa12604c680),
                               reinterpret_cast<const void*>(0x7fa12604c660),
                               reinterpret_cast<const void*>(0x7fa1209ab350), 1764000000};
  IntegrityDevice device{};
  const uint8_t uuid[16] = {0x1d, 0x06, 0x7c, 0x1c, 0xc9, 0xfd, 0x58, 0x99,
                            0xb3, 0x5e, 0xa0, 0x41, 0xa4, 0xd0, 0x7e, 0x1e};
  std::memcpy(device.uuid, uuid, sizeof uuid);
  device.pci_domain = 0;
  device.pci_bus = 0;
  device.pci_device = 6;
  const auto hash = IntegrityHash(record, std::span<const IntegrityDevice>(&device, 1));
  EXPECT_EQ(hash[0], 0xceea7c59a821f144ULL);
  EXPECT_EQ(hash[1], 0x1ea6047717d4b2a9ULL);
}

TEST(IntegrityHashTest, ConstantAnswers) {
  IntegrityRecord record{};
  record.version = 13000;
  EXPECT_EQ(IntegrityHash(record, {}), (std::array<uint64_t, 2>{0x3341181C03CB675CULL, 0x8ED383AA1F4CD1E8ULL}));
  record.version = 12091;
  EXPECT_EQ(IntegrityHash(record, {}), (std::array<uint64_t, 2>{0x1841181C03CB675CULL, 0x8ED383AA1F4CD1E8ULL}));
}

// ---------------------------------------------------------------------------
// Table shapes.

TEST(ExportTablesTest, SizesAndNullSlotsAsTheRealDriver) {
  struct Expected {
    const char* uuid;
    size_t bytes;
    std::vector<size_t> null_slots;
  };
  const Expected kExpected[] = {
      {kCudart, 104, {10}},
      {"42d85a8123f6cb478298f6e78a3aecdc", 24, {}},
      {"a094798c2e742e7493f20800200c0a66", 56, {}},
      {kIntegrity, 24, {}},
      {"263e88607cd2614392f6bbd5006dfa7e", 120, {}},
      {"f8cff95121468b4eb9e2fb469e7c0dd9", 24, {}},
      {"0ca50b8c1004929a89a7d0df10e77286", 16, {}},
      {"b10541e1f7c7c74a9f64f223be99f1e2", 248, {30}},
      {"21318c60971432488ca641ff7324c8f2", 744, {91}},
      {"69a28e9f24498b47b030c5da330ea4e9", 272, {}},
      {"6e163fbeb958444d835ce182aff1991e", 792, {93}},
      {"bfdb432dbf3c5a4a945eb34029e81e75", 480, {}},
      {"a6b1ff99ecc4c94f92f91928663d5585", 256, {}},
      {kCluster, 136, {}},
  };
  for (const Expected& e : kExpected) {
    const void* const* t = Table(e.uuid);
    ASSERT_NE(t, nullptr) << e.uuid;
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t[0]), e.bytes) << e.uuid;
    for (size_t i = 1; i < e.bytes / sizeof(void*); ++i) {
      const bool expect_null = std::find(e.null_slots.begin(), e.null_slots.end(), i) != e.null_slots.end();
      EXPECT_EQ(t[i] == nullptr, expect_null) << e.uuid << "[" << i << "]";
    }
  }
  // No size slot; the driver's table ends with a null.
  const void* const* storage = Table(kStorage);
  for (int i = 0; i < 3; ++i) EXPECT_NE(storage[i], nullptr);
  EXPECT_EQ(storage[3], nullptr);
}

TEST(ExportTablesTest, UnknownAndInvalidRequests) {
  const CUuuid unknown = Uuid("00000000000000000000000000000000");
  const void* table = reinterpret_cast<const void*>(0x1);
  EXPECT_EQ(cuGetExportTable(&table, &unknown), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(table, nullptr);
  const CUuuid heap_access = Uuid("195bcbf4d67d024aacc51d29cea631ae");  // refused by 580.159 too
  EXPECT_EQ(cuGetExportTable(&table, &heap_access), CUDA_ERROR_INVALID_VALUE);
  const CUuuid nvrtc_cache = Uuid("da9151d33ae6cc41a5c04f26d533e328");  // nvrtc carries on without
  table = reinterpret_cast<const void*>(0x1);
  EXPECT_EQ(cuGetExportTable(&table, &nvrtc_cache), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(table, nullptr);
  EXPECT_EQ(cuGetExportTable(nullptr, &unknown), CUDA_ERROR_INVALID_VALUE);
  table = reinterpret_cast<const void*>(0x1);
  EXPECT_EQ(cuGetExportTable(&table, nullptr), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(table, reinterpret_cast<const void*>(0x1));
}

TEST(ExportTablesTest, UnknownSlotsRefuse) {
  EXPECT_EQ(Slot<CUresult (*)()>(kCudart, 3)(), CUDA_ERROR_NOT_SUPPORTED);
  EXPECT_EQ(Slot<CUresult (*)()>("21318c60971432488ca641ff7324c8f2", 92)(), CUDA_ERROR_NOT_SUPPORTED);
  EXPECT_EQ(Slot<CUresult (*)()>("f8cff95121468b4eb9e2fb469e7c0dd9", 2)(), CUDA_ERROR_NOT_SUPPORTED);
}

// ---------------------------------------------------------------------------
// Slot logic.

TEST(ExportTablesTest, CudartPrimaryContextLeavesTheReferenceCountAlone) {
  auto primary = Slot<CUresult (*)(CUcontext*, CUdevice)>(kCudart, 2);
  g_retains = g_releases = 0;
  CUcontext ctx = nullptr;
  ASSERT_EQ(primary(&ctx, 0), CUDA_SUCCESS);
  EXPECT_EQ(ctx, kPrimary);
  EXPECT_EQ(g_retains, 1);
  EXPECT_EQ(g_releases, 1);
  EXPECT_EQ(primary(&ctx, 3), CUDA_ERROR_INVALID_DEVICE);
  EXPECT_EQ(primary(nullptr, 0), CUDA_ERROR_INVALID_VALUE);
}

TEST(ExportTablesTest, CudartLoadsTheWrappedFatbin) {
  struct Wrapper {
    uint32_t magic, version;
    const void* data;
    const void* unused;
  };
  static const char fatbin[16] = {};
  Wrapper wrapper{0x466243B1, 1, fatbin, nullptr};
  CUmodule module = nullptr;
  auto from_wrapper = Slot<CUresult (*)(CUmodule*, const Wrapper*)>(kCudart, 1);
  ASSERT_EQ(from_wrapper(&module, &wrapper), CUDA_SUCCESS);
  EXPECT_EQ(g_loaded_image, fatbin);
  EXPECT_NE(module, nullptr);
  wrapper.magic = 0xBA55ED50;
  EXPECT_EQ(from_wrapper(&module, &wrapper), CUDA_ERROR_INVALID_IMAGE);
  auto from_wrapper_ex = Slot<CUresult (*)(CUmodule*, const Wrapper*, void*, void*, unsigned)>(kCudart, 6);
  wrapper.magic = 0x466243B1;
  g_loaded_image = nullptr;
  ASSERT_EQ(from_wrapper_ex(&module, &wrapper, nullptr, nullptr, 0), CUDA_SUCCESS);
  EXPECT_EQ(g_loaded_image, fatbin);
  EXPECT_EQ(from_wrapper_ex(&module, &wrapper, &module, nullptr, 0), CUDA_ERROR_NOT_SUPPORTED);
  auto from_fatbin = Slot<CUresult (*)(const void*, CUmodule*, void*, void*, unsigned)>(kCudart, 8);
  g_loaded_image = nullptr;
  ASSERT_EQ(from_fatbin(fatbin, &module, nullptr, nullptr, 0), CUDA_SUCCESS);
  EXPECT_EQ(g_loaded_image, fatbin);
}

TEST(ExportTablesTest, ToolsSlotsAnswerCurrentContextAndId) {
  g_current = reinterpret_cast<CUcontext>(0x1234);
  CUcontext ctx = nullptr;
  ASSERT_EQ(Slot<CUresult (*)(CUcontext*)>("42d85a8123f6cb478298f6e78a3aecdc", 2)(&ctx), CUDA_SUCCESS);
  EXPECT_EQ(ctx, g_current);
  unsigned long long id = 0;
  ASSERT_EQ(Slot<CUresult (*)(CUcontext, unsigned long long*)>("21318c60971432488ca641ff7324c8f2", 4)(g_current, &id),
            CUDA_SUCCESS);
  EXPECT_EQ(id, 0x1235u);
  g_current = nullptr;
}

// TOOLS_MODULE[7] as cuFFT uses it: its callback stores the function it is
// given into *user, and only a return value of 1 counts as success.
TEST(ExportTablesTest, ToolsModuleReportsEachFunction) {
  using Callback = void (*)(void*, CUfunction);
  auto each = Slot<int (*)(CUcontext, CUmodule, Callback, void*)>("6e163fbeb958444d835ce182aff1991e", 7);
  static std::vector<CUfunction> seen;
  Callback record = [](void* user, CUfunction f) {
    EXPECT_EQ(user, &seen);
    seen.push_back(f);
  };
  const CUmodule module = reinterpret_cast<CUmodule>(0x7000);
  g_functions = {reinterpret_cast<CUfunction>(0x7100)};
  EXPECT_EQ(each(kPrimary, module, record, &seen), 1);
  EXPECT_EQ(seen, g_functions);
  seen.clear();
  g_functions = {reinterpret_cast<CUfunction>(0x7100), reinterpret_cast<CUfunction>(0x7200)};
  EXPECT_EQ(each(nullptr, module, record, &seen), 2);
  EXPECT_EQ(seen, g_functions);
  seen.clear();
  g_functions.clear();
  EXPECT_EQ(each(kPrimary, module, record, &seen), 0);
  EXPECT_EQ(each(kPrimary, reinterpret_cast<CUmodule>(0x7001), record, &seen), 0);  // unknown module
  EXPECT_EQ(each(kPrimary, module, nullptr, &seen), 0);
  EXPECT_TRUE(seen.empty());
}

// TOOLS_CONTEXT[51] then [39] as cuBLAS's per-stream cache uses them: each
// stream resolves to a key of its own, the same every time; NULL is the
// legacy stream, or the per-thread one when the flag is set.
TEST(ExportTablesTest, ToolsContextKeysStreams) {
  const char* kToolsContext = "21318c60971432488ca641ff7324c8f2";
  auto resolve = Slot<CUresult (*)(CUcontext, CUstream, CUstream*, int)>(kToolsContext, 51);
  auto key_of = Slot<CUresult (*)(CUcontext, CUstream, unsigned long long*)>(kToolsContext, 39);
  auto key = [&](CUstream h, int per_thread) -> unsigned long long {
    CUstream resolved = nullptr;
    if (resolve(kPrimary, h, &resolved, per_thread) != CUDA_SUCCESS) return 0;
    unsigned long long k = 0;
    return key_of(kPrimary, resolved, &k) == CUDA_SUCCESS ? k : 0;
  };
  const CUstream a = reinterpret_cast<CUstream>(0x8100), b = reinterpret_cast<CUstream>(0x8200);
  EXPECT_NE(key(a, 0), 0u);
  EXPECT_EQ(key(a, 0), key(a, 0));
  EXPECT_NE(key(a, 0), key(b, 0));
  EXPECT_EQ(key(nullptr, 0), key(CU_STREAM_LEGACY, 0));
  EXPECT_EQ(key(nullptr, 1), key(CU_STREAM_PER_THREAD, 1));
  EXPECT_NE(key(nullptr, 0), key(nullptr, 1));
  CUstream out = nullptr;
  EXPECT_EQ(resolve(kPrimary, reinterpret_cast<CUstream>(0x8300), &out, 0), CUDA_ERROR_INVALID_HANDLE);
  EXPECT_EQ(resolve(kPrimary, a, nullptr, 0), CUDA_ERROR_INVALID_VALUE);
  unsigned long long k = 0;
  EXPECT_EQ(key_of(kPrimary, a, nullptr), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(key_of(kPrimary, reinterpret_cast<CUstream>(0x8300), &k), CUDA_ERROR_INVALID_HANDLE);
}

// CUDART_F8CFF951[1], cudart's log sink: served (not the "unsupported slot"
// stub, which logs a warning on stderr) and returns success.
TEST(ExportTablesTest, RuntimeLogMessagesAreDropped) {
  auto log = Slot<CUresult (*)(void*, void*, void*, void*)>("f8cff95121468b4eb9e2fb469e7c0dd9", 1);
  testing::internal::CaptureStderr();
  EXPECT_EQ(log(nullptr, nullptr, const_cast<char*>("message %d"), nullptr), CUDA_SUCCESS);
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "");
}

// Return codes as measured on the real driver.
TEST(ExportTablesTest, ContextLocalStorage) {
  using Dtor = void (*)(CUcontext, void*, void*);
  auto put = Slot<CUresult (*)(CUcontext, void*, void*, Dtor)>(kStorage, 0);
  auto del = Slot<CUresult (*)(CUcontext, void*)>(kStorage, 1);
  auto get = Slot<CUresult (*)(void**, CUcontext, void*)>(kStorage, 2);
  void* const key = reinterpret_cast<void*>(0x10);
  void* value = reinterpret_cast<void*>(0x77);

  g_current = nullptr;  // no current context
  EXPECT_EQ(get(&value, nullptr, key), CUDA_ERROR_INVALID_CONTEXT);
  EXPECT_EQ(put(nullptr, key, value, nullptr), CUDA_ERROR_INVALID_CONTEXT);

  const CUcontext ctx = reinterpret_cast<CUcontext>(0x9000);
  g_current = ctx;
  EXPECT_EQ(get(&value, nullptr, key), CUDA_ERROR_INVALID_HANDLE);
  EXPECT_EQ(value, reinterpret_cast<void*>(0x77));  // untouched
  EXPECT_EQ(del(nullptr, key), CUDA_ERROR_INVALID_HANDLE);

  static std::vector<std::vector<void*>> calls;
  calls.clear();
  Dtor dtor = [](CUcontext c, void* k, void* v) { calls.push_back({c, k, v}); };
  ASSERT_EQ(put(nullptr, key, reinterpret_cast<void*>(0x20), dtor), CUDA_SUCCESS);
  EXPECT_EQ(put(nullptr, key, reinterpret_cast<void*>(0x21), dtor), CUDA_ERROR_INVALID_HANDLE);
  ASSERT_EQ(get(&value, ctx, key), CUDA_SUCCESS);  // explicit context == current
  EXPECT_EQ(value, reinterpret_cast<void*>(0x20));
  EXPECT_EQ(get(nullptr, ctx, key), CUDA_ERROR_INVALID_VALUE);
  ASSERT_EQ(del(ctx, key), CUDA_SUCCESS);
  EXPECT_TRUE(calls.empty());  // delete does not run the destructor
  EXPECT_EQ(get(&value, ctx, key), CUDA_ERROR_INVALID_HANDLE);

  // Another context's entries survive a reset of this one.
  const CUcontext other = reinterpret_cast<CUcontext>(0xA000);
  ASSERT_EQ(put(ctx, reinterpret_cast<void*>(0x11), reinterpret_cast<void*>(0x22), dtor), CUDA_SUCCESS);
  ASSERT_EQ(put(ctx, reinterpret_cast<void*>(0x12), reinterpret_cast<void*>(0x23), nullptr), CUDA_SUCCESS);
  ASSERT_EQ(put(other, reinterpret_cast<void*>(0x11), reinterpret_cast<void*>(0x24), dtor), CUDA_SUCCESS);
  RunContextStorageDestructors(ctx);
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0], (std::vector<void*>{ctx, reinterpret_cast<void*>(0x11), reinterpret_cast<void*>(0x22)}));
  EXPECT_EQ(get(&value, ctx, reinterpret_cast<void*>(0x11)), CUDA_ERROR_INVALID_HANDLE);
  EXPECT_EQ(get(&value, ctx, reinterpret_cast<void*>(0x12)), CUDA_ERROR_INVALID_HANDLE);
  ASSERT_EQ(get(&value, other, reinterpret_cast<void*>(0x11)), CUDA_SUCCESS);
  EXPECT_EQ(value, reinterpret_cast<void*>(0x24));
  RunContextStorageDestructors(other);
  EXPECT_EQ(calls.size(), 2u);
  g_current = nullptr;
}

TEST(ExportTablesTest, IntegrityCheckHashesOurTablesAndDevices) {
  auto check = Slot<CUresult (*)(unsigned, unsigned long long, unsigned long long*)>(kIntegrity, 1);
  unsigned long long out[2] = {};
  ASSERT_EQ(check(13000, 1700000000, out), CUDA_SUCCESS);
  EXPECT_EQ(out[0], 0x3341181C03CB675CULL);
  ASSERT_EQ(check(13002, 1700000000, out), CUDA_SUCCESS);

  IntegrityRecord record{13000, 13002, static_cast<uint32_t>(getpid()),
                         static_cast<uint32_t>(reinterpret_cast<uintptr_t>(pthread_self())),
                         Table(kCudart), Table(kIntegrity), Table(kIntegrity)[1], 1700000000};
  IntegrityDevice device{};
  for (int i = 0; i < 16; ++i) device.uuid[i] = static_cast<uint8_t>(0xa0 + i);
  device.pci_bus = 0x1b;
  const auto expected = IntegrityHash(record, std::span<const IntegrityDevice>(&device, 1));
  EXPECT_EQ(out[0], expected[0]);
  EXPECT_EQ(out[1], expected[1]);
  EXPECT_EQ(check(13002, 1, nullptr), CUDA_ERROR_INVALID_VALUE);
}

TEST(ExportTablesTest, CallbackHookBuffersAndChecks) {
  void* p = nullptr;
  size_t size = 0;
  Slot<void (*)(void**, size_t*)>("a094798c2e742e7493f20800200c0a66", 2)(&p, &size);
  EXPECT_NE(p, nullptr);
  EXPECT_GT(size, 0u);
  uint32_t flags = 7;
  EXPECT_EQ((Slot<CUresult (*)(CUcontext, uint32_t*, const void**)>("263e88607cd2614392f6bbd5006dfa7e", 2)(nullptr, &flags, nullptr)),
            CUDA_SUCCESS);
  EXPECT_EQ(flags, 0u);
  EXPECT_EQ((Slot<uint32_t (*)()>("263e88607cd2614392f6bbd5006dfa7e", 3)()), 0u);
}

// CLUSTER, as cuBLASLt 13.1.0.3 uses it (libcublasLt.so.13+0x330f9a6): [4] then,
// on success, [13] on both arrays; nvrtc/nvJitLink only check the size.
TEST(ExportTablesTest, ClusterTpcLayout) {
  using Layout = CUresult (*)(uint8_t**, uint8_t**);
  auto layout = Slot<Layout>(kCluster, 4);
  auto release = Slot<CUresult (*)(void*, void*)>(kCluster, 13);
  EXPECT_GT(reinterpret_cast<uintptr_t>(Table(kCluster)[0]), 0x68u);  // nvrtc's "cluster API" check

  uint8_t* const untouched = reinterpret_cast<uint8_t*>(0x1111);
  uint8_t* gpc = untouched;
  uint8_t* tpc = untouched;
  g_current = nullptr;  // as the real driver: no context, INVALID_CONTEXT
  EXPECT_EQ(layout(&gpc, &tpc), CUDA_ERROR_INVALID_CONTEXT);
  EXPECT_EQ(gpc, untouched);

  // The layout isn't known (the library's default): NOT_SUPPORTED, outputs
  // untouched, so cuBLASLt takes its plain-order path and releases nothing.
  g_current = reinterpret_cast<CUcontext>(0x1234);
  g_have_layout = false;
  EXPECT_EQ(layout(&gpc, &tpc), CUDA_ERROR_NOT_SUPPORTED);
  EXPECT_EQ(gpc, untouched);
  EXPECT_EQ(tpc, untouched);
  EXPECT_EQ(g_layout_device, 2);  // the current context's device

  // Known: the H200's arrays as its driver answered them, in fresh malloc'd
  // copies each call, released by [13].
  g_have_layout = true;
  g_gpc_of_tpc.assign({0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 6, 7,
                       0, 1, 2, 3, 4, 5, 6, 7, 1, 2, 3, 4, 5, 6, 7, 1, 2, 3, 4, 5, 6, 7, 1, 2,
                       3, 4, 5, 6, 7, 1, 2, 3, 4, 5, 6, 7, 6, 7, 11, 14, 17, 19});
  g_tpc_in_gpc.assign({0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2,
                       3, 3, 3, 3, 3, 3, 3, 3, 4, 4, 4, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 6, 6,
                       6, 6, 6, 6, 6, 7, 7, 7, 7, 7, 7, 7, 8, 8, 0, 0, 0, 0});
  ASSERT_EQ(g_gpc_of_tpc.size(), 66u);
  ASSERT_EQ(g_tpc_in_gpc.size(), 66u);
  ASSERT_EQ(layout(&gpc, &tpc), CUDA_SUCCESS);
  ASSERT_NE(gpc, untouched);
  ASSERT_NE(tpc, untouched);
  EXPECT_EQ(std::vector<uint8_t>(gpc, gpc + 66), g_gpc_of_tpc);
  EXPECT_EQ(std::vector<uint8_t>(tpc, tpc + 66), g_tpc_in_gpc);
  uint8_t* gpc2 = nullptr;
  uint8_t* tpc2 = nullptr;
  ASSERT_EQ(layout(&gpc2, &tpc2), CUDA_SUCCESS);
  EXPECT_NE(gpc2, gpc);
  EXPECT_EQ(release(gpc, tpc), CUDA_SUCCESS);
  EXPECT_EQ(release(gpc2, nullptr), CUDA_SUCCESS);  // nvrtc's form: one pointer, 0
  EXPECT_EQ(release(tpc2, nullptr), CUDA_SUCCESS);
  EXPECT_EQ(release(nullptr, nullptr), CUDA_SUCCESS);

  // The driver dereferences null outputs; we refuse them. A layout whose
  // arrays disagree is not handed out.
  EXPECT_EQ(layout(nullptr, &tpc), CUDA_ERROR_INVALID_VALUE);
  g_tpc_in_gpc.pop_back();
  gpc = untouched;
  EXPECT_EQ(layout(&gpc, &tpc), CUDA_ERROR_NOT_SUPPORTED);
  EXPECT_EQ(gpc, untouched);
  g_have_layout = false;
  g_current = nullptr;
}

TEST(ExportTablesTest, ClusterOtherSlots) {
  uint32_t one = 0;
  EXPECT_EQ(Slot<CUresult (*)(uint32_t*)>(kCluster, 14)(&one), CUDA_SUCCESS);  // with no context too
  EXPECT_EQ(one, 1u);
  EXPECT_EQ(Slot<CUresult (*)(uint32_t*)>(kCluster, 14)(nullptr), CUDA_ERROR_INVALID_VALUE);
  // Slots on the driver's own function objects and device fields refuse.
  for (size_t slot : {1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12, 15, 16}) {
    EXPECT_EQ(Slot<CUresult (*)()>(kCluster, slot)(), CUDA_ERROR_NOT_SUPPORTED) << slot;
  }
}

}  // namespace
}  // namespace rgpu::client

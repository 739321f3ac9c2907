// Tests for image/ on real nvcc 13.0 outputs of testdata/sample_kernels.cu
// (built by CMake into RGPU_IMAGE_TESTDATA) and on malformed inputs.
#include "image/image.h"

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

namespace rgpu::image {
namespace {

std::vector<std::byte> ReadFile(const std::string& name) {
  std::ifstream in(std::string(RGPU_IMAGE_TESTDATA) + "/" + name, std::ios::binary);
  EXPECT_TRUE(in.good()) << name;
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> out(s.size());
  std::memcpy(out.data(), s.data(), s.size());
  return out;
}

struct ExpectedKernel {
  const char* name;
  std::vector<std::pair<uint32_t, uint32_t>> params;  // offset, size
  uint32_t param_bytes;
};

// The layouts ptxas gives sample_kernels.cu (same on every architecture).
const std::vector<ExpectedKernel>& Expected() {
  static const std::vector<ExpectedKernel> k = {
      {"add", {{0, 8}, {8, 8}, {16, 8}, {24, 4}}, 28},
      {"_Z5saxpyfPKfPfi6Triplecd", {{0, 4}, {8, 8}, {16, 8}, {24, 4}, {32, 16}, {48, 1}, {56, 8}}, 64},
      {"_Z4fillIiEvPT_S0_m", {{0, 8}, {8, 4}, {16, 8}}, 24},
      {"_Z8noparamsv", {}, 0},
      {"_Z7boundedPfi", {{0, 8}, {8, 4}}, 12},
      {"_Z9clusteredPf", {{0, 8}}, 8},
      {"_Z8bigparam3BigPi", {{0, 300}, {304, 8}}, 312},
  };
  return k;
}

void CheckLayouts(const ModuleInfo& m, bool has_cluster_kernel = true) {
  for (const ExpectedKernel& e : Expected()) {
    if (!has_cluster_kernel && std::string(e.name) == "_Z9clusteredPf") continue;
    const KernelInfo* k = m.FindKernel(e.name);
    ASSERT_NE(k, nullptr) << e.name;
    ASSERT_EQ(k->params.size(), e.params.size()) << e.name;
    for (size_t i = 0; i < e.params.size(); ++i) {
      EXPECT_EQ(k->params[i].offset, e.params[i].first) << e.name << " param " << i;
      EXPECT_EQ(k->params[i].size, e.params[i].second) << e.name << " param " << i;
    }
    // PTX does not record the padded constant-bank size; ptxas rounds the
    // end of the last parameter, which is what we compute.
    EXPECT_EQ(k->param_bytes, e.param_bytes) << e.name;
  }
}

void CheckCubin(const ModuleInfo& m, uint32_t arch, bool has_cluster_kernel = true) {
  EXPECT_FALSE(m.is_ptx);
  EXPECT_EQ(m.arch, arch);
  EXPECT_EQ(m.kernels.size(), has_cluster_kernel ? 7u : 6u);
  CheckLayouts(m, has_cluster_kernel);
  for (const KernelInfo& k : m.kernels) EXPECT_GT(k.num_regs, 0) << k.name;
  const KernelInfo* bounded = m.FindKernel("_Z7boundedPfi");
  ASSERT_NE(bounded, nullptr);
  EXPECT_EQ(bounded->max_threads[0], 256u);
  // 512 bytes of tile[]; the sm_90 / sm_120 section also holds the 1 KiB
  // reserved block, which the driver does not count.
  EXPECT_EQ(bounded->static_shared_bytes, 512u);
  EXPECT_EQ(bounded->shared_section_bytes % 1024, 512u);
  if (has_cluster_kernel) {
    EXPECT_EQ(m.FindKernel("_Z9clusteredPf")->cluster_dims[0], 2u);
  }
  const GlobalInfo* counter = m.FindGlobal("g_counter");
  ASSERT_NE(counter, nullptr);
  EXPECT_EQ(counter->size, 4u);
  EXPECT_FALSE(counter->is_constant);
  EXPECT_FALSE(counter->is_managed);
  const GlobalInfo* steps = m.FindGlobal("m_steps");
  ASSERT_NE(steps, nullptr);
  EXPECT_TRUE(steps->is_managed);
  EXPECT_EQ(steps->size, 4u);
  const GlobalInfo* table = m.FindGlobal("g_table");
  ASSERT_NE(table, nullptr);
  EXPECT_EQ(table->size, 64u);
  ASSERT_GE(table->init.size(), 12u);
  float f[3];
  std::memcpy(f, table->init.data(), 12);
  EXPECT_EQ(f[0], 1.0f);
  EXPECT_EQ(f[2], 3.0f);
  const GlobalInfo* coef = m.FindGlobal("c_coef");
  ASSERT_NE(coef, nullptr);
  EXPECT_TRUE(coef->is_constant);
  ASSERT_EQ(coef->init.size(), 16u);
  std::memcpy(f, coef->init.data(), 8);
  EXPECT_EQ(f[0], 0.5f);
  EXPECT_EQ(f[1], 1.5f);
  EXPECT_EQ(m.FindGlobal("tile"), nullptr);  // shared memory is not a global
}

TEST(ImageSize, RealImagesHaveTheirFileSize) {
  for (const char* name : {"sample_sm90.cubin", "sample_sm75.cubin", "sample_sm120.cubin",
                           "sample_rdc_sm90.cubin", "sample.fatbin", "sample_zstd.fatbin",
                           "sample_lz4.fatbin"}) {
    std::vector<std::byte> b = ReadFile(name);
    Result<uint64_t> n = ImageSize(b.data());
    ASSERT_TRUE(n.ok()) << name << ": " << n.status().ToString();
    EXPECT_EQ(*n, b.size()) << name;
    n = ImageSize(b.data(), b.size());
    EXPECT_TRUE(n.ok()) << name;
    EXPECT_FALSE(ImageSize(b.data(), b.size() - 1).ok()) << name;
  }
}

TEST(ImageSize, Ptx) {
  std::vector<std::byte> b = ReadFile("sample_sm90.ptx");
  b.push_back(std::byte{0});
  EXPECT_EQ(DetectImageKind(b.data()), ImageKind::kPtx);
  Result<uint64_t> n = ImageSize(b.data());
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, b.size());
  EXPECT_FALSE(ImageSize(b.data(), b.size() - 1).ok());  // NUL outside the limit
}

TEST(ImageSize, Wrapper) {
  std::vector<std::byte> fatbin = ReadFile("sample.fatbin");
  struct {
    uint32_t magic, version;
    const void* data;
    void* filename;
  } wrapper = {kFatbinWrapperMagic, 1, fatbin.data(), nullptr};
  EXPECT_EQ(DetectImageKind(&wrapper), ImageKind::kFatbinWrapper);
  Result<uint64_t> n = ImageSize(&wrapper);
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(*n, fatbin.size());
  wrapper.version = 7;
  EXPECT_FALSE(ImageSize(&wrapper).ok());
  wrapper.version = 2;
  wrapper.data = nullptr;
  EXPECT_FALSE(ImageSize(&wrapper).ok());
}

TEST(ImageSize, Garbage) {
  EXPECT_FALSE(ImageSize(nullptr).ok());
  const unsigned char junk[] = {0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4};
  Result<uint64_t> n = ImageSize(junk, sizeof junk);
  ASSERT_FALSE(n.ok());
  EXPECT_NE(n.status().message().find("0xefbeadde"), std::string::npos) << n.status().message();
  EXPECT_FALSE(ImageSize("\x7f" "ELF", 4).ok());  // truncated header
  const unsigned char fat[16] = {0x50, 0xed, 0x55, 0xba, 1, 0, 16, 0, 0xff, 0xff, 0xff, 0xff,
                                 0xff, 0xff, 0xff, 0xff};
  EXPECT_FALSE(ImageSize(fat).ok());  // files_size overflows
}

TEST(Fatbin, DefaultCuda13Layout) {
  std::vector<std::byte> b = ReadFile("sample.fatbin");
  Result<std::vector<FatbinEntry>> entries = ParseFatbin(b);
  ASSERT_TRUE(entries.ok()) << entries.status().ToString();
  ASSERT_EQ(entries->size(), 3u);
  int elf = 0, ptx = 0;
  for (const FatbinEntry& e : *entries) {
    if (e.is_elf()) {
      ++elf;
      EXPECT_EQ(e.compression, Compression::kNone);
      Result<ModuleInfo> m = ParseCubin(e.data());
      ASSERT_TRUE(m.ok()) << m.status().ToString();
      CheckCubin(*m, e.arch, e.arch >= 90);
    } else {
      ++ptx;
      EXPECT_EQ(e.arch, 90u);
      EXPECT_EQ(e.compression, Compression::kZstd);  // CUDA 13 compresses PTX by default
      EXPECT_EQ(e.data().size(), e.uncompressed_size);
      std::string text(reinterpret_cast<const char*>(e.data().data()), e.data().size());
      Result<ModuleInfo> m = ParsePtx(text);
      ASSERT_TRUE(m.ok()) << m.status().ToString();
      CheckLayouts(*m);
    }
  }
  EXPECT_EQ(elf, 2);
  EXPECT_EQ(ptx, 1);
  EXPECT_EQ(SelectElf(*entries, 90)->arch, 90u);
  EXPECT_EQ(SelectElf(*entries, 86)->arch, 80u);
  EXPECT_EQ(SelectElf(*entries, 100), nullptr);
  EXPECT_EQ(SelectElf(*entries, 75), nullptr);
  EXPECT_EQ(SelectPtx(*entries, 120)->arch, 90u);
  EXPECT_EQ(SelectPtx(*entries, 89), nullptr);
  // ELF first, else PTX, else nothing.
  EXPECT_TRUE(SelectCode(*entries, 90)->is_elf());
  EXPECT_TRUE(SelectCode(*entries, 100)->is_ptx());
  EXPECT_EQ(SelectCode(*entries, 75), nullptr);
}

TEST(Fatbin, CompressedElfMatchesPlain) {
  std::vector<std::byte> plain_file = ReadFile("sample_plain.fatbin");
  Result<std::vector<FatbinEntry>> plain = ParseFatbin(plain_file);
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  for (auto [name, kind] : {std::pair{"sample_zstd.fatbin", Compression::kZstd},
                            std::pair{"sample_lz4.fatbin", Compression::kLz4}}) {
    std::vector<std::byte> b = ReadFile(name);
    Result<std::vector<FatbinEntry>> entries = ParseFatbin(b);
    ASSERT_TRUE(entries.ok()) << name << ": " << entries.status().ToString();
    ASSERT_EQ(entries->size(), plain->size());
    for (size_t i = 0; i < entries->size(); ++i) {
      const FatbinEntry& e = (*entries)[i];
      EXPECT_EQ(e.compression, kind) << name;
      EXPECT_LT(e.payload.size(), e.uncompressed_size) << name;
      Bytes got = e.data(), want = (*plain)[i].data();
      if (e.is_ptx()) {
        // A stored (uncompressed) PTX payload is padded with NULs to 8 bytes;
        // the uncompressed size of a compressed one is exact.
        auto text = [](Bytes b) {
          const char* p = reinterpret_cast<const char*>(b.data());
          return std::string(p, strnlen(p, b.size()));
        };
        EXPECT_EQ(text(got), text(want)) << name;
        continue;
      }
      ASSERT_EQ(got.size(), want.size()) << name << " entry " << i;
      EXPECT_EQ(std::memcmp(got.data(), want.data(), got.size()), 0) << name << " entry " << i;
    }
    // Without decompression the listing is still complete.
    Result<std::vector<FatbinEntry>> lazy = ParseFatbin(b, {.decompress = false});
    ASSERT_TRUE(lazy.ok());
    EXPECT_TRUE((*lazy)[0].decompressed.empty());
  }
}

TEST(Fatbin, PtxOnly) {
  std::vector<std::byte> b = ReadFile("sample_ptxonly.fatbin");
  Result<std::vector<FatbinEntry>> entries = ParseFatbin(b);
  ASSERT_TRUE(entries.ok());
  EXPECT_EQ(SelectElf(*entries, 90), nullptr);
  ASSERT_NE(SelectPtx(*entries, 90), nullptr);
}

TEST(Cubin, AllArchitectures) {
  for (auto [name, arch] : {std::pair{"sample_sm90.cubin", 90u}, std::pair{"sample_sm75.cubin", 75u},
                            std::pair{"sample_sm120.cubin", 120u},
                            std::pair{"sample_rdc_sm90.cubin", 90u}}) {
    SCOPED_TRACE(name);
    std::vector<std::byte> b = ReadFile(name);
    Result<ModuleInfo> m = ParseCubin(b);
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    CheckCubin(*m, arch, arch >= 90);
  }
}

TEST(Cubin, RdcDeviceFunctionIsNotAKernel) {
  std::vector<std::byte> b = ReadFile("sample_rdc_sm90.cubin");
  Result<ModuleInfo> m = ParseCubin(b);
  ASSERT_TRUE(m.ok());
  for (const KernelInfo& k : m->kernels) EXPECT_EQ(k.name.find("helper"), std::string::npos);
}

TEST(Ptx, MatchesCubinLayout) {
  std::vector<std::byte> b = ReadFile("sample_sm90.ptx");
  Result<ModuleInfo> m = ParsePtx(std::string_view(reinterpret_cast<const char*>(b.data()), b.size()));
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_TRUE(m->is_ptx);
  EXPECT_EQ(m->arch, 90u);
  CheckLayouts(*m);
  EXPECT_EQ(m->FindKernel("_Z7boundedPfi")->max_threads[0], 256u);
  EXPECT_EQ(m->FindKernel("_Z9clusteredPf")->cluster_dims[0], 2u);
  const GlobalInfo* table = m->FindGlobal("g_table");
  ASSERT_NE(table, nullptr);
  EXPECT_EQ(table->size, 64u);
  float f[3];
  ASSERT_GE(table->init.size(), 12u);
  std::memcpy(f, table->init.data(), 12);
  EXPECT_EQ(f[1], 2.0f);
  ASSERT_NE(m->FindGlobal("c_coef"), nullptr);
  EXPECT_TRUE(m->FindGlobal("c_coef")->is_constant);
  EXPECT_EQ(m->FindGlobal("g_counter")->size, 4u);
  EXPECT_FALSE(m->FindGlobal("g_counter")->is_managed);
  ASSERT_NE(m->FindGlobal("m_steps"), nullptr);
  EXPECT_TRUE(m->FindGlobal("m_steps")->is_managed);
}

TEST(Ptx, Handwritten) {
  const char* ptx = R"(
.version 8.0
.target sm_90
.address_size 64
.extern .shared .align 4 .b8 dyn[];
.visible .global .align 8 .u64 ptrs[2] = {generic(dyn), 0};
.const .align 4 .s32 neg = -2;
.func (.param .b32 r) f(.param .b32 x) { ret; }
/* .entry commented(.param .u32 x) */
.visible .entry k(.param .u8 a, .param .align 16 .b8 s[20], .param .u64 .ptr .global .align 8 p)
.maxntid 128, 1, 1
{ ret; }
)";
  Result<ModuleInfo> m = ParsePtx(ptx);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  ASSERT_EQ(m->kernels.size(), 1u);
  const KernelInfo& k = m->kernels[0];
  ASSERT_EQ(k.params.size(), 3u);
  EXPECT_EQ(k.params[1].offset, 16u);
  EXPECT_EQ(k.params[1].size, 20u);
  EXPECT_EQ(k.params[2].offset, 40u);
  EXPECT_EQ(k.max_threads[0], 128u);
  ASSERT_NE(m->FindGlobal("neg"), nullptr);
  int32_t v = 0;
  std::memcpy(&v, m->FindGlobal("neg")->init.data(), 4);
  EXPECT_EQ(v, -2);
  EXPECT_EQ(m->FindGlobal("ptrs")->size, 16u);
  EXPECT_EQ(m->FindGlobal("dyn"), nullptr);
}

// ---- malformed inputs: errors, never crashes -------------------------------

TEST(Malformed, EveryTruncationOfACubinFails) {
  std::vector<std::byte> b = ReadFile("sample_sm90.cubin");
  for (size_t n = 0; n < b.size(); n += (n < 256 ? 1 : 13)) {
    std::vector<std::byte> cut(b.begin(), b.begin() + n);
    EXPECT_FALSE(ParseCubin(cut).ok()) << n;
    EXPECT_FALSE(ImageSize(cut.data(), cut.size()).ok()) << n;
  }
}

TEST(Malformed, EveryTruncationOfAFatbinFails) {
  for (const char* name : {"sample.fatbin", "sample_zstd.fatbin", "sample_lz4.fatbin"}) {
    std::vector<std::byte> b = ReadFile(name);
    for (size_t n = 0; n < b.size(); n += (n < 256 ? 1 : 7)) {
      std::vector<std::byte> cut(b.begin(), b.begin() + n);
      EXPECT_FALSE(ParseFatbin(cut).ok()) << name << " " << n;
    }
  }
}

// Random byte corruption: any result is fine as long as nothing crashes or
// reads out of bounds (run under ASan: -DRGPU_SANITIZE=ON).
TEST(Malformed, RandomCorruptionNeverCrashes) {
  std::mt19937 rng(1234);
  for (const char* name : {"sample_sm90.cubin", "sample.fatbin", "sample_zstd.fatbin",
                           "sample_lz4.fatbin", "sample_sm90.ptx"}) {
    std::vector<std::byte> orig = ReadFile(name);
    for (int iter = 0; iter < 400; ++iter) {
      std::vector<std::byte> b = orig;
      int flips = 1 + rng() % 8;
      for (int i = 0; i < flips; ++i) {
        size_t pos = rng() % b.size();
        // Bias toward headers, where sizes and offsets live.
        if (rng() % 2) pos = rng() % std::min<size_t>(b.size(), 256);
        b[pos] = static_cast<std::byte>(rng());
      }
      (void)ImageSize(b.data(), b.size());
      Result<std::vector<FatbinEntry>> entries = ParseFatbin(b);
      if (entries.ok()) {
        for (const FatbinEntry& e : *entries) {
          if (e.is_elf()) (void)ParseCubin(e.data());
        }
      }
      (void)ParseCubin(b);
      (void)ParsePtx(std::string_view(reinterpret_cast<const char*>(b.data()), b.size()));
    }
  }
}

TEST(Malformed, CorruptCompressedPayload) {
  std::vector<std::byte> b = ReadFile("sample_zstd.fatbin");
  Result<std::vector<FatbinEntry>> entries = ParseFatbin(b, {.decompress = false});
  ASSERT_TRUE(entries.ok());
  // Corrupt the middle of the first payload.
  size_t off = (*entries)[0].payload.data() - b.data() + (*entries)[0].payload.size() / 2;
  for (int i = 0; i < 16; ++i) b[off + i] = std::byte{0xff};
  EXPECT_FALSE(ParseFatbin(b).ok());
  EXPECT_FALSE(Decompress(Compression::kLz4, (*entries)[0].payload, 100).ok());
}

TEST(Malformed, DecompressionBombRefused) {
  std::vector<std::byte> b = ReadFile("sample_zstd.fatbin");
  ParseFatbinOptions opt;
  opt.max_uncompressed_bytes = 1000;
  EXPECT_FALSE(ParseFatbin(b, opt).ok());
  opt.max_uncompressed_bytes = 10632 + 100;  // the ELF fits, ELF + PTX do not
  EXPECT_FALSE(ParseFatbin(b, opt).ok());
  // Sizes the payload cannot produce are refused before allocating.
  Result<std::vector<FatbinEntry>> entries = ParseFatbin(b, {.decompress = false});
  ASSERT_TRUE(entries.ok());
  Bytes raw = (*entries)[0].payload;
  EXPECT_FALSE(Decompress(Compression::kZstd, raw, uint64_t{3} << 30).ok());
  EXPECT_FALSE(Decompress(Compression::kLz4, raw, uint64_t{3} << 30).ok());
}

TEST(Malformed, SectionTableOutOfRange) {
  std::vector<std::byte> b = ReadFile("sample_sm90.cubin");
  std::vector<std::byte> c = b;
  uint64_t shoff = uint64_t{1} << 62;
  std::memcpy(c.data() + 0x28, &shoff, 8);
  EXPECT_FALSE(ParseCubin(c).ok());
  EXPECT_FALSE(ImageSize(c.data()).ok());
  c = b;
  uint16_t shnum = 0xfff0;
  std::memcpy(c.data() + 0x3c, &shnum, 2);
  EXPECT_FALSE(ParseCubin(c).ok());
  c = b;
  uint16_t shentsize = 8;
  std::memcpy(c.data() + 0x3a, &shentsize, 2);
  EXPECT_FALSE(ParseCubin(c).ok());
}

TEST(Malformed, PtxGarbage) {
  EXPECT_FALSE(ParsePtx("").ok());
  EXPECT_FALSE(ParsePtx(".version 8.0 .entry").ok());
  EXPECT_FALSE(ParsePtx(".version 8.0 .entry k(.param .u32").ok());
  EXPECT_FALSE(ParsePtx(".version 8.0 .entry k(.param .b8 x[99999999999999999999])").ok());
  EXPECT_FALSE(ParsePtx(".version 8.0 .global .b8 huge[4294967296][4294967296];").ok());
  EXPECT_FALSE(ParsePtx(".version 8.0 { ").ok());
}

}  // namespace
}  // namespace rgpu::image

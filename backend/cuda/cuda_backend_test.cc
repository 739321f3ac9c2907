// Tests of the cuda backend's loader. There is no GPU in CI: these prove the
// plumbing (search, client detection, table filling) against the CUDA
// toolkit's stub library and the recorded answers of driver 580.159.
#include "backend/cuda/cuda_backend.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

namespace rgpu::backend {
namespace {

namespace fs = std::filesystem;

constexpr char kStub[] = "/usr/local/cuda/lib64/stubs/libcuda.so";

bool HaveStub() { return fs::exists(kStub); }

// Sets an environment variable for the life of the object.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    if (const char* old = getenv(name)) old_ = old, had_ = true;
    setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (had_) {
      setenv(name_, old_.c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::string old_;
  bool had_ = false;
};

int CountFilled(const DriverTable& t) {
  int n = 0;
  for (int i = 0; i < DriverTableSize(); ++i) n += DriverTableEntry(t, i) != nullptr;
  return n;
}

TEST(CudaBackendTest, NonexistentPathFailsNamingThePath) {
  DriverTable table;
  BackendOptions options{.kind = "cuda", .driver_path = "/nonexistent/dir/libcuda.so.1"};
  Status s = LoadCudaBackend(options, &table);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("dlopen /nonexistent/dir/libcuda.so.1"), std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find("No such file or directory"), std::string::npos) << s.message();
  EXPECT_EQ(CountFilled(table), 0);
}

TEST(CudaBackendTest, ToolkitStubFillsEveryEntryThroughDlsymFallback) {
  if (!HaveStub()) GTEST_SKIP() << kStub << " not installed";
  DriverTable table;
  BackendOptions options{.kind = "cuda", .driver_path = kStub};
  Status s = LoadCudaBackend(options, &table);
  ASSERT_TRUE(s.ok()) << s.ToString();
  for (int i = 0; i < DriverTableSize(); ++i) {
    EXPECT_NE(DriverTableEntry(table, i), nullptr) << DriverTableName(i);
  }
  // The stub's functions are callable and say what they are.
  int version = 0;
  EXPECT_EQ(table.cuDriverGetVersion(&version), CUDA_ERROR_STUB_LIBRARY);
}

TEST(CudaBackendTest, EnvironmentChoiceIsTheOnlyCandidate) {
  {
    ScopedEnv env("RGPU_REAL_LIBCUDA", "/nonexistent/libcuda.so.1");
    ASSERT_EQ(CudaDriverCandidates().size(), 1u);
    DriverTable table;
    Status s = LoadCudaBackend(BackendOptions{.kind = "cuda"}, &table);
    ASSERT_FALSE(s.ok());
    EXPECT_NE(s.message().find("/nonexistent/libcuda.so.1"), std::string::npos) << s.message();
    EXPECT_NE(s.message().find("RGPU_REAL_LIBCUDA"), std::string::npos) << s.message();
  }
  if (!HaveStub()) GTEST_SKIP() << kStub << " not installed";
  ScopedEnv env("RGPU_REAL_LIBCUDA", kStub);
  DriverTable table;
  Status s = LoadCudaBackend(BackendOptions{.kind = "cuda"}, &table);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_NE(table.cuMemAlloc_v2, nullptr);
}

TEST(CudaBackendTest, DefaultSearchOrder) {
  unsetenv("RGPU_REAL_LIBCUDA");
  std::vector<std::string> c = CudaDriverCandidates();
  ASSERT_EQ(c.size(), 4u);
  EXPECT_EQ(c[0], "/usr/local/nvidia/lib64/libcuda.so.1");
  EXPECT_EQ(c[3], "libcuda.so.1");
}

TEST(CudaBackendTest, LibraryWithoutGetProcAddressIsNotADriver) {
  DriverTable table;
  BackendOptions options{.kind = "cuda", .driver_path = "libm.so.6"};
  Status s = LoadCudaBackend(options, &table);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("not a CUDA driver"), std::string::npos) << s.message();
}

TEST(CudaBackendTest, RefusesLibraryWithClientMarkerSection) {
  EXPECT_TRUE(HasClientMarkerSection(RGPU_FAKE_CLIENT_LIB));
  DriverTable table;
  BackendOptions options{.kind = "cuda", .driver_path = RGPU_FAKE_CLIENT_LIB};
  Status s = LoadCudaBackend(options, &table);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("rgpu's client library"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find(".rgpu_client"), std::string::npos) << s.message();
}

TEST(CudaBackendTest, RefusesTheFileInTheClientLibraryDir) {
  if (!HaveStub()) GTEST_SKIP() << kStub << " not installed";
  fs::path dir = fs::temp_directory_path() / ("rgpu_client_dir_" + std::to_string(getpid()));
  fs::create_directories(dir);
  fs::create_symlink(kStub, dir / "libcuda.so.1");
  {
    ScopedEnv env("RGPU_CLIENT_LIB_DIR", dir.string());
    DriverTable table;
    Status s = LoadCudaBackend(BackendOptions{.kind = "cuda", .driver_path = kStub}, &table);
    ASSERT_FALSE(s.ok());
    EXPECT_NE(s.message().find("rgpu's client library (the same file as"), std::string::npos)
        << s.message();
    EXPECT_EQ(CountFilled(table), 0);
  }
  fs::remove_all(dir);
}

TEST(CudaBackendTest, MarkerCheckSurvivesMalformedFiles) {
  EXPECT_FALSE(HasClientMarkerSection("/nonexistent"));
  EXPECT_FALSE(HasClientMarkerSection("/proc/self/status"));  // not a regular file
  EXPECT_FALSE(HasClientMarkerSection("/"));
  if (HaveStub()) {
    EXPECT_FALSE(HasClientMarkerSection(kStub));
  }

  // A real ELF header followed by nothing: section table out of the file.
  fs::path f = fs::temp_directory_path() / ("rgpu_trunc_" + std::to_string(getpid()));
  std::ifstream in(RGPU_FAKE_CLIENT_LIB, std::ios::binary);
  std::string head(64, '\0');
  in.read(head.data(), 64);
  for (size_t keep : {0, 4, 16, 63, 64}) {
    std::ofstream(f, std::ios::binary | std::ios::trunc) << head.substr(0, keep);
    EXPECT_FALSE(HasClientMarkerSection(f.string())) << keep;
  }
  fs::remove(f);
}

TEST(CudaBackendTest, ProcAddressRequestStripsVersionSuffix) {
  EXPECT_EQ(ProcAddressRequestFor("cuMemAlloc_v2").symbol, "cuMemAlloc");
  EXPECT_EQ(ProcAddressRequestFor("cuCtxCreate_v4").symbol, "cuCtxCreate");
  EXPECT_EQ(ProcAddressRequestFor("cuInit").symbol, "cuInit");
  EXPECT_EQ(ProcAddressRequestFor("cuMemAlloc_v2").cuda_version, CUDA_VERSION);
  EXPECT_EQ(ProcAddressRequestFor("cuFoo_v").symbol, "cuFoo_v");
  EXPECT_EQ(ProcAddressRequestFor("cuFoo_vx").symbol, "cuFoo_vx");
}

// Every request the loader makes, answered the way the real driver 580.159
// answered it (recorded): the answer must be exactly the entry's own symbol,
// or the table would hold a function of another signature.
TEST(CudaBackendTest, RequestsResolveToTheEntryOnRecordedDriver) {
  std::ifstream in(std::string(RGPU_DATA_DIR_FOR_TEST) + "/driver/procaddress-580.159.txt");
  ASSERT_TRUE(in) << "missing data/driver/procaddress-580.159.txt";
  struct Row {
    int lo, hi;
    std::string answer;
  };
  std::multimap<std::string, Row> rows;  // flags 0 only
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    std::string name, answer;
    int flags, lo, hi;
    if (!(fields >> name >> flags >> lo >> hi >> answer)) continue;
    if (flags == 0) rows.emplace(name, Row{lo, hi, answer});
  }
  ASSERT_GT(rows.size(), 600u);
  for (int i = 0; i < DriverTableSize(); ++i) {
    const std::string entry = DriverTableName(i);
    ProcAddressRequest req = ProcAddressRequestFor(entry);
    std::string answer = "(no row)";
    auto [first, last] = rows.equal_range(req.symbol);
    for (auto it = first; it != last; ++it) {
      if (it->second.lo <= req.cuda_version && req.cuda_version <= it->second.hi) {
        answer = it->second.answer;
      }
    }
    EXPECT_EQ(answer, entry) << "cuGetProcAddress(" << req.symbol << ", " << req.cuda_version
                             << ")";
  }
}

}  // namespace
}  // namespace rgpu::backend

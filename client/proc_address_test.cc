// cuGetProcAddress against the real driver's recorded answers
// (data/driver/procaddress-580.159.txt) and its measured edge cases.
#include "client/proc_address.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace rgpu::client {
namespace {

constexpr int kUntouched = 3;  // see the sentinel comment below

struct RecordedRow {
  std::string name;
  int flags, min_version, max_version;
  std::string answer;  // a symbol, or "ERRn/Qm"
};

std::vector<RecordedRow> ReadRecording() {
  std::ifstream in(RGPU_PROCADDRESS_FILE);
  std::vector<RecordedRow> rows;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    RecordedRow row;
    fields >> row.name >> row.flags >> row.min_version >> row.max_version >> row.answer;
    rows.push_back(row);
  }
  return rows;
}

const char* SymbolName(void* pfn) {
  for (size_t i = 0; i < proc::kSymbolCount; ++i) {
    if (proc::kSymbols[i] == pfn) return proc::kSymbolNames[i];
  }
  return nullptr;
}

// Checks one lookup against one recorded answer; returns a description of
// the mismatch, or "" if it matches.
std::string Mismatch(const RecordedRow& row, int version) {
  void* pfn = reinterpret_cast<void*>(0x1);
  // A sentinel no call writes (3: inside the enum's range, so that holding
  // it is defined behaviour; the driver's answers are 0..2).
  auto status = static_cast<CUdriverProcAddressQueryResult>(kUntouched);
  const CUresult r = cuGetProcAddress_v2(row.name.c_str(), &pfn, version,
                                         static_cast<cuuint64_t>(row.flags), &status);
  auto why = [&] {
    std::ostringstream out;
    out << row.name << " flags " << row.flags << " version " << version << ": got rc " << r
        << " status " << status << " pfn " << (SymbolName(pfn) ? SymbolName(pfn) : "?") << " ("
        << pfn << "), recorded " << row.answer;
    return out.str();
  };
  int err = -1, query = -1;
  if (std::sscanf(row.answer.c_str(), "ERR%d/Q%d", &err, &query) == 2) {
    if (r != err) return why();
    if (err == CUDA_SUCCESS) {
      if (pfn != nullptr || status != query) return why();
    } else if (pfn != reinterpret_cast<void*>(0x1) || status != kUntouched) {
      return why();  // the driver leaves both outputs alone on errors
    }
    return "";
  }
  if (r != CUDA_SUCCESS || status != CU_GET_PROC_ADDRESS_SUCCESS || pfn == nullptr ||
      SymbolName(pfn) == nullptr || row.answer != SymbolName(pfn)) {
    return why();
  }
  return "";
}

// Every recorded (name, flags, version range), probed on and between the
// recording's 10-step grid.
TEST(ProcAddressTest, AnswersEveryRecordedNameFlagsAndVersion) {
  const std::vector<RecordedRow> rows = ReadRecording();
  ASSERT_EQ(rows.size(), 5782u);  // every line but the 5 of the header
  size_t checked = 0, failures = 0;
  for (const RecordedRow& row : rows) {
    // Off-grid versions belong to the row below, except above the driver's
    // version (13000), where anything is refused (measured with 13001).
    const int last = row.max_version >= proc::kDriverVersion ? row.max_version : row.max_version + 9;
    for (int version = row.min_version; version <= last; version += 7) {
      const std::string why = Mismatch(row, version);
      if (!why.empty() && ++failures <= 20) ADD_FAILURE() << why;
      ++checked;
    }
    EXPECT_EQ(Mismatch(row, row.max_version), "");
  }
  EXPECT_EQ(failures, 0u);
  EXPECT_GT(checked, 1'000'000u);
}

TEST(ProcAddressTest, GetProcAddressAt12000IsTheV2EntryPoint) {
  void* pfn = nullptr;
  ASSERT_EQ(cuGetProcAddress_v2("cuGetProcAddress", &pfn, 12000, 0, nullptr), CUDA_SUCCESS);
  EXPECT_EQ(pfn, reinterpret_cast<void*>(&cuGetProcAddress_v2));
  ASSERT_EQ(cuGetProcAddress_v2("cuGetProcAddress", &pfn, 11030, 0, nullptr), CUDA_SUCCESS);
  EXPECT_EQ(pfn, reinterpret_cast<void*>(&cuGetProcAddress));
  ASSERT_EQ(cuGetProcAddress_v2("cuGetExportTable", &pfn, 13000, 0, nullptr), CUDA_SUCCESS);
  EXPECT_EQ(pfn, reinterpret_cast<void*>(&cuGetExportTable));
}

TEST(ProcAddressTest, PerThreadFlagPicksPtszVariants) {
  void* pfn = nullptr;
  ASSERT_EQ(cuGetProcAddress_v2("cuMemcpyAsync", &pfn, 13000, 2, nullptr), CUDA_SUCCESS);
  EXPECT_STREQ(SymbolName(pfn), "cuMemcpyAsync_ptsz");
  // Measured: 3 (both bits) answers as 2.
  ASSERT_EQ(cuGetProcAddress_v2("cuMemcpyAsync", &pfn, 13000, 3, nullptr), CUDA_SUCCESS);
  EXPECT_STREQ(SymbolName(pfn), "cuMemcpyAsync_ptsz");
  // Default is legacy whatever the environment says (the driver can't know
  // how the caller was compiled; cuda.h's inline wrapper adds the flag).
  setenv("CUDA_API_PER_THREAD_DEFAULT_STREAM", "1", 1);
  ASSERT_EQ(cuGetProcAddress_v2("cuMemcpyAsync", &pfn, 13000, 0, nullptr), CUDA_SUCCESS);
  EXPECT_STREQ(SymbolName(pfn), "cuMemcpyAsync");
  unsetenv("CUDA_API_PER_THREAD_DEFAULT_STREAM");
}

// Edge cases measured on the real 580.159 driver.
TEST(ProcAddressTest, MeasuredEdgeCases) {
  void* pfn = reinterpret_cast<void*>(0x1);
  // A sentinel no call writes (3: inside the enum's range, so that holding
  // it is defined behaviour; the driver's answers are 0..2).
  auto status = static_cast<CUdriverProcAddressQueryResult>(kUntouched);
  // Above the driver's version, even off the 10-step grid: untouched outputs.
  EXPECT_EQ(cuGetProcAddress_v2("cuMemAlloc", &pfn, 13001, 0, &status), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(pfn, reinterpret_cast<void*>(0x1));
  EXPECT_EQ(status, kUntouched);
  // Unknown flags.
  EXPECT_EQ(cuGetProcAddress_v2("cuMemAlloc", &pfn, 13000, 4, &status), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(cuGetProcAddress_v2("cuMemAlloc", &pfn, 13000, 8, &status), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(pfn, reinterpret_cast<void*>(0x1));
  // A negative version answers as the newest.
  ASSERT_EQ(cuGetProcAddress_v2("cuMemAlloc", &pfn, -1, 0, &status), CUDA_SUCCESS);
  EXPECT_STREQ(SymbolName(pfn), "cuMemAlloc_v2");
  // Between grid points: 3015 is still before cuMemAlloc_v2 (3020).
  ASSERT_EQ(cuGetProcAddress_v2("cuMemAlloc", &pfn, 3015, 0, &status), CUDA_SUCCESS);
  EXPECT_STREQ(SymbolName(pfn), "cuMemAlloc");
  // Older than CUDA 1.0.
  ASSERT_EQ(cuGetProcAddress_v2("cuMemAlloc", &pfn, 0, 0, &status), CUDA_SUCCESS);
  EXPECT_EQ(pfn, nullptr);
  EXPECT_EQ(status, CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT);
  ASSERT_EQ(cuGetProcAddress_v2("cuMemAlloc_v2", &pfn, 999, 0, &status), CUDA_SUCCESS);
  EXPECT_EQ(status, CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND);
  // Names the driver doesn't export, the empty name included.
  for (const char* name : {"cuFooBar", "", "cuMemAlloc_v3", "zzz", "a"}) {
    pfn = reinterpret_cast<void*>(0x1);
    ASSERT_EQ(cuGetProcAddress_v2(name, &pfn, 13000, 0, &status), CUDA_SUCCESS) << name;
    EXPECT_EQ(pfn, nullptr);
    EXPECT_EQ(status, CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND);
  }
  // symbolStatus is optional.
  EXPECT_EQ(cuGetProcAddress_v2("cuFooBar", &pfn, 13000, 0, nullptr), CUDA_SUCCESS);
  // The real driver crashes here; we refuse.
  EXPECT_EQ(cuGetProcAddress_v2(nullptr, &pfn, 13000, 0, &status), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(cuGetProcAddress_v2("cuInit", nullptr, 13000, 0, &status), CUDA_ERROR_INVALID_VALUE);
}

// The CUDA 11 entry point reports "no function" as NOT_FOUND and leaves *pfn.
TEST(ProcAddressTest, V1EntryPoint) {
  void* pfn = reinterpret_cast<void*>(0x1);
  EXPECT_EQ(cuGetProcAddress("cuFooBar", &pfn, 13000, 0), CUDA_ERROR_NOT_FOUND);
  EXPECT_EQ(cuGetProcAddress("cuMemAlloc", &pfn, 1000, 0), CUDA_ERROR_NOT_FOUND);
  EXPECT_EQ(cuGetProcAddress("cuMemAlloc_v2", &pfn, 13000, 0), CUDA_ERROR_NOT_FOUND);
  EXPECT_EQ(cuGetProcAddress("cuMemAlloc", &pfn, 13010, 0), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(cuGetProcAddress("cuMemAlloc", &pfn, 13000, 4), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(pfn, reinterpret_cast<void*>(0x1));
  ASSERT_EQ(cuGetProcAddress("cuMemAlloc", &pfn, 13000, 0), CUDA_SUCCESS);
  EXPECT_STREQ(SymbolName(pfn), "cuMemAlloc_v2");
}

TEST(ProcAddressTest, TableIsSortedAndWellFormed) {
  ASSERT_EQ(proc::kEntryCount, 682u);
  for (size_t i = 1; i < proc::kEntryCount; ++i) {
    EXPECT_LT(std::strcmp(proc::kEntries[i - 1].name, proc::kEntries[i].name), 0);
  }
  for (size_t i = 0; i < proc::kEntryCount; ++i) {
    const proc::Entry& e = proc::kEntries[i];
    for (int flags = 0; flags <= 2; ++flags) {
      bool has_oldest = false;
      for (size_t r = e.first_row; r < e.first_row + e.row_count; ++r) {
        has_oldest |= proc::kRows[r].flags == flags && proc::kRows[r].min_version == 1000;
      }
      EXPECT_TRUE(has_oldest) << e.name << " flags " << flags;
    }
  }
  for (size_t i = 0; i < proc::kSymbolCount; ++i) EXPECT_NE(proc::kSymbols[i], nullptr);
  EXPECT_EQ(proc::kDriverVersion, 13000);
}

}  // namespace
}  // namespace rgpu::client

#include "proto/nvml_query.h"

#include <gtest/gtest.h>

namespace rgpu::proto {
namespace {

std::vector<uint8_t> Encode(NvmlWhat what, const NvmlAnswer& a) {
  std::vector<uint8_t> buf;
  Writer w(&buf);
  EncodeNvmlAnswer(w, static_cast<uint32_t>(what), a);
  return buf;
}

Status Decode(NvmlWhat what, const std::vector<uint8_t>& buf, NvmlAnswer* a) {
  Reader r(buf);
  return DecodeNvmlAnswer(r, static_cast<uint32_t>(what), a);
}

TEST(NvmlQueryTest, MemoryRoundTrips) {
  NvmlAnswer a;
  a.mem_total = 150109880320;
  a.mem_reserved = 1;
  a.mem_free = 150109880320 - (1 << 28);
  a.mem_used = 1 << 28;
  NvmlAnswer b;
  ASSERT_TRUE(Decode(NvmlWhat::kMemory, Encode(NvmlWhat::kMemory, a), &b).ok());
  EXPECT_EQ(b.mem_total, a.mem_total);
  EXPECT_EQ(b.mem_reserved, 1u);
  EXPECT_EQ(b.mem_free, a.mem_free);
  EXPECT_EQ(b.mem_used, a.mem_used);
}

TEST(NvmlQueryTest, ProcessesAndStringsRoundTrip) {
  NvmlAnswer a;
  a.processes = {{42, 1000, true}, {43, 5, false}};
  NvmlAnswer b;
  ASSERT_TRUE(Decode(NvmlWhat::kProcesses, Encode(NvmlWhat::kProcesses, a), &b).ok());
  ASSERT_EQ(b.processes.size(), 2u);
  EXPECT_EQ(b.processes[0].pid, 42u);
  EXPECT_EQ(b.processes[0].used_bytes, 1000u);
  EXPECT_TRUE(b.processes[0].is_session);
  EXPECT_FALSE(b.processes[1].is_session);

  a.driver_version = "580.159";
  ASSERT_TRUE(Decode(NvmlWhat::kDriverVersion, Encode(NvmlWhat::kDriverVersion, a), &b).ok());
  EXPECT_EQ(b.driver_version, "580.159");
}

TEST(NvmlQueryTest, PcieLinkAndFieldsRoundTrip) {
  NvmlAnswer a;
  for (int i = 0; i < kNvmlPcieValues; ++i) {
    a.pcie_ret[i] = i == 2 ? 3 : 0;  // one value the host can't give
    a.pcie_value[i] = 100 + i;
  }
  a.fields = {{197, 0, 3, 0x123456789abcdefull}, {94, 3, 0, 0}};
  NvmlAnswer b;
  ASSERT_TRUE(Decode(NvmlWhat::kPcie, Encode(NvmlWhat::kPcie, a), &b).ok());
  for (int i = 0; i < kNvmlPcieValues; ++i) {
    EXPECT_EQ(b.pcie_ret[i], a.pcie_ret[i]) << i;
    EXPECT_EQ(b.pcie_value[i], a.pcie_value[i]) << i;
  }
  ASSERT_EQ(b.fields.size(), 2u);
  EXPECT_EQ(b.fields[0].field_id, 197u);
  EXPECT_EQ(b.fields[0].ret, 0u);
  EXPECT_EQ(b.fields[0].value_type, 3u);
  EXPECT_EQ(b.fields[0].value, 0x123456789abcdefull);
  EXPECT_EQ(b.fields[1].field_id, 94u);
  EXPECT_EQ(b.fields[1].ret, 3u);
}

TEST(NvmlQueryTest, AnErrorCarriesNoFields) {
  NvmlAnswer a;
  a.nvml_return = 3;
  a.temperature_c = 99;
  std::vector<uint8_t> buf = Encode(NvmlWhat::kTemperature, a);
  EXPECT_EQ(buf.size(), 4u);
  NvmlAnswer b;
  ASSERT_TRUE(Decode(NvmlWhat::kTemperature, buf, &b).ok());
  EXPECT_EQ(b.nvml_return, 3u);
  EXPECT_EQ(b.temperature_c, 0u);
}

TEST(NvmlQueryTest, EveryTruncationIsRefused) {
  NvmlAnswer a;
  a.processes = {{1, 2, true}};
  a.driver_version = "x";
  a.fields = {{197, 0, 3, 7}};
  for (uint32_t what = kNvmlWhatFirst; what <= kNvmlWhatLast; ++what) {
    std::vector<uint8_t> buf = Encode(static_cast<NvmlWhat>(what), a);
    for (size_t n = 0; n < buf.size(); ++n) {
      std::vector<uint8_t> cut(buf.begin(), buf.begin() + n);
      NvmlAnswer b;
      EXPECT_FALSE(Decode(static_cast<NvmlWhat>(what), cut, &b).ok()) << what << " at " << n;
    }
    buf.push_back(0);
    NvmlAnswer b;
    EXPECT_FALSE(Decode(static_cast<NvmlWhat>(what), buf, &b).ok()) << what << ": trailing byte";
  }
}

TEST(NvmlQueryTest, OversizeAndBadValuesAreRefused) {
  // A process count over the limit, with nothing behind it.
  std::vector<uint8_t> buf;
  Writer w(&buf);
  w.U32(0);
  w.U32(kNvmlMaxProcesses + 1);
  NvmlAnswer b;
  EXPECT_FALSE(Decode(NvmlWhat::kProcesses, buf, &b).ok());
  // A count the frame can't hold.
  buf.clear();
  w.U32(0);
  w.U32(2);
  w.U32(1);
  w.U64(1);
  w.U8(1);
  EXPECT_FALSE(Decode(NvmlWhat::kProcesses, buf, &b).ok());
  // A flag other than 0/1.
  buf.clear();
  w.U32(0);
  w.U32(1);
  w.U32(1);
  w.U64(1);
  w.U8(2);
  EXPECT_FALSE(Decode(NvmlWhat::kProcesses, buf, &b).ok());
  // A driver version over its limit.
  buf.clear();
  w.U32(0);
  w.Str(std::string(kNvmlMaxDriverVersion + 1, '9'));
  EXPECT_FALSE(Decode(NvmlWhat::kDriverVersion, buf, &b).ok());
  // A field count over the limit, and one the frame can't hold.
  buf.clear();
  w.U32(0);
  for (int i = 0; i < 2 * kNvmlPcieValues; ++i) w.U32(0);
  w.U32(kNvmlMaxFields + 1);
  EXPECT_FALSE(Decode(NvmlWhat::kPcie, buf, &b).ok());
  buf.clear();
  w.U32(0);
  for (int i = 0; i < 2 * kNvmlPcieValues; ++i) w.U32(0);
  w.U32(2);
  w.U32(197);
  w.U32(0);
  w.U32(3);
  w.U64(1);
  EXPECT_FALSE(Decode(NvmlWhat::kPcie, buf, &b).ok());
  // An unknown kind.
  Reader r(buf);
  EXPECT_FALSE(DecodeNvmlAnswer(r, 0, &b).ok());
  Reader r2(buf);
  EXPECT_FALSE(DecodeNvmlAnswer(r2, kNvmlWhatLast + 1, &b).ok());
}

}  // namespace
}  // namespace rgpu::proto

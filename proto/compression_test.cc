#include "proto/compression.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <random>

#include "proto/frame_reader.h"

namespace rgpu::proto {
namespace {

// Serves bytes from memory to a FrameReader, in reads of at most `chunk`
// bytes (the way a socket hands out what has arrived).
class MemoryStream : public ByteStream {
 public:
  explicit MemoryStream(std::vector<uint8_t> data, size_t chunk = 1 << 30) : data_(std::move(data)), chunk_(chunk) {}
  Result<size_t> Read(void* buf, size_t n) override {
    if (at_ == data_.size()) return Status::Transport("end of test stream");
    size_t k = std::min({n, chunk_, data_.size() - at_});
    memcpy(buf, data_.data() + at_, k);
    at_ += k;
    return k;
  }

 private:
  std::vector<uint8_t> data_;
  size_t chunk_;
  size_t at_ = 0;
};

// float32 activations after a ReLU: half exact zeros, half random floats.
std::vector<uint8_t> Relu(size_t bytes, uint32_t seed) {
  std::vector<uint8_t> out(bytes);
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist;
  for (size_t i = 0; i + 4 <= bytes; i += 4) {
    float f = std::max(0.0f, dist(rng));
    memcpy(out.data() + i, &f, 4);
  }
  return out;
}

std::vector<uint8_t> Random(size_t bytes, uint32_t seed) {
  std::vector<uint8_t> out(bytes);
  std::mt19937 rng(seed);
  for (auto& b : out) b = static_cast<uint8_t>(rng());
  return out;
}

struct Encoded {
  std::vector<uint8_t> wire;
  Status status;
};

// Encodes one frame into memory, trying every block (set_always_try: what
// goes compressed must not depend on this machine's speed).
Encoded Encode(BlockEncoder& enc, std::span<const uint8_t> fields, std::span<const uint8_t> bulk,
               const ReadyFn& ready = nullptr) {
  Encoded e;
  enc.set_always_try(true);
  e.status = enc.WriteFrame(21, kNoReply, 77, fields, bulk,
                            [&](const uint8_t* p, size_t n) {
                              e.wire.insert(e.wire.end(), p, p + n);
                              return Status();
                            },
                            ready);
  return e;
}

std::vector<uint8_t> Concat(std::span<const uint8_t> a, std::span<const uint8_t> b) {
  std::vector<uint8_t> v(a.begin(), a.end());
  v.insert(v.end(), b.begin(), b.end());
  return v;
}

class CodecTest : public ::testing::TestWithParam<Codec> {};

TEST_P(CodecTest, CompressibleDataShrinksAndComesBackWhole) {
  BlockEncoder enc(GetParam());
  std::vector<uint8_t> fields = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  std::vector<uint8_t> bulk = Relu(3 * kMaxBlock + 12345, 1);
  Encoded e = Encode(enc, fields, bulk);
  ASSERT_TRUE(e.status.ok()) << e.status.ToString();
  EXPECT_LT(e.wire.size(), bulk.size() * 7 / 8) << "ReLU activations must compress";
  EXPECT_EQ(enc.raw_bytes(), fields.size() + bulk.size());

  MemoryStream stream(e.wire, 70000);
  FrameReader reader(-1, &stream, kMaxFramePayload, 4096);
  reader.set_codec(GetParam());
  FrameHeader h;
  ASSERT_TRUE(reader.NextHeader(&h).ok());
  EXPECT_EQ(h.flags, kNoReply) << "the reader hands the frame on without kCompressed";
  EXPECT_EQ(h.call, 21);
  EXPECT_EQ(h.request_id, 77u);
  ASSERT_EQ(h.length, fields.size() + bulk.size());
  // Read in uneven pieces: the fields, a small bit, the rest straight in.
  std::vector<uint8_t> got(h.length);
  ASSERT_TRUE(reader.ReadPayload(got.data(), 12).ok());
  ASSERT_TRUE(reader.ReadPayload(got.data() + 12, 1001).ok());
  ASSERT_TRUE(reader.ReadPayload(got.data() + 1013, got.size() - 1013).ok());
  EXPECT_EQ(got, Concat(fields, bulk));
}

TEST_P(CodecTest, IncompressibleDataIsStoredAndComesBackWhole) {
  BlockEncoder enc(GetParam());
  std::vector<uint8_t> bulk = Random(20 * kMaxBlock, 2);
  Encoded e = Encode(enc, {}, bulk);
  ASSERT_TRUE(e.status.ok());
  // Stored blocks: the data plus a block header each, nothing more.
  EXPECT_EQ(e.wire.size(), kFrameHeaderSize + bulk.size() + 20 * kBlockHeaderSize);
  MemoryStream stream(e.wire);
  FrameReader reader(-1, &stream, kMaxFramePayload);
  reader.set_codec(GetParam());
  FrameHeader h;
  std::vector<uint8_t> got;
  ASSERT_TRUE(reader.NextOwned(&h, &got).ok());
  EXPECT_EQ(got, bulk);
}

TEST_P(CodecTest, SmallFramesComeThroughNext) {
  BlockEncoder enc(GetParam());
  std::vector<uint8_t> bulk(5000, 0);  // zeros: compress to almost nothing
  Encoded e = Encode(enc, std::vector<uint8_t>{9, 9}, bulk);
  ASSERT_TRUE(e.status.ok());
  // A plain frame after it: the reader must be back on the raw stream.
  std::vector<uint8_t> plain = {4, 5, 6};
  AppendFrame({0, 3, 0, 8}, plain, &e.wire);
  MemoryStream stream(e.wire);
  FrameReader reader(-1, &stream, kMaxFramePayload);
  reader.set_codec(GetParam());
  FrameHeader h;
  std::span<const uint8_t> payload;
  ASSERT_TRUE(reader.Next(&h, &payload).ok());
  ASSERT_EQ(payload.size(), 5002u);
  EXPECT_EQ(payload[0], 9);
  EXPECT_TRUE(std::all_of(payload.begin() + 2, payload.end(), [](uint8_t b) { return b == 0; }));
  ASSERT_TRUE(reader.Next(&h, &payload).ok());
  EXPECT_EQ(h.request_id, 8u);
  EXPECT_EQ(std::vector<uint8_t>(payload.begin(), payload.end()), plain);
}

TEST_P(CodecTest, DataThatFailsToArriveStillEndsTheFrame) {
  BlockEncoder enc(GetParam());
  std::vector<uint8_t> bulk = Relu(4 * kMaxBlock, 3);
  std::vector<size_t> asked;
  Encoded e = Encode(enc, {}, bulk, [&](size_t upto) {
    asked.push_back(upto);
    return upto > 2 * kMaxBlock ? Status::Cuda(700, "copy failed") : Status();
  });
  EXPECT_EQ(e.status.code(), Code::kCuda);
  EXPECT_EQ(asked, (std::vector<size_t>{kMaxBlock, 2 * kMaxBlock, 3 * kMaxBlock}))
      << "ready is asked block by block, and no more once it failed";
  MemoryStream stream(e.wire);
  FrameReader reader(-1, &stream, kMaxFramePayload);
  reader.set_codec(GetParam());
  FrameHeader h;
  std::vector<uint8_t> got;
  ASSERT_TRUE(reader.NextOwned(&h, &got).ok()) << "the frame stays whole";
  EXPECT_EQ(got.size(), bulk.size());
}

INSTANTIATE_TEST_SUITE_P(Codecs, CodecTest, ::testing::Values(Codec::kLz4, Codec::kZstd),
                         [](const auto& info) { return std::string(CodecName(info.param)); });

// A compressed frame with one hand-made block, for the refusals below.
std::vector<uint8_t> OneBlockFrame(uint32_t length, uint8_t method, uint32_t raw, uint32_t wire,
                                   std::span<const uint8_t> data) {
  std::vector<uint8_t> out(kFrameHeaderSize);
  EncodeFrameHeader({length, 5, kCompressed, 1}, out.data());
  uint8_t head[kBlockHeaderSize] = {method};
  for (int i = 0; i < 4; ++i) {
    head[1 + i] = static_cast<uint8_t>(raw >> (8 * i));
    head[5 + i] = static_cast<uint8_t>(wire >> (8 * i));
  }
  out.insert(out.end(), head, head + sizeof head);
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

Status ReadAll(std::vector<uint8_t> wire, Codec codec) {
  MemoryStream stream(std::move(wire));
  FrameReader reader(-1, &stream, kMaxFramePayload);
  reader.set_codec(codec);
  FrameHeader h;
  std::vector<uint8_t> got;
  return reader.NextOwned(&h, &got);
}

TEST(CompressedFrames, RefusedOnALinkWithoutCodec) {
  std::vector<uint8_t> data(10, 1);
  Status s = ReadAll(OneBlockFrame(10, 0, 10, 10, data), Codec::kNone);
  EXPECT_EQ(s.code(), Code::kProtocol);
  EXPECT_NE(s.message().find("no compression"), std::string::npos) << s.message();
}

TEST(CompressedFrames, BadBlocksAreProtocolErrors) {
  std::vector<uint8_t> data(64, 7);
  // Stored block whose wire length differs from its raw length.
  EXPECT_EQ(ReadAll(OneBlockFrame(64, 0, 64, 32, data), Codec::kLz4).code(), Code::kProtocol);
  // A block larger than what is left of the frame.
  EXPECT_EQ(ReadAll(OneBlockFrame(10, 0, 64, 64, data), Codec::kLz4).code(), Code::kProtocol);
  // A block over the block limit.
  EXPECT_EQ(ReadAll(OneBlockFrame(kMaxBlock + 1, 0, kMaxBlock + 1, 64, data), Codec::kLz4).code(),
            Code::kProtocol);
  // An empty block (would never end the frame).
  EXPECT_EQ(ReadAll(OneBlockFrame(64, 0, 0, 0, data), Codec::kLz4).code(), Code::kProtocol);
  // The other codec's method on an lz4 link, and an unknown one.
  EXPECT_EQ(ReadAll(OneBlockFrame(64, 2, 64, 64, data), Codec::kLz4).code(), Code::kProtocol);
  EXPECT_EQ(ReadAll(OneBlockFrame(64, 9, 64, 64, data), Codec::kLz4).code(), Code::kProtocol);
  // More wire bytes than the codec can ever need for the block.
  EXPECT_EQ(ReadAll(OneBlockFrame(64, 1, 64, 4096, std::vector<uint8_t>(4096)), Codec::kLz4).code(),
            Code::kProtocol);
  // Garbage where lz4 and zstd data should be.
  std::vector<uint8_t> junk = Random(40, 9);
  EXPECT_EQ(ReadAll(OneBlockFrame(64, 1, 64, 40, junk), Codec::kLz4).code(), Code::kProtocol);
  EXPECT_EQ(ReadAll(OneBlockFrame(64, 2, 64, 40, junk), Codec::kZstd).code(), Code::kProtocol);
}

TEST(CompressedFrames, CorruptedCompressedDataNeverDecodesToTheWrongSize) {
  BlockEncoder enc(Codec::kLz4);
  std::vector<uint8_t> bulk = Relu(kMaxBlock, 4);
  Encoded e = Encode(enc, {}, bulk);
  ASSERT_TRUE(e.status.ok());
  std::mt19937 rng(5);
  for (int i = 0; i < 200; ++i) {
    std::vector<uint8_t> bad = e.wire;
    size_t at = kFrameHeaderSize + kBlockHeaderSize + rng() % (bad.size() - kFrameHeaderSize - kBlockHeaderSize);
    bad[at] ^= static_cast<uint8_t>(1 + rng() % 255);
    Status s = ReadAll(bad, Codec::kLz4);
    // Either caught, or (lz4 carries no checksum) it decoded to exactly the
    // announced size: never a crash, never a short or long frame.
    if (!s.ok()) EXPECT_EQ(s.code(), Code::kProtocol) << s.ToString();
  }
}

// Runs `blocks` decisions on a link where a stored block costs `stored` and
// a compressed one `compressed` ns per byte; returns how many compressed.
int CompressedOf(CompressionPolicy& p, int blocks, double stored, double compressed) {
  int n = 0;
  for (int i = 0; i < blocks; ++i) {
    bool c = p.Decide();
    p.Record(c, c ? compressed : stored);
    n += c;
  }
  return n;
}

TEST(CompressionPolicy, MeasuresStoredFirstThenCompressed) {
  CompressionPolicy p;
  EXPECT_FALSE(p.Decide()) << "first block: stored, to time the link";
  p.Record(false, 1.0);
  EXPECT_TRUE(p.Decide()) << "second: compressed, to time the compressor";
  p.Record(true, 3.0);
}

TEST(CompressionPolicy, AFastLinkStaysPlainWithRarerAndRarerProbes) {
  CompressionPolicy p;
  // Compressing costs 3x the link: after the two measuring blocks only the
  // probes compress, after 8, 16, 32, 64, 128, 128... blocks.
  int compressed = CompressedOf(p, 2 + 8 + 16 + 32 + 64 + 128, 1.0, 3.0);
  EXPECT_EQ(compressed, 1 + 5) << "the measuring block and five probes";
  EXPECT_EQ(CompressedOf(p, 128 * 4, 1.0, 3.0), 4) << "at most one probe per 128 blocks";
}

TEST(CompressionPolicy, ASlowLinkCompressesAllButTheProbes) {
  CompressionPolicy p;
  int compressed = CompressedOf(p, 1000, 20.0, 8.0);
  // Stored: the measuring block and the probes (after 8, 16, ... 128, then
  // every 128 blocks: 10 in 1000).
  EXPECT_GE(compressed, 1000 - 1 - 10) << "stored: the measuring block and the probes only";
}

TEST(CompressionPolicy, ChangesItsMindWhenTheLinkDoes) {
  CompressionPolicy p;
  EXPECT_LE(CompressedOf(p, 300, 1.0, 3.0), 6);
  // The link slows down (a congested network): stored probes see it, and
  // blocks go compressed from then on.
  int compressed = CompressedOf(p, 300, 30.0, 3.0);
  EXPECT_GE(compressed, 300 - 128 - 16) << "switched within one probe interval";
  EXPECT_GE(CompressedOf(p, 100, 30.0, 3.0), 100 - 8);
}

TEST(CompressionPolicy, IncompressibleDataSkipsTries) {
  CompressionPolicy p;
  (void)CompressedOf(p, 4, 20.0, 8.0);  // compressing pays on this link...
  p.Incompressible();                   // ...but the data stopped shrinking
  for (int i = 0; i < CompressionPolicy::kSkipAfterMiss; ++i) EXPECT_FALSE(p.Decide()) << i;
  EXPECT_TRUE(p.Decide());
}

TEST(CompressOffer, ParsesTheEnvironmentWord) {
  EXPECT_EQ(*ParseCompressOffer("", true), 0);
  EXPECT_EQ(*ParseCompressOffer("auto", true), 0) << "auto is off on loopback";
  EXPECT_EQ(*ParseCompressOffer("auto", false), CodecBit(Codec::kLz4));
  EXPECT_EQ(*ParseCompressOffer("", false), CodecBit(Codec::kLz4));
  EXPECT_EQ(*ParseCompressOffer("lz4", true), CodecBit(Codec::kLz4));
  EXPECT_EQ(*ParseCompressOffer("zstd", true), CodecBit(Codec::kZstd));
  EXPECT_EQ(*ParseCompressOffer("off", false), 0);
  Result<uint8_t> bad = ParseCompressOffer("gzip", false);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("RGPU_COMPRESS=gzip"), std::string::npos);
}

TEST(CompressOffer, ServerPicksAnOfferedCodecOrNone) {
  EXPECT_EQ(PickCodec(CodecBit(Codec::kZstd), true), Codec::kZstd);
  EXPECT_EQ(PickCodec(kKnownCodecBits, true), Codec::kLz4);
  EXPECT_EQ(PickCodec(kKnownCodecBits, false), Codec::kNone) << "--compress off";
  EXPECT_EQ(PickCodec(0x80, true), Codec::kNone) << "unknown bits are ignored";
}

}  // namespace
}  // namespace rgpu::proto

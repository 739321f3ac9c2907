// Link's reader: requests reach the executor in arrival order whether they
// come one by one or many in one socket write (the reader then hands them
// over in batches), none is held back when the reader would block or while
// a bulk payload is still arriving, and what arrived before the client hung
// up is still served.
#include "server/worker/link.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <vector>

#include "proto/frame.h"

namespace rgpu::worker {
namespace {

struct Pair {
  int client = -1, worker = -1;
  Pair() {
    int fds[2];
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    client = fds[0];
    worker = fds[1];
  }
  ~Pair() {
    if (client >= 0) close(client);
    close(worker);
  }
};

// `n` frames with request ids first..first+n-1 and a payload of `bytes`
// bytes each; every frame but those in `sync` asks for no reply.
std::vector<uint8_t> Frames(uint64_t first, int n, size_t bytes, const std::vector<int>& sync = {}) {
  std::vector<uint8_t> out;
  for (int i = 0; i < n; ++i) {
    proto::FrameHeader h;
    h.call = 1;
    h.request_id = first + static_cast<uint64_t>(i);
    h.flags = proto::kNoReply;
    for (int s : sync)
      if (s == i) h.flags = 0;
    std::vector<uint8_t> payload(bytes, static_cast<uint8_t>(i));
    h.length = static_cast<uint32_t>(payload.size());
    proto::AppendFrame(h, payload, &out);
  }
  return out;
}

void WriteAll(int fd, const std::vector<uint8_t>& bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = write(fd, bytes.data() + done, bytes.size() - done);
    ASSERT_GT(n, 0);
    done += static_cast<size_t>(n);
  }
}

// Takes `n` requests and checks their ids run on from `first`.
void ExpectRequests(Link& link, uint64_t first, int n, size_t bytes) {
  for (int i = 0; i < n; ++i) {
    ASSERT_TRUE(link.WaitForRequest(std::chrono::milliseconds(5000))) << "request " << i << " held back";
    Request r;
    Status why;
    ASSERT_TRUE(link.NextRequest(&r, &why)) << why.ToString();
    EXPECT_EQ(r.header.request_id, first + static_cast<uint64_t>(i));
    EXPECT_EQ(r.payload.size(), bytes);
    link.Recycle(std::move(r));
  }
}

TEST(LinkTest, ManyFramesInOneWriteArriveInOrder) {
  Pair p;
  Link link(p.worker, 64 << 20);
  link.Start();
  WriteAll(p.client, Frames(100, 500, 40));  // more than one hand-over's worth
  ExpectRequests(link, 100, 500, 40);
}

TEST(LinkTest, NothingIsHeldWhenTheReaderWouldBlock) {
  Pair p;
  Link link(p.worker, 64 << 20);
  link.Start();
  // Three asynchronous requests and then silence: all three must be served
  // although no later frame comes to end the batch.
  WriteAll(p.client, Frames(1, 3, 16));
  ExpectRequests(link, 1, 3, 16);
  // A request the client waits for, in the middle of a burst, and large
  // ones that are never collected: order is kept all the same.
  WriteAll(p.client, Frames(10, 20, 16, {7}));
  ExpectRequests(link, 10, 20, 16);
  WriteAll(p.client, Frames(50, 4, 300000));
  ExpectRequests(link, 50, 4, 300000);
}

TEST(LinkTest, RequestsBeforeABulkPayloadDoNotWaitForIt) {
  Pair p;
  Link link(p.worker, 64 << 20);
  link.Start();
  // Three launches and the first half of a large copy in one write: the
  // launches must reach the executor while the copy's data is still coming.
  std::vector<uint8_t> bytes = Frames(1, 3, 16);
  std::vector<uint8_t> bulk = Frames(4, 1, 300000);
  const size_t half = bulk.size() / 2;
  bytes.insert(bytes.end(), bulk.begin(), bulk.begin() + static_cast<long>(half));
  WriteAll(p.client, bytes);
  ExpectRequests(link, 1, 3, 16);
  WriteAll(p.client, std::vector<uint8_t>(bulk.begin() + static_cast<long>(half), bulk.end()));
  ExpectRequests(link, 4, 1, 300000);
}

TEST(LinkTest, RequestsBeforeAHangUpAreServed) {
  Pair p;
  Link link(p.worker, 64 << 20);
  link.Start();
  WriteAll(p.client, Frames(1, 40, 8));
  close(p.client);
  p.client = -1;
  ExpectRequests(link, 1, 40, 8);
  Request r;
  Status why;
  EXPECT_FALSE(link.NextRequest(&r, &why));
  EXPECT_EQ(why.code(), Code::kTransport) << why.ToString();
}

TEST(LinkTest, ABrokenFrameEndsTheLinkAfterWhatCameBefore) {
  Pair p;
  Link link(p.worker, 64 << 20);
  link.Start();
  std::vector<uint8_t> bytes = Frames(1, 5, 8);
  proto::FrameHeader bad;
  bad.call = 1;
  bad.flags = proto::kReply;  // a client never sends a reply
  bad.request_id = 6;
  proto::AppendFrame(bad, {}, &bytes);
  WriteAll(p.client, bytes);
  ExpectRequests(link, 1, 5, 8);
  Request r;
  Status why;
  EXPECT_FALSE(link.NextRequest(&r, &why));
  EXPECT_EQ(why.code(), Code::kProtocol) << why.ToString();
}

}  // namespace
}  // namespace rgpu::worker

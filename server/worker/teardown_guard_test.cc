#include "server/worker/teardown_guard.h"

#include <atomic>
#include <chrono>
#include <thread>

#include <gtest/gtest.h>

namespace rgpu::worker {
namespace {

using std::chrono::milliseconds;

TEST(TeardownGuard, ExpiresWhenTheTeardownDoesNotFinishInTime) {
  std::atomic<int> expired{0};
  TeardownGuard guard(7, milliseconds(50), [&] { ++expired; });
  guard.Arm("the client left");
  std::this_thread::sleep_for(milliseconds(300));
  EXPECT_EQ(expired.load(), 1);
}

TEST(TeardownGuard, FinishedInTimeNeverExpires) {
  std::atomic<int> expired{0};
  {
    TeardownGuard guard(7, milliseconds(200), [&] { ++expired; });
    guard.Arm("the client left");
    guard.Arm("the session ended");  // a second Arm changes nothing
    std::this_thread::sleep_for(milliseconds(20));
    guard.Finished();
    std::this_thread::sleep_for(milliseconds(300));
  }
  EXPECT_EQ(expired.load(), 0);
}

TEST(TeardownGuard, NotArmedNeverExpiresAndArmAfterFinishedIsIgnored) {
  std::atomic<int> expired{0};
  {
    TeardownGuard guard(7, milliseconds(10), [&] { ++expired; });
    std::this_thread::sleep_for(milliseconds(50));
    guard.Finished();
    guard.Arm("the client left");  // the link's reader, after the teardown
    std::this_thread::sleep_for(milliseconds(50));
  }
  EXPECT_EQ(expired.load(), 0);
}

}  // namespace
}  // namespace rgpu::worker

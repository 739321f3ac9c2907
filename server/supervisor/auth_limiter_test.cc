#include "server/supervisor/auth_limiter.h"

#include <gtest/gtest.h>

namespace rgpu::server {
namespace {

using std::chrono::milliseconds;
using Clock = AuthLimiter::Clock;

AuthLimiterOptions Opts(int limit, int window_ms, size_t max_addresses = 4096) {
  AuthLimiterOptions o;
  o.limit = limit;
  o.window = milliseconds(window_ms);
  o.max_addresses = max_addresses;
  return o;
}

TEST(AuthLimiter, AddressesAreHostsOrIpv6Prefixes) {
  EXPECT_EQ(AuthLimiter::AddressOf("127.0.0.1:5555"), "127.0.0.1");
  EXPECT_EQ(AuthLimiter::AddressOf("2001:db8:1:2:3:4:5:6:443"), "2001:db8:1:2::/64");
  EXPECT_EQ(AuthLimiter::AddressOf("::ffff:10.0.0.1:80"), "::ffff:10.0.0.1");
  EXPECT_EQ(AuthLimiter::AddressOf("?"), "?");
}

TEST(AuthLimiter, RefusesAfterLimitUntilWindowEnds) {
  AuthLimiter lim(Opts(3, 1000));
  Clock::time_point t0 = Clock::now();
  milliseconds retry{0};
  bool first = false;
  EXPECT_FALSE(lim.RecordFailure("a", t0));
  EXPECT_FALSE(lim.RecordFailure("a", t0 + milliseconds(10)));
  EXPECT_FALSE(lim.Refused("a", t0 + milliseconds(20), &retry, &first));
  EXPECT_TRUE(lim.RecordFailure("a", t0 + milliseconds(30)));  // the third reaches the limit
  EXPECT_TRUE(lim.Refused("a", t0 + milliseconds(40), &retry, &first));
  EXPECT_TRUE(first);  // logged once per window...
  EXPECT_EQ(retry.count(), 960);
  EXPECT_TRUE(lim.Refused("a", t0 + milliseconds(50), &retry, &first));
  EXPECT_FALSE(first);  // ...not for every connection
  // Other addresses are not affected.
  EXPECT_FALSE(lim.Refused("b", t0 + milliseconds(50), &retry, &first));
  // Once the window that began with the first failure is over, it starts afresh.
  EXPECT_FALSE(lim.Refused("a", t0 + milliseconds(1000), &retry, &first));
  EXPECT_EQ(lim.tracked(), 0u);
  EXPECT_FALSE(lim.RecordFailure("a", t0 + milliseconds(1001)));
}

TEST(AuthLimiter, FailuresOfAnOldWindowDoNotCount) {
  AuthLimiter lim(Opts(2, 100));
  Clock::time_point t0 = Clock::now();
  milliseconds retry{0};
  bool first = false;
  EXPECT_FALSE(lim.RecordFailure("a", t0));
  EXPECT_FALSE(lim.RecordFailure("a", t0 + milliseconds(150)));  // a new window
  EXPECT_FALSE(lim.Refused("a", t0 + milliseconds(160), &retry, &first));
  EXPECT_TRUE(lim.RecordFailure("a", t0 + milliseconds(200)));
  EXPECT_TRUE(lim.Refused("a", t0 + milliseconds(210), &retry, &first));
}

TEST(AuthLimiter, ZeroLimitTurnsItOff) {
  AuthLimiter lim(Opts(0, 1000));
  Clock::time_point t0 = Clock::now();
  milliseconds retry{0};
  bool first = false;
  for (int i = 0; i < 100; ++i) EXPECT_FALSE(lim.RecordFailure("a", t0));
  EXPECT_FALSE(lim.Refused("a", t0, &retry, &first));
  EXPECT_EQ(lim.tracked(), 0u);
}

TEST(AuthLimiter, TableStaysBoundedUnderAFloodOfAddresses) {
  AuthLimiter lim(Opts(2, 60000, 64));
  Clock::time_point t0 = Clock::now();
  // An address that is refused, then 10,000 others failing once each.
  lim.RecordFailure("victim", t0);
  lim.RecordFailure("victim", t0);
  for (int i = 0; i < 10000; ++i) {
    lim.RecordFailure("10.0." + std::to_string(i / 256) + "." + std::to_string(i % 256),
                      t0 + milliseconds(1 + i));
    ASSERT_LE(lim.tracked(), 64u);
  }
  // The oldest entry went first; the newest are still counted.
  milliseconds retry{0};
  bool first = false;
  EXPECT_FALSE(lim.Refused("victim", t0 + milliseconds(20000), &retry, &first));
  EXPECT_TRUE(lim.RecordFailure("10.0.39.15", t0 + milliseconds(20000)));  // i = 9999: second failure
}

}  // namespace
}  // namespace rgpu::server

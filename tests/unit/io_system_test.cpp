// Clock and interface enumeration.
#include <chrono>

#include <gtest/gtest.h>

#include "core/io/clock.hpp"
#include "core/io/interfaces.hpp"

namespace rtcat::io {
namespace {

TEST(IoClock, MonotonicAndWallTime) {
    const auto a = now();
    const auto b = now();
    EXPECT_LE(a, b);
    EXPECT_GT(a.time_since_epoch().count(), 0);
    const auto system_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
    EXPECT_LT(std::abs(wall_time_ms() - system_ms), 1000);
}

TEST(IoInterfaces, ListsLoopback) {
    const auto list = list_interfaces();
    bool found_v4_loopback = false;
    for (const Interface& i : list) {
        EXPECT_FALSE(i.name.empty());
        EXPECT_NE(i.index, 0u) << i.name;
        if (i.address == net::IpAddr::v4(127, 0, 0, 1)) {
            found_v4_loopback = true;
            EXPECT_TRUE(i.is_loopback);
            EXPECT_TRUE(i.is_up);
            EXPECT_EQ(i.prefix_length, 8);
        }
        if (i.is_loopback) {
            EXPECT_TRUE(i.address.is_loopback()) << i.name << " " << i.address.to_string();
        }
    }
    EXPECT_TRUE(found_v4_loopback) << "no 127.0.0.1 among " << list.size() << " addresses";
}

} // namespace
} // namespace rtcat::io

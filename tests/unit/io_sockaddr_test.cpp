#include "core/io/sockaddr.hpp"

#include <cstring>

#include <arpa/inet.h>
#include <sys/un.h>

#include <gtest/gtest.h>

namespace rtcat::io {
namespace {

using net::SocketAddr;

TEST(IoSockaddr, V4RoundTrip) {
    const SocketAddr a = *SocketAddr::parse("192.0.2.1:3478");
    sockaddr_storage ss{};
    const socklen_t len = to_sockaddr(a, ss);
    ASSERT_EQ(len, sizeof(sockaddr_in));
    sockaddr_in in{};
    std::memcpy(&in, &ss, sizeof in);
    EXPECT_EQ(in.sin_family, AF_INET);
    EXPECT_EQ(in.sin_port, htons(3478));
    EXPECT_EQ(in.sin_addr.s_addr, inet_addr("192.0.2.1"));
    EXPECT_EQ(from_sockaddr(ss, len), a);
}

TEST(IoSockaddr, V6RoundTrip) {
    const SocketAddr a = *SocketAddr::parse("[2001:db8::42]:65535");
    sockaddr_storage ss{};
    const socklen_t len = to_sockaddr(a, ss);
    ASSERT_EQ(len, sizeof(sockaddr_in6));
    sockaddr_in6 in6{};
    std::memcpy(&in6, &ss, sizeof in6);
    EXPECT_EQ(in6.sin6_family, AF_INET6);
    EXPECT_EQ(in6.sin6_port, htons(65535));
    in6_addr expected{};
    ASSERT_EQ(inet_pton(AF_INET6, "2001:db8::42", &expected), 1);
    EXPECT_EQ(std::memcmp(&in6.sin6_addr, &expected, 16), 0);
    EXPECT_EQ(from_sockaddr(ss, len), a);
    // to_sockaddr_v6 leaves IPv6 alone.
    sockaddr_storage ss6{};
    EXPECT_EQ(to_sockaddr_v6(a, ss6), len);
    EXPECT_EQ(std::memcmp(&ss, &ss6, len), 0);
}

TEST(IoSockaddr, V4MappedIsNormalised) {
    sockaddr_in6 in6{};
    in6.sin6_family = AF_INET6;
    in6.sin6_port = htons(1234);
    ASSERT_EQ(inet_pton(AF_INET6, "::ffff:10.1.2.3", &in6.sin6_addr), 1);
    auto a = from_sockaddr(reinterpret_cast<const sockaddr*>(&in6), sizeof in6);
    ASSERT_TRUE(a.has_value());
    EXPECT_TRUE(a->ip().is_v4());
    EXPECT_EQ(a->to_string(), "10.1.2.3:1234");

    // And the other way, for sending from a dual-stack socket.
    sockaddr_storage ss{};
    ASSERT_EQ(to_sockaddr_v6(*a, ss), sizeof(sockaddr_in6));
    sockaddr_in6 back{};
    std::memcpy(&back, &ss, sizeof back);
    EXPECT_EQ(back.sin6_family, AF_INET6);
    EXPECT_EQ(back.sin6_port, htons(1234));
    EXPECT_EQ(std::memcmp(&back.sin6_addr, &in6.sin6_addr, 16), 0);

    // Only ::ffff:0:0/96 is mapped; ::a.b.c.d (deprecated compatible form) stays IPv6.
    ASSERT_EQ(inet_pton(AF_INET6, "::10.1.2.3", &in6.sin6_addr), 1);
    auto compat = from_sockaddr(reinterpret_cast<const sockaddr*>(&in6), sizeof in6);
    ASSERT_TRUE(compat.has_value());
    EXPECT_TRUE(compat->ip().is_v6());
}

TEST(IoSockaddr, RejectsOtherFamiliesAndShortLengths) {
    sockaddr_un un{};
    un.sun_family = AF_UNIX;
    EXPECT_FALSE(from_sockaddr(reinterpret_cast<const sockaddr*>(&un), sizeof un));
    sockaddr_storage ss{};
    const socklen_t len = to_sockaddr(*SocketAddr::parse("[::1]:1"), ss);
    EXPECT_FALSE(from_sockaddr(ss, len - 1));
    EXPECT_FALSE(from_sockaddr(nullptr, 0));
}

} // namespace
} // namespace rtcat::io

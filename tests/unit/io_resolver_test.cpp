#include "core/io/resolver.hpp"

#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "core/io/clock.hpp"

// Only literals, RFC 6761 special names and /etc/hosts entries are resolved here: any other
// name would query DNS, which is unreachable (and must not be contacted) where tests run.

namespace rtcat::io {
namespace {

using net::SocketAddr;

std::vector<std::string> strings(const std::vector<SocketAddr>& v) {
    std::vector<std::string> out;
    for (const auto& a : v)
        out.push_back(a.to_string());
    return out;
}

using Strings = std::vector<std::string>;

TEST(IoResolver, Literals) {
    auto v4 = resolve("192.0.2.7", 5000, FamilyFilter::Any);
    ASSERT_TRUE(v4.ok()) << v4.error().message;
    EXPECT_EQ(strings(*v4), Strings{"192.0.2.7:5000"});

    auto v6 = resolve("2001:db8::1", 443, FamilyFilter::V6Only);
    ASSERT_TRUE(v6.ok()) << v6.error().message;
    EXPECT_EQ(strings(*v6), Strings{"[2001:db8::1]:443"});

    auto bracketed = resolve("[::1]", 9, FamilyFilter::Any);
    ASSERT_TRUE(bracketed.ok()) << bracketed.error().message;
    EXPECT_EQ(strings(*bracketed), Strings{"[::1]:9"});
}

TEST(IoResolver, LiteralErrors) {
    auto wrong_family = resolve("127.0.0.1", 1, FamilyFilter::V6Only);
    ASSERT_FALSE(wrong_family.ok());
    EXPECT_EQ(wrong_family.error().message, "host '127.0.0.1' is not an IPv6 address");

    EXPECT_FALSE(resolve("[127.0.0.1]", 1, FamilyFilter::Any).ok());
    EXPECT_FALSE(resolve("[::1", 1, FamilyFilter::Any).ok());
    EXPECT_FALSE(resolve("[]", 1, FamilyFilter::Any).ok());
    auto not_v6 = resolve("[example.com]", 1, FamilyFilter::Any);
    ASSERT_FALSE(not_v6.ok());
    EXPECT_NE(not_v6.error().message.find("[example.com]"), std::string::npos);
}

TEST(IoResolver, LocalhostNeverLeavesTheHost) {
    auto any = resolve("localhost", 7, FamilyFilter::Any);
    ASSERT_TRUE(any.ok()) << any.error().message;
    EXPECT_EQ(strings(*any), (Strings{"127.0.0.1:7", "[::1]:7"}));
    EXPECT_EQ(strings(resolve("LocalHost.", 7, FamilyFilter::V4Only).value()),
              Strings{"127.0.0.1:7"});
    EXPECT_EQ(strings(resolve("app.localhost", 7, FamilyFilter::V6Only).value()),
              Strings{"[::1]:7"});
}

TEST(IoResolver, InvalidNamesFailFast) {
    const auto start = now();
    auto r = resolve("x.invalid", 1, FamilyFilter::Any);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().message, "cannot resolve 'x.invalid': Name or service not known");
    EXPECT_LT(now() - start, base::ms(100));

    for (const char* bad : {"", "bad host", "a..b", ".", "tab\there", "a/b"}) {
        auto b = resolve(bad, 1, FamilyFilter::Any);
        ASSERT_FALSE(b.ok()) << "'" << bad << "'";
        EXPECT_NE(b.error().message.find(fmt::format("'{}'", bad)), std::string::npos)
            << b.error().message;
    }
    EXPECT_FALSE(resolve(std::string(64, 'a') + ".com", 1, FamilyFilter::Any).ok());
}

// A name /etc/hosts maps to an IPv4 address (Debian lists the host name), other than the
// localhost names resolve() answers itself; empty if there is none.
std::pair<std::string, std::string> hosts_file_entry() {
    std::ifstream in("/etc/hosts");
    std::string line;
    while (std::getline(in, line)) {
        line = line.substr(0, line.find('#'));
        std::istringstream words(line);
        std::string ip, name;
        if (!(words >> ip) || !net::IpAddr::parse(ip) || !net::IpAddr::parse(ip)->is_v4())
            continue;
        while (words >> name)
            if (name.find("localhost") == std::string::npos)
                return {name, ip};
    }
    return {};
}

TEST(IoResolver, HostsFileName) {
    auto [name, ip] = hosts_file_entry();
    if (name.empty())
        GTEST_SKIP() << "/etc/hosts names no IPv4 host besides localhost";
    // IPv4 only: asking for a family the file lacks would fall through to DNS.
    auto r = resolve(name, 53, FamilyFilter::V4Only);
    ASSERT_TRUE(r.ok()) << r.error().message;
    ASSERT_FALSE(r->empty());
    EXPECT_EQ((*r)[0].to_string(), ip + ":53");
    for (std::size_t i = 0; i < r->size(); ++i)
        for (std::size_t j = i + 1; j < r->size(); ++j)
            EXPECT_NE((*r)[i], (*r)[j]) << "duplicate";
}

} // namespace
} // namespace rtcat::io

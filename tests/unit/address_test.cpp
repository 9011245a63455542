// core/net/address (IpAddr, SocketAddr) and core/base/bytes (ByteReader, ByteWriter, hex).

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/base/bytes.hpp"
#include "core/net/address.hpp"

namespace {

using rtcat::base::ByteReader;
using rtcat::base::Bytes;
using rtcat::base::ByteView;
using rtcat::base::ByteWriter;
using rtcat::base::from_hex;
using rtcat::base::to_hex;
using rtcat::net::Family;
using rtcat::net::IpAddr;
using rtcat::net::SocketAddr;

// Parse and print back; "<invalid>" when the parser refuses.
std::string canon(const std::string& text) {
    auto ip = IpAddr::parse(text);
    return ip ? ip->to_string() : "<invalid>";
}

std::string sock(const std::string& text) {
    auto sa = SocketAddr::parse(text);
    return sa ? sa->to_string() : "<invalid>";
}

// --- IPv4 --------------------------------------------------------------------------------

TEST(IpAddrV4, ParsesDottedQuad) {
    auto ip = IpAddr::parse("192.0.2.33");
    ASSERT_TRUE(ip);
    EXPECT_TRUE(ip->is_v4());
    EXPECT_EQ(ip->family(), Family::V4);
    EXPECT_EQ(ip->size(), 4u);
    EXPECT_EQ(ip->v4_bytes(), (std::array<std::uint8_t, 4>{192, 0, 2, 33}));
    EXPECT_EQ(ip->to_string(), "192.0.2.33");
    EXPECT_EQ(*ip, IpAddr::v4(192, 0, 2, 33));
    EXPECT_EQ(*ip, IpAddr::v4(std::array<std::uint8_t, 4>{192, 0, 2, 33}));
}

TEST(IpAddrV4, Extremes) {
    EXPECT_EQ(canon("0.0.0.0"), "0.0.0.0");
    EXPECT_EQ(canon("255.255.255.255"), "255.255.255.255");
    EXPECT_EQ(canon("10.0.0.1"), "10.0.0.1");
    EXPECT_EQ(IpAddr().to_string(), "0.0.0.0");
    EXPECT_EQ(IpAddr(), *IpAddr::parse("0.0.0.0"));
}

TEST(IpAddrV4, RejectsMalformed) {
    for (const char* bad :
         {"",           "1.2.3",        "1.2.3.4.5", "01.2.3.4",  "1.02.3.4",   "1.2.3.00",
          "1.2.3.0004", "256.1.1.1",    "1.2.3.256", "999.1.1.1", "1..2.3",     ".1.2.3",
          "1.2.3.",     " 1.2.3.4",     "1.2.3.4 ",  "1.2.3.-4",  "a.b.c.d",    "0x1.2.3.4",
          "1.2.3.4/24", "1.2.3.4%eth0", "1,2,3,4",   "1.2.3.4x",  "4294967295", "1.2.3.4\n"}) {
        EXPECT_EQ(canon(bad), "<invalid>") << '"' << bad << '"';
    }
}

// --- IPv6 --------------------------------------------------------------------------------

TEST(IpAddrV6, Unspecified) {
    auto ip = IpAddr::parse("::");
    ASSERT_TRUE(ip);
    EXPECT_TRUE(ip->is_v6());
    EXPECT_EQ(ip->size(), 16u);
    EXPECT_TRUE(ip->is_unspecified());
    EXPECT_EQ(ip->to_string(), "::");
    EXPECT_EQ(canon("0:0:0:0:0:0:0:0"), "::");
    EXPECT_EQ(canon("0000:0000:0000:0000:0000:0000:0000:0000"), "::");
    // The v6 unspecified address is not the v4 one.
    EXPECT_NE(*ip, IpAddr());
}

TEST(IpAddrV6, Loopback) {
    auto ip = IpAddr::parse("::1");
    ASSERT_TRUE(ip);
    std::array<std::uint8_t, 16> b{};
    b[15] = 1;
    EXPECT_EQ(ip->v6_bytes(), b);
    EXPECT_EQ(*ip, IpAddr::v6(b));
    EXPECT_TRUE(ip->is_loopback());
    EXPECT_EQ(canon("0:0:0:0:0:0:0:1"), "::1");
    EXPECT_EQ(canon("1::"), "1::");
    EXPECT_EQ(canon("1:0:0:0:0:0:0:0"), "1::");
}

TEST(IpAddrV6, FullForm) {
    auto ip = IpAddr::parse("2001:0db8:85a3:0000:0000:8a2e:0370:7334");
    ASSERT_TRUE(ip);
    const std::array<std::uint8_t, 16> b{0x20, 0x01, 0x0d, 0xb8, 0x85, 0xa3, 0,    0,
                                         0,    0,    0x8a, 0x2e, 0x03, 0x70, 0x73, 0x34};
    EXPECT_EQ(ip->v6_bytes(), b);
    EXPECT_EQ(ip->to_string(), "2001:db8:85a3::8a2e:370:7334");
    EXPECT_EQ(canon("1:2:3:4:5:6:7:8"), "1:2:3:4:5:6:7:8");
    EXPECT_EQ(canon("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
              "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
}

// RFC 5952 §4: the canonical text representation.
TEST(IpAddrV6, Rfc5952Canonical) {
    // §4.1 leading zeros suppressed.
    EXPECT_EQ(canon("2001:0db8:0000:0000:0000:0000:0000:0001"), "2001:db8::1");
    EXPECT_EQ(canon("2001:db8:0:0:0:0:0:1"), "2001:db8::1");
    // §4.2.1 "::" used to its maximum capability.
    EXPECT_EQ(canon("2001:db8:0:0:0:0:2:1"), "2001:db8::2:1");
    EXPECT_EQ(canon("2001:db8::0:1"), "2001:db8::1");
    // §4.2.2 a single 16-bit 0 field is not shortened.
    EXPECT_EQ(canon("2001:db8:0:1:1:1:1:1"), "2001:db8:0:1:1:1:1:1");
    EXPECT_EQ(canon("2001:db8::1:1:1:1:1"), "2001:db8:0:1:1:1:1:1");
    EXPECT_EQ(canon("0:1:2:3:4:5:6:7"), "0:1:2:3:4:5:6:7");
    EXPECT_EQ(canon("::1:2:3:4:5:6:7"), "0:1:2:3:4:5:6:7");
    EXPECT_EQ(canon("1:2:3:4:5:6:7::"), "1:2:3:4:5:6:7:0");
    // §4.2.3 the longest run is shortened; on a tie, the first.
    EXPECT_EQ(canon("2001:0:0:1:0:0:0:1"), "2001:0:0:1::1");
    EXPECT_EQ(canon("2001:db8:0:0:1:0:0:1"), "2001:db8::1:0:0:1");
    EXPECT_EQ(canon("1:0:0:2:0:0:3:4"), "1::2:0:0:3:4");
    EXPECT_EQ(canon("0:0:1:0:0:0:0:2"), "0:0:1::2");
    // §4.3 lowercase.
    EXPECT_EQ(canon("2001:DB8::ABCD:EF"), "2001:db8::abcd:ef");
    EXPECT_EQ(canon("FE80::1"), "fe80::1");
    // Runs at either end.
    EXPECT_EQ(canon("0:0:0:0:0:0:1:2"), "::1:2");
    EXPECT_EQ(canon("1:2:0:0:0:0:0:0"), "1:2::");
}

// RFC 5952 §5 / RFC 4291 §2.5.5.2: IPv4-mapped addresses print in mixed notation.
TEST(IpAddrV6, V4Mapped) {
    auto ip = IpAddr::parse("::ffff:1.2.3.4");
    ASSERT_TRUE(ip);
    EXPECT_TRUE(ip->is_v6());
    const std::array<std::uint8_t, 16> b{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 1, 2, 3, 4};
    EXPECT_EQ(ip->v6_bytes(), b);
    EXPECT_EQ(ip->to_string(), "::ffff:1.2.3.4");
    EXPECT_EQ(canon("::FFFF:192.0.2.128"), "::ffff:192.0.2.128");
    EXPECT_EQ(canon("::ffff:0102:0304"), "::ffff:1.2.3.4");
    EXPECT_EQ(canon("0:0:0:0:0:ffff:1.2.3.4"), "::ffff:1.2.3.4");
    EXPECT_EQ(canon("::ffff:0.0.0.0"), "::ffff:0.0.0.0");
    // Not mapped: the ffff is elsewhere.
    EXPECT_EQ(canon("::ffff:0:102:304"), "::ffff:0:102:304");
    EXPECT_EQ(canon("ffff::1.2.3.4"), "ffff::102:304");
    // A mapped address is still an IPv6 address, distinct from the IPv4 one.
    EXPECT_NE(*ip, IpAddr::v4(1, 2, 3, 4));
}

TEST(IpAddrV6, EmbeddedIpv4Forms) {
    EXPECT_EQ(canon("1:2:3:4:5:6:1.2.3.4"), "1:2:3:4:5:6:102:304");
    EXPECT_EQ(canon("64:ff9b::192.0.2.33"), "64:ff9b::c000:221");
    EXPECT_NE(canon("::1.2.3.4"), "<invalid>");
    // Embedded v4 only in the last 32 bits, and a valid dotted quad.
    for (const char* bad : {"1.2.3.4::", "::1.2.3.4:1", "::ffff:1.2.3", "::ffff:01.2.3.4",
                            "::ffff:256.1.1.1", "1:2:3:4:5:6:7:1.2.3.4", "::1.2.3.4.5"}) {
        EXPECT_EQ(canon(bad), "<invalid>") << bad;
    }
}

TEST(IpAddrV6, ZonesAreDropped) {
    EXPECT_EQ(canon("fe80::1%eth0"), "fe80::1");
    EXPECT_EQ(canon("fe80::1%1"), "fe80::1");
    EXPECT_EQ(*IpAddr::parse("fe80::1%eth0"), *IpAddr::parse("fe80::1"));
    // RFC 4007 §11: the zone id is not empty.
    EXPECT_EQ(canon("fe80::1%"), "<invalid>");
    // The zone belongs after an address, not instead of one.
    EXPECT_EQ(canon("%eth0"), "<invalid>");
}

TEST(IpAddrV6, RejectsMalformed) {
    for (const char* bad : {":",
                            ":::",
                            "::::",
                            "1::2::3",
                            "::1::",
                            "1:2:3:4:5:6:7:8:9",
                            "1:2:3:4:5:6:7",
                            "1:2:3:4:5:6:7:8::",
                            "::1:2:3:4:5:6:7:8",
                            "1:2:3:4::5:6:7:8",
                            ":1::2",
                            "1::2:",
                            "1:2:3:4:5:6:7:",
                            ":1:2:3:4:5:6:7:8",
                            "12345::1",
                            "g::1",
                            "1:2:3:4:5:6:7:8g",
                            "[::1]",
                            "::1 ",
                            " ::1",
                            "1:::2",
                            "::-1",
                            "::+1",
                            "0x1::1",
                            "1:2:3:4:5:6:7:8%"}) {
        EXPECT_EQ(canon(bad), "<invalid>") << '"' << bad << '"';
    }
}

TEST(IpAddr, Classification) {
    auto p = [](const char* s) { return *IpAddr::parse(s); };
    EXPECT_TRUE(p("127.0.0.1").is_loopback());
    EXPECT_TRUE(p("127.255.255.254").is_loopback());
    EXPECT_FALSE(p("128.0.0.1").is_loopback());
    EXPECT_TRUE(p("::1").is_loopback());
    EXPECT_FALSE(p("::2").is_loopback());
    EXPECT_FALSE(p("::").is_loopback());

    EXPECT_TRUE(p("0.0.0.0").is_unspecified());
    EXPECT_TRUE(p("::").is_unspecified());
    EXPECT_FALSE(p("0.0.0.1").is_unspecified());

    EXPECT_TRUE(p("169.254.1.1").is_link_local());
    EXPECT_FALSE(p("169.253.1.1").is_link_local());
    EXPECT_TRUE(p("fe80::1").is_link_local());
    EXPECT_TRUE(p("febf::1").is_link_local());
    EXPECT_FALSE(p("fec0::1").is_link_local());

    for (const char* priv :
         {"10.0.0.1", "10.255.255.255", "172.16.0.1", "172.31.255.255", "192.168.1.1", "100.64.0.1",
          "100.127.255.255", "fc00::1", "fd12:3456::1"}) {
        EXPECT_TRUE(p(priv).is_private()) << priv;
    }
    for (const char* pub : {"11.0.0.1", "172.15.0.1", "172.32.0.1", "192.167.1.1", "100.63.0.1",
                            "100.128.0.1", "198.51.100.1", "2001:db8::1", "fe80::1", "fe00::1"}) {
        EXPECT_FALSE(p(pub).is_private()) << pub;
    }
}

TEST(IpAddr, OrderingIsTotalAndFamilyFirst) {
    auto a = *IpAddr::parse("10.0.0.1");
    auto b = *IpAddr::parse("10.0.0.2");
    auto c = *IpAddr::parse("::1");
    EXPECT_LT(a, b);
    EXPECT_LT(b, c); // every v4 sorts before every v6
    EXPECT_EQ(a, IpAddr::v4(10, 0, 0, 1));
}

// --- SocketAddr --------------------------------------------------------------------------

TEST(SocketAddr, ParsesV4) {
    auto sa = SocketAddr::parse("1.2.3.4:5");
    ASSERT_TRUE(sa);
    EXPECT_EQ(sa->ip(), IpAddr::v4(1, 2, 3, 4));
    EXPECT_EQ(sa->port(), 5);
    EXPECT_EQ(sa->family(), Family::V4);
    EXPECT_EQ(sa->to_string(), "1.2.3.4:5");
    EXPECT_EQ(sock("127.0.0.1:3478"), "127.0.0.1:3478");
    EXPECT_EQ(sock("0.0.0.0:0"), "0.0.0.0:0");
    EXPECT_EQ(sock("1.2.3.4:65535"), "1.2.3.4:65535");
}

TEST(SocketAddr, ParsesBracketedV6) {
    auto sa = SocketAddr::parse("[::1]:5");
    ASSERT_TRUE(sa);
    EXPECT_TRUE(sa->ip().is_v6());
    EXPECT_TRUE(sa->ip().is_loopback());
    EXPECT_EQ(sa->port(), 5);
    EXPECT_EQ(sa->to_string(), "[::1]:5");
    EXPECT_EQ(sock("[2001:DB8:0:0:0:0:0:1]:443"), "[2001:db8::1]:443");
    EXPECT_EQ(sock("[::ffff:1.2.3.4]:9"), "[::ffff:1.2.3.4]:9");
    EXPECT_EQ(sock("[fe80::1%eth0]:5"), "[fe80::1]:5");
    EXPECT_EQ(sock("[::]:65535"), "[::]:65535");
}

TEST(SocketAddr, RejectsBadPortsAndHosts) {
    for (const char* bad : {"",
                            "1.2.3.4",
                            "1.2.3.4:",
                            "1.2.3.4:65536",
                            "1.2.3.4:99999999999",
                            "1.2.3.4:-1",
                            "1.2.3.4:+5",
                            "1.2.3.4: 5",
                            "1.2.3.4:5 ",
                            "1.2.3.4:0x10",
                            "1.2.3.4:5a",
                            "1.2.3.4::5",
                            ":5",
                            "1.2.3:5",
                            "01.2.3.4:5",
                            "::1:5",
                            "::1",
                            "[::1]",
                            "[::1]:",
                            "[::1]5",
                            "[::1]:x",
                            "[::1]:65536",
                            "[::1:5",
                            "::1]:5",
                            "[]:5",
                            "[1.2.3.4]:5",
                            "[[::1]]:5",
                            "localhost:5",
                            "[::1]:5:6"}) {
        EXPECT_EQ(sock(bad), "<invalid>") << '"' << bad << '"';
    }
}

TEST(SocketAddr, ValueSemantics) {
    SocketAddr a(IpAddr::v4(192, 0, 2, 1), 1000);
    SocketAddr b = a;
    b.set_port(1001);
    EXPECT_NE(a, b);
    EXPECT_LT(a, b);
    EXPECT_EQ(a, *SocketAddr::parse("192.0.2.1:1000"));
    EXPECT_EQ(SocketAddr().to_string(), "0.0.0.0:0");
}

// --- ByteReader --------------------------------------------------------------------------

TEST(ByteReader, ReadsBigEndian) {
    const Bytes d = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a,
                     0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12, 0x13};
    ByteReader r(d);
    EXPECT_EQ(r.u8(), 0x01);
    EXPECT_EQ(r.u16(), 0x0203);
    EXPECT_EQ(r.u24(), 0x040506u);
    EXPECT_EQ(r.u32(), 0x0708090au);
    EXPECT_EQ(r.u64(), 0x0b0c0d0e0f101112ull);
    EXPECT_EQ(r.position(), 18u);
    EXPECT_EQ(r.remaining(), 1u);
    EXPECT_FALSE(r.empty());
    EXPECT_FALSE(r.failed());
    auto rest = r.rest();
    ASSERT_EQ(rest.size(), 1u);
    EXPECT_EQ(rest[0], 0x13);
    EXPECT_EQ(r.u8(), 0x13);
    EXPECT_TRUE(r.empty());
    EXPECT_FALSE(r.failed());
}

TEST(ByteReader, HighBitsDoNotSignExtend) {
    const Bytes d = {0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0xfa, 0xf9, 0xf8};
    ByteReader r(d);
    EXPECT_EQ(r.u16(), 0xfffe);
    EXPECT_EQ(r.u16(), 0xfdfc);
    ByteReader r2(d);
    EXPECT_EQ(r2.u32(), 0xfffefdfcu);
    ByteReader r3(d);
    EXPECT_EQ(r3.u64(), 0xfffefdfcfbfaf9f8ull);
    ByteReader r4(d);
    EXPECT_EQ(r4.u24(), 0xfffefdu);
}

TEST(ByteReader, FailureIsSticky) {
    const Bytes d = {0xaa, 0xbb, 0xcc};
    ByteReader r(d);
    EXPECT_EQ(r.u32(), 0u); // short: zero, and latched
    EXPECT_TRUE(r.failed());
    EXPECT_EQ(r.position(), 0u); // nothing consumed
    EXPECT_EQ(r.u8(), 0u);       // would fit, but the reader has failed
    EXPECT_EQ(r.u16(), 0u);
    EXPECT_TRUE(r.bytes(1).empty());
    EXPECT_TRUE(r.failed());
    EXPECT_EQ(r.position(), 0u);
}

TEST(ByteReader, EveryWidthFailsCleanlyAtTheEnd) {
    const Bytes d = {1, 2, 3, 4, 5, 6, 7};
    {
        ByteReader r(ByteView(d).first(0));
        EXPECT_EQ(r.u8(), 0u);
        EXPECT_TRUE(r.failed());
    }
    {
        ByteReader r(ByteView(d).first(1));
        EXPECT_EQ(r.u16(), 0u);
        EXPECT_TRUE(r.failed());
    }
    {
        ByteReader r(ByteView(d).first(2));
        EXPECT_EQ(r.u24(), 0u);
        EXPECT_TRUE(r.failed());
    }
    {
        ByteReader r(ByteView(d).first(3));
        EXPECT_EQ(r.u32(), 0u);
        EXPECT_TRUE(r.failed());
    }
    {
        // A u64 with only 7 bytes left returns zero like every other short read, not a
        // half-read value.
        ByteReader r(d);
        EXPECT_EQ(r.u64(), 0u);
        EXPECT_TRUE(r.failed());
    }
}

TEST(ByteReader, BytesAndSkip) {
    const Bytes d = {1, 2, 3, 4, 5};
    ByteReader r(d);
    auto v = r.bytes(2);
    ASSERT_EQ(v.size(), 2u);
    EXPECT_EQ(v[0], 1);
    EXPECT_EQ(v[1], 2);
    r.skip(1);
    EXPECT_EQ(r.position(), 3u);
    EXPECT_TRUE(r.bytes(0).empty());
    EXPECT_FALSE(r.failed()); // zero bytes always fit
    r.skip(3);                // one too many
    EXPECT_TRUE(r.failed());
    EXPECT_EQ(r.position(), 3u);
}

TEST(ByteReader, HugeLengthDoesNotOverflow) {
    const Bytes d = {1, 2, 3};
    ByteReader r(d);
    r.u8();
    EXPECT_TRUE(r.bytes(SIZE_MAX).empty());
    EXPECT_TRUE(r.failed());
    ByteReader r2(d);
    r2.skip(SIZE_MAX - 1);
    EXPECT_TRUE(r2.failed());
}

TEST(ByteReader, EmptyInput) {
    ByteReader r(ByteView{});
    EXPECT_TRUE(r.empty());
    EXPECT_EQ(r.remaining(), 0u);
    EXPECT_TRUE(r.rest().empty());
    EXPECT_FALSE(r.failed());
}

// --- ByteWriter --------------------------------------------------------------------------

TEST(ByteWriter, WritesBigEndian) {
    Bytes out;
    ByteWriter w(out);
    w.u8(0x01);
    w.u16(0x0203);
    w.u24(0x040506);
    w.u32(0x0708090a);
    w.u64(0x0b0c0d0e0f101112ull);
    EXPECT_EQ(w.size(), 18u);
    EXPECT_EQ(to_hex(out), "0102030405060708090a0b0c0d0e0f101112");
}

TEST(ByteWriter, BytesStringsZeros) {
    Bytes out = {0xee}; // appends to what is there
    ByteWriter w(out);
    const Bytes b = {0xde, 0xad};
    w.bytes(ByteView(b));
    w.bytes(std::string_view("AB"));
    w.zeros(3);
    w.bytes(ByteView{});
    EXPECT_EQ(to_hex(out), "eedead4142000000");
    EXPECT_EQ(w.size(), 8u);
}

TEST(ByteWriter, PatchLengthFields) {
    Bytes out;
    ByteWriter w(out);
    w.u16(0x0001);
    const auto len_at = w.size();
    w.u16(0); // length, patched below
    w.u32(0);
    w.bytes(std::string_view("payload"));
    w.patch_u16(len_at, static_cast<std::uint16_t>(w.size() - 4));
    w.patch_u32(4, 0xcafebabe);
    EXPECT_EQ(to_hex(out), "0001000b"
                           "cafebabe"
                           "7061796c6f6164");
    // Patching the very last bytes is allowed.
    w.patch_u16(out.size() - 2, 0xffff);
    EXPECT_EQ(out[out.size() - 2], 0xff);
    EXPECT_EQ(out.back(), 0xff);
    EXPECT_EQ(w.size(), 15u);
}

TEST(ByteWriterDeathTest, PatchPastTheEndIsABug) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    Bytes out(3);
    ByteWriter w(out);
    EXPECT_DEATH(w.patch_u16(2, 1), "patch_u16 past the end");
    EXPECT_DEATH(w.patch_u32(0, 1), "past the end");
}

TEST(ByteWriter, RoundTripsThroughReader) {
    Bytes out;
    ByteWriter w(out);
    w.u8(0x80);
    w.u16(0xfffe);
    w.u24(0xabcdef);
    w.u32(0x80000001);
    w.u64(0xffffffffffffffffull);
    ByteReader r(out);
    EXPECT_EQ(r.u8(), 0x80);
    EXPECT_EQ(r.u16(), 0xfffe);
    EXPECT_EQ(r.u24(), 0xabcdefu);
    EXPECT_EQ(r.u32(), 0x80000001u);
    EXPECT_EQ(r.u64(), 0xffffffffffffffffull);
    EXPECT_TRUE(r.empty());
    EXPECT_FALSE(r.failed());
}

// --- hex ---------------------------------------------------------------------------------

TEST(Hex, ToHex) {
    EXPECT_EQ(to_hex(Bytes{}), "");
    EXPECT_EQ(to_hex(Bytes{0x00, 0x01, 0xab, 0xff}), "0001abff");
    Bytes all(256);
    for (int i = 0; i < 256; ++i)
        all[i] = static_cast<std::uint8_t>(i);
    const auto h = to_hex(all);
    EXPECT_EQ(h.size(), 512u);
    EXPECT_EQ(from_hex(h), all);
}

TEST(Hex, FromHexAcceptsCaseSpacesColons) {
    EXPECT_EQ(from_hex("00ABff"), (Bytes{0x00, 0xab, 0xff}));
    EXPECT_EQ(from_hex("de:ad:BE:ef"), (Bytes{0xde, 0xad, 0xbe, 0xef}));
    EXPECT_EQ(from_hex("de ad\nbe ef"), (Bytes{0xde, 0xad, 0xbe, 0xef}));
    EXPECT_EQ(from_hex(""), Bytes{});
}

TEST(Hex, FromHexRejectsGarbage) {
    EXPECT_TRUE(from_hex("abc").empty());  // odd number of digits
    EXPECT_TRUE(from_hex("0g").empty());   // not a digit
    EXPECT_TRUE(from_hex("0x00").empty()); // no prefix
    EXPECT_TRUE(from_hex("00-11").empty());
    EXPECT_TRUE(from_hex("a:b:c").empty());
}

} // namespace

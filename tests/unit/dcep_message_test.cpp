// DCEP (RFC 8832 §5) message codec.

#include <gtest/gtest.h>

#include "core/base/bytes.hpp"
#include "core/dcep/message.hpp"

using namespace rtcat;
using namespace rtcat::dcep;

namespace {

TEST(DcepMessage, EncodesOpenPerRfc8832) {
    ChannelOptions o;
    o.label = "chat";
    o.protocol = "xmpp";
    o.ordered = false;
    o.reliability = Reliability::MaxRetransmits;
    o.reliability_value = 3;
    o.priority = 512;
    auto bytes = encode_open(o);
    // type, channel type 0x81, priority 512, reliability 3, label len 4, protocol len 4.
    auto expected = base::from_hex("03 81 0200 00000003 0004 0004");
    expected.insert(expected.end(), {'c', 'h', 'a', 't', 'x', 'm', 'p', 'p'});
    EXPECT_EQ(bytes, expected);
}

TEST(DcepMessage, ReliableIgnoresReliabilityParameter) {
    ChannelOptions o;
    o.reliability_value = 99; // ignored for reliable channels
    auto bytes = encode_open(o);
    EXPECT_EQ(base::to_hex(bytes), "030001000000000000000000");
    auto m = decode(base::from_hex("0300 0100 00000063 0000 0000"));
    ASSERT_TRUE(m.ok());
    auto& open = std::get<OpenMessage>(*m);
    EXPECT_EQ(open.options.reliability, Reliability::Reliable);
    EXPECT_EQ(open.options.reliability_value, 0u);
    EXPECT_TRUE(open.options.ordered);
    EXPECT_EQ(open.options.priority, 256);
}

TEST(DcepMessage, RoundTripsEveryChannelType) {
    for (bool ordered : {true, false}) {
        for (auto rel :
             {Reliability::Reliable, Reliability::MaxRetransmits, Reliability::MaxLifetime}) {
            ChannelOptions o;
            o.label = "label with ünïcode";
            o.protocol = "";
            o.ordered = ordered;
            o.reliability = rel;
            o.reliability_value = rel == Reliability::Reliable ? 0 : 1500;
            o.priority = 128;
            auto m = decode(encode_open(o));
            ASSERT_TRUE(m.ok());
            auto& open = std::get<OpenMessage>(*m);
            EXPECT_EQ(open.options, o);
        }
    }
}

TEST(DcepMessage, DecodesAck) {
    auto m = decode(encode_ack());
    ASSERT_TRUE(m.ok());
    EXPECT_TRUE(std::holds_alternative<AckMessage>(*m));
    EXPECT_EQ(encode_ack(), base::Bytes{0x02});
}

TEST(DcepMessage, RejectsMalformed) {
    EXPECT_FALSE(decode({}).ok());
    EXPECT_FALSE(decode(base::from_hex("04")).ok()); // unknown type
    EXPECT_FALSE(decode(base::from_hex("03")).ok()); // truncated header
    EXPECT_FALSE(decode(base::from_hex("0300010000000000")).ok());
    // label length 5 but only 4 bytes follow
    EXPECT_FALSE(decode(base::from_hex("030001000000000000050000 61626364")).ok());
    // protocol truncated
    EXPECT_FALSE(decode(base::from_hex("03000100000000000001000261 62")).ok());
    // unknown channel type 0x03 and 0x40
    EXPECT_FALSE(decode(base::from_hex("0303010000000000 0000 0000")).ok());
    EXPECT_FALSE(decode(base::from_hex("0340010000000000 0000 0000")).ok());
}

TEST(DcepMessage, IgnoresTrailingBytes) {
    auto m = decode(base::from_hex("0382 0100 000003e8 0001 0000 41 ffff"));
    ASSERT_TRUE(m.ok());
    auto& open = std::get<OpenMessage>(*m);
    EXPECT_EQ(open.options.label, "A");
    EXPECT_FALSE(open.options.ordered);
    EXPECT_EQ(open.options.reliability, Reliability::MaxLifetime);
    EXPECT_EQ(open.options.reliability_value, 1000u);
}

} // namespace

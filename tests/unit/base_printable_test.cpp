#include "core/base/printable.hpp"

#include <gtest/gtest.h>

using rtcat::base::is_clean_utf8;
using rtcat::base::printable;

TEST(BasePrintable, PlainAndUnicodeTextPassesUnchanged) {
    EXPECT_EQ(printable("photos/2024/a b.jpg"), "photos/2024/a b.jpg");
    EXPECT_EQ(printable("r\xC3\xA9sum\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\x93\xB7"),
              "r\xC3\xA9sum\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\x93\xB7");
    EXPECT_EQ(printable("C:\\path"), "C:\\path");
}

TEST(BasePrintable, TerminalControlsAreEscaped) {
    // Clear screen, carriage return over a forged line, bell, a CSI, DEL and NUL.
    EXPECT_EQ(printable("a\x1b[2Jb"), "a\\e[2Jb");
    EXPECT_EQ(printable("x\rverified\n"), "x\\rverified\\n");
    EXPECT_EQ(printable(std::string("\a\t\x7f\0z", 5)), "\\x07\\t\\x7f\\x00z");
    // U+009B is the 8-bit CSI; some terminals obey it.
    EXPECT_EQ(printable("\xC2\x9B"
                        "2J"),
              "\\xc2\\x9b2J");
}

TEST(BasePrintable, InvalidUtf8BecomesHex) {
    EXPECT_EQ(printable("\xff\xfe"), "\\xff\\xfe");
    EXPECT_EQ(printable("\xC0\xAF"), "\\xc0\\xaf");          // overlong '/'
    EXPECT_EQ(printable("\xED\xA0\x80"), "\\xed\\xa0\\x80"); // surrogate
    EXPECT_EQ(printable("ok\xE6\x97"), "ok\\xe6\\x97");      // truncated sequence
}

TEST(BasePrintable, CleanUtf8) {
    EXPECT_TRUE(is_clean_utf8("photos/a.jpg"));
    EXPECT_TRUE(is_clean_utf8("\xE6\x97\xA5\xE6\x9C\xAC.txt"));
    EXPECT_TRUE(is_clean_utf8(""));
    EXPECT_FALSE(is_clean_utf8("a\x1b[2J"));
    EXPECT_FALSE(is_clean_utf8("a\nb"));
    EXPECT_FALSE(is_clean_utf8("a\x7f"));
    EXPECT_FALSE(is_clean_utf8("\xC2\x85"));
    EXPECT_FALSE(is_clean_utf8("\xff"));
}

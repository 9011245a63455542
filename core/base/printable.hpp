#pragma once
// Text that came from a peer, a server or a file, made safe to print on a terminal.
//
// A peer chooses file names, channel labels, error reasons and SOFTWARE strings; printed raw, an
// ESC or CSI sequence in them can clear the screen, move the cursor or forge a "verified" line,
// and a CR or LF can fake a line of our own. Every string of outside origin goes through
// printable() before it reaches stderr or stdout as text (JSON output escapes by itself).

#include <string>
#include <string_view>

namespace rtcat::base {

// Valid UTF-8 passes unchanged except control characters: C0 (U+0000..U+001F), DEL and C1
// (U+0080..U+009F, which some terminals obey as 8-bit CSI) become \n, \r, \t, \e or \xNN;
// bytes that are not valid UTF-8 become \xNN. Backslashes stay as they are.
std::string printable(std::string_view text);

// True when text is valid UTF-8 without any control character (C0, DEL, C1): what may be used
// as a name on disk or a label shown to the user.
bool is_clean_utf8(std::string_view text);

} // namespace rtcat::base

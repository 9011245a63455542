#pragma once
// errno formatting for io errors. io-internal: other layers see only base::Error messages.

#include <string>
#include <string_view>

#include "core/base/result.hpp"

namespace rtcat::io {

// "Connection refused (ECONNREFUSED)".
std::string errno_text(int err);
// "<what>: Connection refused (ECONNREFUSED)".
base::Error sys_error(std::string_view what, int err);

} // namespace rtcat::io

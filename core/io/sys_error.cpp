#include "core/io/sys_error.hpp"

#include <cstring>

#include <fmt/format.h>

namespace rtcat::io {

std::string errno_text(int err) {
    // glibc >= 2.32: both are thread-safe, unlike strerror() for unknown values.
    const char* desc = ::strerrordesc_np(err);
    const char* name = ::strerrorname_np(err);
    if (desc == nullptr)
        return fmt::format("unknown error {}", err);
    if (name == nullptr)
        return desc;
    return fmt::format("{} ({})", desc, name);
}

base::Error sys_error(std::string_view what, int err) {
    return base::make_error("{}: {}", what, errno_text(err));
}

} // namespace rtcat::io

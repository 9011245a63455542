#pragma once
// Levelled logging. The core formats; the application installs the sink (stderr in the CLI,
// captured in tests). Arguments are not formatted when the level is off.

#include <string_view>

#include <fmt/format.h>

namespace rtcat::base {

enum class LogLevel { Trace = 0, Debug, Info, Warn, Error, Off };

using LogSink = void (*)(LogLevel, std::string_view component, std::string_view message);

void set_log_level(LogLevel level);
LogLevel log_level();
void set_log_sink(LogSink sink);
inline bool log_enabled(LogLevel level) {
    return level >= log_level();
}
void log_write(LogLevel level, std::string_view component, std::string_view message);
std::string_view log_level_name(LogLevel level);
// Parses trace|debug|info|warn|error|off; false when unknown.
bool parse_log_level(std::string_view s, LogLevel& out);

} // namespace rtcat::base

#define RTCAT_LOG(level, component, ...)                                                           \
    do {                                                                                           \
        if (::rtcat::base::log_enabled(level))                                                     \
            ::rtcat::base::log_write(level, component, ::fmt::format(__VA_ARGS__));                \
    } while (0)
#define RTCAT_TRACE(component, ...)                                                                \
    RTCAT_LOG(::rtcat::base::LogLevel::Trace, component, __VA_ARGS__)
#define RTCAT_DEBUG(component, ...)                                                                \
    RTCAT_LOG(::rtcat::base::LogLevel::Debug, component, __VA_ARGS__)
#define RTCAT_INFO(component, ...) RTCAT_LOG(::rtcat::base::LogLevel::Info, component, __VA_ARGS__)
#define RTCAT_WARN(component, ...) RTCAT_LOG(::rtcat::base::LogLevel::Warn, component, __VA_ARGS__)
#define RTCAT_ERROR(component, ...)                                                                \
    RTCAT_LOG(::rtcat::base::LogLevel::Error, component, __VA_ARGS__)

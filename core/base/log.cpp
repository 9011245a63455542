#include "core/base/log.hpp"

#include <atomic>
#include <cstdio>
#include <cstdlib>

#include "core/base/check.hpp"
#include "core/base/printable.hpp"

namespace rtcat::base {

namespace {
std::atomic<LogLevel> g_level{LogLevel::Warn};

void default_sink(LogLevel level, std::string_view component, std::string_view raw) {
    const std::string message = printable(raw);
    std::fprintf(stderr, "rtcat: %.*s: %.*s: %.*s\n",
                 static_cast<int>(log_level_name(level).size()), log_level_name(level).data(),
                 static_cast<int>(component.size()), component.data(),
                 static_cast<int>(message.size()), message.data());
}

std::atomic<LogSink> g_sink{&default_sink};
} // namespace

void set_log_level(LogLevel level) {
    g_level.store(level, std::memory_order_relaxed);
}
LogLevel log_level() {
    return g_level.load(std::memory_order_relaxed);
}
void set_log_sink(LogSink sink) {
    g_sink.store(sink ? sink : &default_sink);
}

void log_write(LogLevel level, std::string_view component, std::string_view message) {
    g_sink.load()(level, component, message);
}

std::string_view log_level_name(LogLevel level) {
    switch (level) {
    case LogLevel::Trace:
        return "trace";
    case LogLevel::Debug:
        return "debug";
    case LogLevel::Info:
        return "info";
    case LogLevel::Warn:
        return "warn";
    case LogLevel::Error:
        return "error";
    case LogLevel::Off:
        return "off";
    }
    return "?";
}

bool parse_log_level(std::string_view s, LogLevel& out) {
    for (auto l : {LogLevel::Trace, LogLevel::Debug, LogLevel::Info, LogLevel::Warn,
                   LogLevel::Error, LogLevel::Off}) {
        if (s == log_level_name(l)) {
            out = l;
            return true;
        }
    }
    return false;
}

[[noreturn]] void check_failed(const char* file, int line, const char* cond, const char* why) {
    std::fprintf(stderr, "rtcat: internal error at %s:%d: %s (%s)\n", file, line, why, cond);
    std::abort();
}

} // namespace rtcat::base

#pragma once
// RTCAT_CHECK is for programming errors only: bad traffic is dropped and counted, never checked.

namespace rtcat::base {
[[noreturn]] void check_failed(const char* file, int line, const char* cond, const char* why);
}

#define RTCAT_CHECK(cond, why)                                                                     \
    do {                                                                                           \
        if (!(cond)) [[unlikely]]                                                                  \
            ::rtcat::base::check_failed(__FILE__, __LINE__, #cond, why);                           \
    } while (0)

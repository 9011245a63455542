#pragma once
// Result<T>: a value or an Error. Parsers of wire input return these and never throw.

#include <string>
#include <utility>
#include <variant>

#include <fmt/format.h>

#include "core/base/check.hpp"

namespace rtcat::base {

struct Error {
    std::string message;
};

template <typename... Args> Error make_error(fmt::format_string<Args...> f, Args&&... args) {
    return Error{fmt::format(f, std::forward<Args>(args)...)};
}

template <typename T> class [[nodiscard]] Result {
public:
    Result(T value) : v_(std::move(value)) {}
    Result(Error error) : v_(std::move(error)) {}

    bool ok() const { return v_.index() == 0; }
    explicit operator bool() const { return ok(); }

    T& value() & {
        RTCAT_CHECK(ok(), "value() on an error Result");
        return std::get<0>(v_);
    }
    const T& value() const& {
        RTCAT_CHECK(ok(), "value() on an error Result");
        return std::get<0>(v_);
    }
    T&& value() && {
        RTCAT_CHECK(ok(), "value() on an error Result");
        return std::get<0>(std::move(v_));
    }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }

    const Error& error() const {
        RTCAT_CHECK(!ok(), "error() on an ok Result");
        return std::get<1>(v_);
    }

private:
    std::variant<T, Error> v_;
};

template <> class [[nodiscard]] Result<void> {
public:
    Result() = default;
    Result(Error error) : error_(std::move(error)), ok_(false) {}
    bool ok() const { return ok_; }
    explicit operator bool() const { return ok_; }
    const Error& error() const {
        RTCAT_CHECK(!ok_, "error() on an ok Result");
        return error_;
    }

private:
    Error error_;
    bool ok_ = true;
};

} // namespace rtcat::base

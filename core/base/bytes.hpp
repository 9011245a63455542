#pragma once
// Bounds-checked big-endian reader and writer. The reader is "sticky": a read past the end
// returns zero/empty and latches failed(), so a parser reads a whole structure and checks once.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace rtcat::base {

using Bytes = std::vector<std::uint8_t>;
using ByteView = std::span<const std::uint8_t>;

class ByteReader {
public:
    explicit ByteReader(ByteView data) : data_(data) {}

    std::uint8_t u8() {
        if (!need(1))
            return 0;
        return data_[pos_++];
    }
    std::uint16_t u16() {
        if (!need(2))
            return 0;
        auto v = static_cast<std::uint16_t>((data_[pos_] << 8) | data_[pos_ + 1]);
        pos_ += 2;
        return v;
    }
    std::uint32_t u24() {
        if (!need(3))
            return 0;
        std::uint32_t v = (std::uint32_t{data_[pos_]} << 16) |
                          (std::uint32_t{data_[pos_ + 1]} << 8) | data_[pos_ + 2];
        pos_ += 3;
        return v;
    }
    std::uint32_t u32() {
        if (!need(4))
            return 0;
        std::uint32_t v = (std::uint32_t{data_[pos_]} << 24) |
                          (std::uint32_t{data_[pos_ + 1]} << 16) |
                          (std::uint32_t{data_[pos_ + 2]} << 8) | data_[pos_ + 3];
        pos_ += 4;
        return v;
    }
    std::uint64_t u64() {
        if (!need(8))
            return 0;
        std::uint64_t hi = u32();
        std::uint64_t lo = u32();
        return (hi << 32) | lo;
    }
    // A view of the next n bytes (empty and failed() if fewer remain).
    ByteView bytes(std::size_t n) {
        if (!need(n))
            return {};
        auto v = data_.subspan(pos_, n);
        pos_ += n;
        return v;
    }
    void skip(std::size_t n) { (void)bytes(n); }

    std::size_t position() const { return pos_; }
    std::size_t remaining() const { return data_.size() - pos_; }
    bool empty() const { return remaining() == 0; }
    bool failed() const { return failed_; }
    ByteView rest() const { return data_.subspan(pos_); }

private:
    bool need(std::size_t n) {
        if (failed_ || n > data_.size() - pos_) {
            failed_ = true;
            return false;
        }
        return true;
    }
    ByteView data_;
    std::size_t pos_ = 0;
    bool failed_ = false;
};

class ByteWriter {
public:
    explicit ByteWriter(Bytes& out) : out_(out) {}

    void u8(std::uint8_t v) { out_.push_back(v); }
    void u16(std::uint16_t v) {
        out_.push_back(static_cast<std::uint8_t>(v >> 8));
        out_.push_back(static_cast<std::uint8_t>(v));
    }
    void u24(std::uint32_t v) {
        out_.push_back(static_cast<std::uint8_t>(v >> 16));
        out_.push_back(static_cast<std::uint8_t>(v >> 8));
        out_.push_back(static_cast<std::uint8_t>(v));
    }
    void u32(std::uint32_t v) {
        u16(static_cast<std::uint16_t>(v >> 16));
        u16(static_cast<std::uint16_t>(v));
    }
    void u64(std::uint64_t v) {
        u32(static_cast<std::uint32_t>(v >> 32));
        u32(static_cast<std::uint32_t>(v));
    }
    void bytes(ByteView b) { out_.insert(out_.end(), b.begin(), b.end()); }
    void bytes(std::string_view s) { out_.insert(out_.end(), s.begin(), s.end()); }
    void zeros(std::size_t n) { out_.insert(out_.end(), n, 0); }
    // Overwrite a previously written big-endian u16/u32 (length fields written before the body).
    void patch_u16(std::size_t at, std::uint16_t v);
    void patch_u32(std::size_t at, std::uint32_t v);
    std::size_t size() const { return out_.size(); }

private:
    Bytes& out_;
};

std::string to_hex(ByteView b);
// 0-15 for a hex digit of either case, -1 otherwise.
int hex_value(char c);
// Accepts upper/lower case, ignores spaces and colons; empty on any other character.
Bytes from_hex(std::string_view s);

} // namespace rtcat::base

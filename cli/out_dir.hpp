#pragma once
// Files under a receiving directory (--out), placed so that no name a peer chooses can write
// outside it. Every path below the directory is walked one component at a time relative to a
// directory descriptor (openat/mkdirat/renameat), never following a symbolic link: a symlink
// planted in --out (`x.part -> /etc/passwd`, `dir -> /`) is refused, not followed, and a
// directory cannot be swapped for a symlink between the check and the use. The --out directory
// itself may be a symlink: the user chose it.

#include <cstdint>
#include <filesystem>
#include <string>

#include "core/base/result.hpp"
#include "core/io/fd.hpp"

namespace rtcat::cli {

// One file's place: its parent directory (held open) and its last component.
class OutTarget {
public:
    OutTarget() = default;
    OutTarget(io::UniqueFd parent, std::string leaf, std::string shown)
        : parent_(std::move(parent)), leaf_(std::move(leaf)), shown_(std::move(shown)) {}

    // What there is at NAME now (not following a symlink).
    enum class Existing { Nothing, RegularFile, Directory, Other };
    Existing existing() const;
    // Opens (creating it) NAME.part for reading and writing: refused when it is a symbolic link
    // or anything but a regular file. `truncate`: empty it.
    base::Result<io::UniqueFd> open_part(bool truncate) const;
    // Renames NAME.part to NAME. Without `replace`, an existing NAME is never overwritten (the
    // check and the rename are one atomic step where the file system supports it).
    base::Result<void> commit(bool replace) const;

    // NAME and NAME.part as the user sees them (--out/rel/path), for messages.
    const std::string& shown() const { return shown_; }
    std::string shown_part() const { return shown_ + ".part"; }

private:
    io::UniqueFd parent_;
    std::string leaf_;
    std::string shown_;
};

class OutDir {
public:
    static base::Result<OutDir> open(const std::filesystem::path& dir);

    // The place of `rel` (a path already checked by safe_relative_path: relative, no `..`),
    // creating its missing parent directories. Refuses a component that exists as a symbolic
    // link or as anything but a directory.
    base::Result<OutTarget> place(const std::filesystem::path& rel) const;
    const std::filesystem::path& path() const { return path_; }

private:
    io::UniqueFd fd_;
    std::filesystem::path path_;
};

} // namespace rtcat::cli

#include "cli/out_dir.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include <fmt/format.h>

#include "core/base/printable.hpp"

namespace rtcat::cli {

namespace fs = std::filesystem;

namespace {

std::string errno_text(int e) {
    return std::strerror(e);
}

} // namespace

OutTarget::Existing OutTarget::existing() const {
    struct stat st {};
    if (::fstatat(parent_.get(), leaf_.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        return Existing::Nothing;
    }
    if (S_ISREG(st.st_mode)) {
        return Existing::RegularFile;
    }
    return S_ISDIR(st.st_mode) ? Existing::Directory : Existing::Other;
}

base::Result<io::UniqueFd> OutTarget::open_part(bool truncate) const {
    const std::string part = leaf_ + ".part";
    // O_NOFOLLOW: a symlink named NAME.part fails with ELOOP instead of being followed.
    // O_NONBLOCK: a fifo planted as NAME.part must not block the open; it is refused below.
    int fd = ::openat(parent_.get(), part.c_str(),
                      O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0644);
    if (fd < 0) {
        const int e = errno;
        if (e == ELOOP) {
            return base::make_error("{} is a symbolic link: refused",
                                    base::printable(shown_part()));
        }
        return base::make_error("cannot open {}: {}", base::printable(shown_part()), errno_text(e));
    }
    io::UniqueFd owned(fd);
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        return base::make_error("{} exists and is not a regular file: refused",
                                base::printable(shown_part()));
    }
    const int flags = ::fcntl(fd, F_GETFL);
    if (flags >= 0) {
        ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    }
    if (truncate && ::ftruncate(fd, 0) != 0) {
        return base::make_error("cannot truncate {}: {}", base::printable(shown_part()),
                                errno_text(errno));
    }
    return owned;
}

base::Result<void> OutTarget::commit(bool replace) const {
    const std::string part = leaf_ + ".part";
    if (!replace) {
        // RENAME_NOREPLACE: the existence check and the rename in one step.
        if (::renameat2(parent_.get(), part.c_str(), parent_.get(), leaf_.c_str(),
                        RENAME_NOREPLACE) == 0) {
            return {};
        }
        const int e = errno;
        if (e == EEXIST) {
            return base::make_error("{} appeared meanwhile (use --force to overwrite)",
                                    base::printable(shown_));
        }
        if (e != EINVAL && e != ENOSYS) {
            return base::make_error("rename to {}: {}", base::printable(shown_), errno_text(e));
        }
        // The file system cannot do it atomically: check, then rename.
        if (existing() != Existing::Nothing) {
            return base::make_error("{} appeared meanwhile (use --force to overwrite)",
                                    base::printable(shown_));
        }
    }
    // renameat replaces a symlink named NAME itself, never the file it points to.
    if (::renameat(parent_.get(), part.c_str(), parent_.get(), leaf_.c_str()) != 0) {
        return base::make_error("rename to {}: {}", base::printable(shown_), errno_text(errno));
    }
    return {};
}

base::Result<OutDir> OutDir::open(const fs::path& dir) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return base::make_error("--out {}: {}", dir.string(), errno_text(errno));
    }
    OutDir d;
    d.fd_.reset(fd);
    d.path_ = dir;
    return d;
}

base::Result<OutTarget> OutDir::place(const fs::path& rel) const {
    std::vector<std::string> parts;
    for (const auto& p : rel) {
        parts.push_back(p.string());
    }
    if (parts.empty()) {
        return base::make_error("empty file name");
    }
    int dup = ::fcntl(fd_.get(), F_DUPFD_CLOEXEC, 0);
    if (dup < 0) {
        return base::make_error("--out {}: {}", path_.string(), errno_text(errno));
    }
    io::UniqueFd dir(dup);
    fs::path shown = path_;
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
        const std::string& comp = parts[i];
        shown /= comp;
        if (::mkdirat(dir.get(), comp.c_str(), 0755) != 0 && errno != EEXIST) {
            return base::make_error("cannot create {}: {}", base::printable(shown.string()),
                                    errno_text(errno));
        }
        // O_NOFOLLOW | O_DIRECTORY: a symlink (even to a directory) or a file is refused.
        int next =
            ::openat(dir.get(), comp.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (next < 0) {
            const int e = errno;
            if (e == ELOOP || e == ENOTDIR) {
                return base::make_error("{} is a symbolic link or not a directory: refused (it "
                                        "would lead outside {})",
                                        base::printable(shown.string()), path_.string());
            }
            return base::make_error("cannot open {}: {}", base::printable(shown.string()),
                                    errno_text(e));
        }
        dir.reset(next);
    }
    shown /= parts.back();
    return OutTarget(std::move(dir), parts.back(), shown.string());
}

} // namespace rtcat::cli

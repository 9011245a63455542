#include "core/io/fd.hpp"

#include <unistd.h>

namespace rtcat::io {

void UniqueFd::reset(int fd) {
    if (fd_ >= 0 && fd_ != fd) {
        // Linux releases the descriptor even when close() fails with EINTR; retrying could
        // close a descriptor another thread just received, so the result is ignored.
        (void)::close(fd_);
    }
    fd_ = fd;
}

} // namespace rtcat::io

#include "core/io/poller.hpp"

#include <algorithm>
#include <cerrno>
#include <climits>

#include "core/io/clock.hpp"
#include "core/io/sys_error.hpp"

namespace rtcat::io {

namespace {

short events_for(Interest interest) {
    const auto bits = static_cast<unsigned>(interest);
    short events = 0;
    if ((bits & static_cast<unsigned>(Interest::Read)) != 0)
        events |= POLLIN;
    if ((bits & static_cast<unsigned>(Interest::Write)) != 0)
        events |= POLLOUT;
    return events;
}

} // namespace

void Poller::set(int fd, Interest interest) {
    auto it = std::find_if(fds_.begin(), fds_.end(), [fd](const pollfd& p) { return p.fd == fd; });
    if (it != fds_.end())
        it->events = events_for(interest);
    else
        fds_.push_back(pollfd{fd, events_for(interest), 0});
}

void Poller::remove(int fd) {
    std::erase_if(fds_, [fd](const pollfd& p) { return p.fd == fd; });
}

bool Poller::contains(int fd) const {
    return find(fd) != nullptr;
}

int Poller::timeout_ms(base::Instant deadline, base::Instant now) {
    if (deadline == base::kNever)
        return -1;
    // Compare before subtracting: a deadline far in the past would overflow the difference.
    if (deadline <= now)
        return 0;
    const auto us = (deadline - now).count();
    const auto ms = us / 1000 + (us % 1000 != 0 ? 1 : 0);
    return static_cast<int>(std::min<decltype(ms)>(ms, INT_MAX));
}

base::Result<void> Poller::wait(base::Instant deadline) {
    for (pollfd& p : fds_)
        p.revents = 0;
    for (;;) {
        const int ready = ::poll(fds_.data(), fds_.size(), timeout_ms(deadline, now()));
        if (ready < 0) {
            if (errno == EINTR)
                return {};
            return sys_error("poll", errno);
        }
        // The kernel measures the timeout on the same monotonic clock and rounds it up, so an
        // early timeout is not expected; checking keeps the promise independent of that.
        if (ready == 0 && deadline != base::kNever && now() < deadline)
            continue;
        break;
    }
    for (const pollfd& p : fds_) {
        if ((p.revents & POLLNVAL) != 0)
            return base::make_error("poll: descriptor {} is registered but not open", p.fd);
    }
    return {};
}

const pollfd* Poller::find(int fd) const {
    for (const pollfd& p : fds_)
        if (p.fd == fd)
            return &p;
    return nullptr;
}

bool Poller::readable(int fd) const {
    const pollfd* p = find(fd);
    if (p == nullptr)
        return false;
    // A pipe whose writer has gone reports POLLHUP without POLLIN: the read returns EOF.
    return (p->revents & POLLIN) != 0 || ((p->events & POLLIN) != 0 && (p->revents & POLLHUP));
}

bool Poller::writable(int fd) const {
    const pollfd* p = find(fd);
    return p != nullptr && (p->revents & POLLOUT) != 0;
}

bool Poller::has_error(int fd) const {
    const pollfd* p = find(fd);
    return p != nullptr && (p->revents & POLLERR) != 0;
}

} // namespace rtcat::io

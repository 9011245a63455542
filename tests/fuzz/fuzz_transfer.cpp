// libFuzzer target for the file receiver (cli/transfer.*), everything a sending peer controls:
// rtcat-file/1 control messages (JSON text), channel labels (file names), file bytes, channel
// opens and closes in any order, and the sender going away. The input is a program of such
// events fed to a real Receiver writing into a scratch --out directory.
//
// What must hold, whatever the input: nothing crashes or trips a sanitizer; nothing is created
// outside --out (the scratch directory holds --out and a planted link target, nothing else);
// what a peer can fill stays bounded (bytes before `start`, files in flight).
//
// Under g++ the same function replays tests/fuzz/corpus/transfer/ as an ordinary test.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <unistd.h>

#include "cli/transfer.hpp"
#include "core/dtls/certificate.hpp"
#include "core/peer/peer.hpp"

using namespace rtcat;
namespace fs = std::filesystem;
namespace tr = cli::transfer;

namespace {

struct Reader {
    const std::uint8_t* data;
    std::size_t size;
    std::size_t pos = 0;
    bool empty() const { return pos >= size; }
    std::uint8_t byte() { return pos < size ? data[pos++] : 0; }
    std::string text(std::size_t max) {
        std::size_t n = std::min<std::size_t>(byte() % (max + 1), size - std::min(pos, size));
        std::string s(reinterpret_cast<const char*>(data + pos), n);
        pos += n;
        return s;
    }
};

// A Peer that never connects: the receiver's sends and closes are refused or ignored, which is
// what they are when the peer is gone, and cost nothing.
peer::Peer& idle_peer() {
    static std::unique_ptr<peer::Peer> p = [] {
        peer::PeerConfig c;
        c.offerer = false;
        c.certificate = dtls::Certificate::generate().value();
        c.host_sockets = {net::SocketAddr(*net::IpAddr::parse("10.0.0.2"), 50000)};
        return std::make_unique<peer::Peer>(std::move(c), base::Instant{});
    }();
    return *p;
}

// Made once per process, removed when it exits.
struct Scratch {
    fs::path path;
    Scratch()
        : path(fs::temp_directory_path() / ("rtcat-fuzz-transfer-" + std::to_string(::getpid()))) {
        fs::create_directories(path);
    }
    ~Scratch() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
};

const fs::path& scratch() {
    static const Scratch s;
    return s.path;
}

// Labels and names worth trying besides random ones: nested paths, traversal, the planted link.
const char* const kNames[] = {"a",      "d/b",         "link/x",   "../x", "/abs",
                              "a.part", "d/e/f/g.bin", "x\x1b[2J", "",     "d"};

std::string name(Reader& r) {
    const std::uint8_t k = r.byte();
    if (k < 200) {
        return kNames[k % (sizeof kNames / sizeof kNames[0])];
    }
    return r.text(40);
}

std::string control(Reader& r) {
    const char* const kTypes[] = {"hello", "file", "start", "end", "done"};
    const std::uint8_t k = r.byte();
    if (k >= 200) {
        return r.text(200); // anything at all
    }
    const std::string type = kTypes[k % 5];
    const int id = r.byte() % 6;
    std::string j = "{\"type\":\"" + type + "\",\"id\":" + std::to_string(id);
    // One read per statement: the operands of + are evaluated in no fixed order.
    if (type == "file") {
        const std::string n = name(r);
        const int sz = r.byte() * 97;
        j += ",\"name\":\"" + n + "\",\"size\":" + std::to_string(sz);
    } else if (type == "start") {
        j += ",\"offset\":" + std::to_string(r.byte() % 3);
    } else if (type == "end") {
        const int sz = r.byte() * 7;
        const std::string sha = r.text(64);
        j += ",\"size\":" + std::to_string(sz) + ",\"sha256\":\"" + sha + "\"";
    }
    return j + "}";
}

void check_outside() {
    for (const auto& e : fs::directory_iterator(scratch())) {
        const auto n = e.path().filename().string();
        if (n != "out" && n != "target") {
            std::abort(); // something was created next to --out
        }
    }
    if (!fs::is_empty(scratch() / "target")) {
        std::abort(); // written through the planted link
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    peer::Peer& pe = idle_peer();
    std::error_code ec;
    fs::remove_all(scratch() / "out", ec);
    fs::create_directories(scratch() / "out");
    fs::create_directories(scratch() / "target");
    fs::create_directory_symlink(scratch() / "target", scratch() / "out" / "link", ec);
    {
        auto rx = tr::Receiver::create({scratch() / "out", (size & 1) != 0, (size & 2) != 0});
        if (!rx) {
            std::abort();
        }
        tr::Receiver& receiver = **rx;
        Reader r{data, size};
        base::Instant now{};
        const base::Bytes chunk(64 * 1024, 0x5A);
        for (int step = 0; step < 400 && !r.empty(); ++step) {
            now += base::ms(1);
            const std::uint8_t op = r.byte() % 7;
            const auto id = static_cast<std::uint16_t>(r.byte() % 8);
            peer::Event ev;
            switch (op) {
            case 0: { // the control channel, or any other, opens
                dcep::ChannelInfo info;
                info.id = id;
                info.options.label = r.byte() < 64 ? std::string(tr::kControlLabel) : name(r);
                ev = dcep::event::ChannelOpen{info, true};
                break;
            }
            case 1: {
                auto text = control(r); // on whichever channel: the control one, or not
                ev = dcep::event::Message{id, false, base::Bytes(text.begin(), text.end())};
                break;
            }
            case 2: { // file bytes: a few, or a big run
                const std::uint8_t n = r.byte();
                if (n >= 240) {
                    for (int i = 0; i < 40; ++i) {
                        peer::Event big = dcep::event::Message{id, true, chunk};
                        receiver.on_event(pe, big, now);
                    }
                    continue;
                }
                ev = dcep::event::Message{id, (n & 1) != 0, base::Bytes(n, 0xA5)};
                break;
            }
            case 3: {
                const std::uint8_t f = r.byte();
                ev = dcep::event::ChannelClosed{id, (f & 1) != 0, (f & 2) != 0};
                break;
            }
            case 4:
                (void)receiver.on_peer_gone("gone");
                continue;
            case 5:
                (void)receiver.on_idle();
                continue;
            default: {
                auto text = r.text(100);
                ev = dcep::event::Message{id, false, base::Bytes(text.begin(), text.end())};
                break;
            }
            }
            receiver.on_event(pe, ev, now);
            if (receiver.early_bytes() > tr::kMaxEarlyBytes ||
                receiver.files_in_flight() > tr::kMaxFilesInFlight) {
                std::abort();
            }
        }
        receiver.abort("end of input");
    }
    check_outside();
    return 0;
}

// Replays fuzz inputs through a libFuzzer entry point without libFuzzer, so every fuzz target
// also runs its corpus as an ordinary test under g++ (and under ASan/UBSan in build-asan/).
//
//   replay_<name> PATH...   each PATH is a file or a directory (walked recursively)
//
// Exits 1 when no input was found: an empty corpus is a broken test, not a passing one.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

// stdio rather than istreambuf_iterator: GCC 12's -Wnull-dereference misfires on the latter.
bool read_file(const std::filesystem::path& path, std::vector<std::uint8_t>& out) {
    out.clear();
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (!f)
        return false;
    std::uint8_t buf[65536];
    std::size_t n = 0;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0)
        out.insert(out.end(), buf, buf + n);
    const bool ok = !std::ferror(f);
    std::fclose(f);
    return ok;
}

} // namespace

int main(int argc, char** argv) {
    namespace fs = std::filesystem;
    std::vector<fs::path> inputs;
    bool errors = false;
    for (int i = 1; i < argc; ++i) {
        fs::path arg(argv[i]);
        std::error_code ec;
        if (fs::is_directory(arg, ec)) {
            for (auto it = fs::recursive_directory_iterator(arg, ec);
                 !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
                if (it->is_regular_file(ec))
                    inputs.push_back(it->path());
            }
        } else if (fs::is_regular_file(arg, ec)) {
            inputs.push_back(arg);
        } else {
            std::fprintf(stderr, "replay: %s: no such file or directory\n", argv[i]);
            errors = true;
        }
        if (ec) {
            std::fprintf(stderr, "replay: %s: %s\n", argv[i], ec.message().c_str());
            errors = true;
        }
    }
    std::sort(inputs.begin(), inputs.end());

    std::size_t ran = 0;
    std::vector<std::uint8_t> data;
    for (const auto& path : inputs) {
        if (!read_file(path, data)) {
            std::fprintf(stderr, "replay: cannot read %s\n", path.c_str());
            errors = true;
            continue;
        }
        // Announce the input first so a crash names it.
        std::fprintf(stderr, "replay: %s (%zu bytes)\n", path.c_str(), data.size());
        // A copy sized exactly to the input lets ASan catch reads one past the end.
        std::vector<std::uint8_t> exact(data.begin(), data.end());
        LLVMFuzzerTestOneInput(exact.empty() ? nullptr : exact.data(), exact.size());
        ++ran;
    }
    // libFuzzer also always tries the empty input.
    LLVMFuzzerTestOneInput(nullptr, 0);

    std::printf("replay: ran %zu inputs\n", ran);
    if (ran == 0) {
        std::fprintf(stderr, "replay: no inputs found (empty corpus?)\n");
        return 1;
    }
    return errors ? 1 : 0;
}

#pragma once
// The rtcat command tree. One CLI11 tree produces --help, the man pages and the shell
// completions (tools/rtcat-gendocs), so every option is declared here or in a cmd_*.cpp.

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>

namespace rtcat::cli {

struct GlobalOptions {
    int verbose = 0;
    bool quiet = false;
    std::string log_level;
};

struct AppContext {
    GlobalOptions global;
    // Each subcommand registers how to run once its options are parsed.
    std::vector<std::pair<CLI::App*, std::function<int()>>> commands;
    // Owns the per-command option structs the CLI11 tree binds to.
    std::vector<std::shared_ptr<void>> storage;

    template <typename T> T& make() {
        auto p = std::make_shared<T>();
        storage.push_back(p);
        return *p;
    }
};

std::unique_ptr<AppContext> make_context();
std::unique_ptr<CLI::App> build_app(AppContext& ctx);

// Adders, one per command file.
void add_stun_probe(CLI::App& app, AppContext& ctx);
void add_peer_commands(CLI::App& app, AppContext& ctx);

// Applies -v/-q/--log-level to the logger.
void apply_global_options(const GlobalOptions& g);

int run(int argc, char** argv);

} // namespace rtcat::cli

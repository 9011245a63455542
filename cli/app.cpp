#include "cli/app.hpp"

#include <cstdio>

#include <fmt/format.h>

#include "cli/exit_codes.hpp"
#include "cli/manual.hpp"
#include "core/base/log.hpp"
#include "core/base/printable.hpp"

namespace rtcat::cli {

namespace {

// Log messages quote names, labels and reasons chosen by the peer: escaped, never raw.
void stderr_sink(base::LogLevel level, std::string_view component, std::string_view raw) {
    const std::string message = base::printable(raw);
    std::fprintf(stderr, "rtcat: %.*s: [%.*s] %.*s\n",
                 static_cast<int>(base::log_level_name(level).size()),
                 base::log_level_name(level).data(), static_cast<int>(component.size()),
                 component.data(), static_cast<int>(message.size()), message.data());
}

void register_main_manual() {
    register_manual(ManualPage{
        "rtcat",
        "WebRTC from the command line",
        {
            {"DESCRIPTION",
             "rtcat is a command-line WebRTC tool: netcat, ffmpeg and tshark for WebRTC in one "
             "binary. Each job is a subcommand; run rtcat COMMAND --help for its options.\n\n"
             "Data (SDP, received bytes, JSON reports) goes to standard output; diagnostics and "
             "progress go to standard error."},
            {"EXIT STATUS",
             "0\n    Success.\n"
             "1\n    Internal or unclassified error.\n"
             "2\n    Usage error: bad option, bad argument or bad input.\n"
             "3\n    Unreachable: no server or peer answered, or connectivity failed.\n"
             "4\n    Timeout: --timeout expired before the work finished.\n"
             "5\n    Security failure (DTLS, certificate fingerprint).\n"
             "6\n    Authentication failed (for example wrong TURN credentials).\n"
             "7\n    Transfer or verification failed.\n"
             "8\n    Partial result: some servers answered, others did not.\n"
             "130\n    Interrupted by SIGINT or SIGTERM."},
            {"ENVIRONMENT", "RTCAT_LOG\n    Default log level (trace, debug, info, warn, error, "
                            "off); -v, -q and --log-level override it."},
        },
    });
}

} // namespace

std::unique_ptr<AppContext> make_context() {
    return std::make_unique<AppContext>();
}

std::unique_ptr<CLI::App> build_app(AppContext& ctx) {
    register_main_manual();
    auto app = std::make_unique<CLI::App>("WebRTC from the command line: connect peers, "
                                          "send files over data channels, probe STUN/TURN "
                                          "servers and NAT behaviour.",
                                          "rtcat");
    app->set_version_flag("--version", "rtcat " RTCAT_VERSION);
    app->require_subcommand(0, 1);
    app->fallthrough();
    auto* g = &ctx.global;
    app->add_flag("-v,--verbose", g->verbose,
                  "More diagnostics on stderr (repeat for more: -v info, -vv debug, -vvv trace)");
    app->add_flag("-q,--quiet", g->quiet, "Only errors on stderr; no progress");
    app->add_option("--log-level", g->log_level, "Set the log level explicitly")
        ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}));
    add_peer_commands(*app, ctx);
    add_stun_probe(*app, ctx);
    return app;
}

void apply_global_options(const GlobalOptions& g) {
    base::set_log_sink(&stderr_sink);
    base::LogLevel level = base::LogLevel::Warn;
    if (const char* env = std::getenv("RTCAT_LOG"))
        (void)base::parse_log_level(env, level);
    if (g.quiet)
        level = base::LogLevel::Error;
    if (g.verbose == 1)
        level = base::LogLevel::Info;
    else if (g.verbose == 2)
        level = base::LogLevel::Debug;
    else if (g.verbose >= 3)
        level = base::LogLevel::Trace;
    if (!g.log_level.empty())
        (void)base::parse_log_level(g.log_level, level);
    base::set_log_level(level);
}

int run(int argc, char** argv) {
    auto ctx = make_context();
    auto app = build_app(*ctx);
    try {
        app->parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app->exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app->exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app->exit(e);
    } catch (const CLI::ParseError& e) {
        std::fprintf(stderr,
                     "rtcat: %s\nRun 'rtcat --help' (or 'rtcat COMMAND --help') for usage.\n",
                     e.what());
        return kExitUsage;
    }
    apply_global_options(ctx->global);
    for (auto& [sub, runner] : ctx->commands)
        if (sub->parsed())
            return runner();
    std::fputs(app->help().c_str(), stdout);
    return kExitUsage;
}

} // namespace rtcat::cli

// Man pages and completions generated from a toy CLI11 tree: roff structure and escaping,
// hidden options, checks turned into allowed values, manual sections and their markup,
// determinism, and (when the tools exist) groff warnings and real bash completion runs.

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <gtest/gtest.h>
#include <unistd.h>

#include "cli/docgen.hpp"
#include "cli/manual.hpp"

using namespace rtcat::cli;

namespace {

// The toy tree lives in a struct so the option targets outlive the App.
struct Toy {
    bool quiet = false;
    int verbose = 0;
    std::string config;
    int count = 5;
    std::string proto = "udp";
    double rate = 1.0;
    std::string server;
    std::string secret;
    std::string leading_dot;
    std::string out;
    std::vector<std::string> files;
    std::string mode;
    std::unique_ptr<CLI::App> app;

    Toy() {
        app = std::make_unique<CLI::App>("Toy WebRTC tool for tests", "toy");
        app->add_flag("-q,--quiet", quiet, "Print nothing on stderr");
        app->add_flag("-v,--verbose", verbose, "More diagnostics; repeat for more");
        app->add_option("--config", config, "Read defaults from <path>")->type_name("FILE");

        auto* probe = app->add_subcommand("probe", "Probe a STUN server. Prints the address.");
        probe->alias("p");
        probe->fallthrough();
        probe->add_option("-c,--count", count, "Number of requests")
            ->capture_default_str()
            ->check(CLI::Range(1, 100));
        probe->add_option("--proto", proto, "Transport")
            ->capture_default_str()
            ->check(CLI::IsMember({"udp", "tcp", "tls"}));
        probe->add_option("--rate", rate, "Requests per second")->check(CLI::PositiveNumber);
        probe->add_option("--secret", secret, "Never shown")->group("");
        probe->add_option("--odd", leading_dot, ".dotfiles are skipped, 'quoted' and \\back");
        probe->add_option("server", server, "STUN server as <host>:<port>")->required();

        auto* send = app->add_subcommand("send", "Send files over a data channel");
        send->add_option("-o,--out-file", out, "Write a report to this file")
            ->type_name("REPORT_FILE");
        send->add_option("--mode", mode, "Channel mode")
            ->transform(CLI::CheckedTransformer(
                std::map<std::string, int>{{"reliable", 0}, {"unordered", 1}}));
        auto* net = send->add_option_group("Network", "Where the peer is.");
        net->add_option("--port", count, "Local UDP port");
        send->add_option("files", files, "Files to send")->check(CLI::ExistingFile);

        app->add_subcommand("hidden", "Internal")->group("");
    }
};

std::vector<ManualPage> toy_manuals() {
    return {
        {
            .name = "toy",
            .summary = "",
            .sections =
                {
                    {"exit status", R"(
                        0
                            Success.
                        3
                            ICE failed: no candidate pair worked.
                    )"},
                    {"JSON OUTPUT", R"(
                        With `--json` every line is one object. Fields:

                        - `type`: the event name.
                        - `ts`: seconds since start,
                          as a float.

                        ## Events

                        Example:

                          toy probe --json stun.example.org:3478 | jq .type
                          .hidden-looking line

                          echo 'it''s' \n
                    )"},
                    {"SEE ALSO", "toy-probe(1), tshark(1),\njq(1)"},
                },
        },
        {
            .name = "probe",
            .summary = "ask a STUN server for our address",
            .sections =
                {
                    {"DESCRIPTION", R"(
                        Sends Binding requests to <server>. See toy(1) for more.
                        Use \`backticks\` and \<angles> literally.
                    )"},
                    {"EXAMPLES", "Ask Google's server:\n\n  toy probe stun.l.google.com:19302"},
                },
        },
    };
}

DocOptions toy_options() {
    DocOptions o;
    o.version = "9.9.9";
    o.date = "2026-01-02";
    o.manuals = toy_manuals();
    return o;
}

bool contains(const std::string& haystack, const std::string& needle) {
    return haystack.find(needle) != std::string::npos;
}

bool have_program(const char* name) {
    return std::system((std::string("command -v ") + name + " >/dev/null 2>&1").c_str()) == 0;
}

std::string run(const std::string& command) {
    std::string output;
    FILE* pipe = popen(command.c_str(), "r");
    if (pipe == nullptr) {
        return output;
    }
    std::array<char, 4096> buf{};
    std::size_t n = 0;
    while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0) {
        output.append(buf.data(), n);
    }
    pclose(pipe);
    return output;
}

// A scratch directory removed at scope exit.
struct TempDir {
    std::filesystem::path path;
    TempDir() {
        std::string tmpl = (std::filesystem::temp_directory_path() / "docgen-test-XXXXXX").string();
        path = mkdtemp(tmpl.data());
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    std::filesystem::path write(const std::string& name, const std::string& content) const {
        auto p = path / name;
        std::filesystem::create_directories(p.parent_path());
        std::ofstream(p) << content;
        return p;
    }
};

} // namespace

TEST(DocgenFiles, OnePagePerCommandAndThreeCompletions) {
    Toy toy;
    auto files = generate_docs(*toy.app, toy_options());
    std::vector<std::string> names;
    for (const auto& [name, content] : files) {
        names.push_back(name);
        EXPECT_FALSE(content.empty()) << name;
    }
    EXPECT_EQ(names, (std::vector<std::string>{"completions/_toy", "completions/toy.bash",
                                               "completions/toy.fish", "man/toy-probe.1",
                                               "man/toy-send.1", "man/toy.1"}));
}

TEST(DocgenMan, TopLevelPage) {
    Toy toy;
    auto man = generate_docs(*toy.app, toy_options()).at("man/toy.1");
    EXPECT_TRUE(
        contains(man, ".TH \"TOY\" 1 \"2026\\-01\\-02\" \"toy 9.9.9\" \"User Commands\"\n"));
    EXPECT_TRUE(contains(man, ".SH NAME\ntoy \\- Toy WebRTC tool for tests\n"));
    EXPECT_TRUE(
        contains(man, ".SH SYNOPSIS\n\\fB\\%toy\\fR\n[\\fIoptions\\fR]\n[\\fIcommand\\fR]"));
    EXPECT_TRUE(contains(man, ".SH COMMANDS\n.TP\n\\fB\\%probe\\fR, \\fB\\%p\\fR\n"));
    EXPECT_TRUE(contains(man, "See \\fB\\%toy\\-probe\\fR(1)."));
    EXPECT_TRUE(contains(man, "\\fB\\%\\-v\\fR, \\fB\\%\\-\\-verbose\\fR\n"));
    EXPECT_TRUE(contains(man, "May be given more than once (counted)."));
    EXPECT_TRUE(contains(man, "\\fB\\%\\-\\-config\\fR \\fI\\%FILE\\fR\nRead defaults from "
                              "\\fI\\%path\\fR."));
    EXPECT_FALSE(contains(man, "\\fB\\%hidden\\fR")) << "a command in group \"\" is hidden";
    EXPECT_FALSE(contains(man, "Internal"));
}

TEST(DocgenMan, SubcommandPageOptions) {
    Toy toy;
    auto man = generate_docs(*toy.app, toy_options()).at("man/toy-probe.1");
    EXPECT_TRUE(contains(man, ".TH \"TOY\\-PROBE\" 1"));
    EXPECT_TRUE(contains(man, ".SH NAME\ntoy\\-probe \\- ask a STUN server for our address\n"));
    EXPECT_TRUE(contains(man, ".SH OPTIONS\n"));
    EXPECT_TRUE(contains(man, "\\fB\\%\\-c\\fR, \\fB\\%\\-\\-count\\fR \\fI\\%INT\\fR\n"));
    EXPECT_TRUE(contains(man, "Number of requests.\nDefault: \\fB\\%5\\fR.\n"
                              "Range: \\fB\\%1\\fR to \\fB\\%100\\fR.\n"));
    EXPECT_TRUE(contains(man, "Allowed values: \\fB\\%udp\\fR, \\fB\\%tcp\\fR, \\fB\\%tls\\fR."));
    EXPECT_TRUE(contains(man, "Must be positive."));
    EXPECT_TRUE(contains(man, ".SH ARGUMENTS\n.TP\n\\fI\\%server\\fR\n"));
    EXPECT_TRUE(contains(man, "\\fI\\%server\\fR\n.SH DESCRIPTION")) << "required positional";
    EXPECT_FALSE(contains(man, "secret"));
    EXPECT_FALSE(contains(man, "Never shown"));
    // Help is this command's own option; the parent's is not repeated as a global one.
    EXPECT_TRUE(contains(man, "\\fB\\%\\-h\\fR, \\fB\\%\\-\\-help\\fR\n"));
    const auto globals = man.substr(man.find(".SH GLOBAL OPTIONS"));
    EXPECT_TRUE(contains(globals, "\\fB\\%\\-\\-config\\fR \\fI\\%FILE\\fR"));
    EXPECT_FALSE(contains(globals.substr(0, globals.find(".SH", 4)), "\\-\\-help"));
}

TEST(DocgenMan, EscapesDescriptionsStartingWithDotQuoteOrBackslash) {
    Toy toy;
    auto man = generate_docs(*toy.app, toy_options()).at("man/toy-probe.1");
    EXPECT_TRUE(contains(man, "\n\\&.dotfiles are skipped, 'quoted' and \\eback.\n"));
    EXPECT_EQ(roff_escape(".x\n'y\n\\z-w"), "\\&.x\n\\&'y\n\\ez\\-w");
    EXPECT_EQ(roff_escape("caf\xC3\xA9 \xE2\x86\x92 ~^"), "caf\\[u00E9] \\[u2192] \\(ti\\(ha");
}

TEST(DocgenMan, OptionGroupsFileTypesAndTransformers) {
    Toy toy;
    auto man = generate_docs(*toy.app, toy_options()).at("man/toy-send.1");
    EXPECT_TRUE(contains(man, ".SS Network\n.PP\nWhere the peer is.\n.TP\n\\fB\\%\\-\\-port\\fR"));
    EXPECT_TRUE(
        contains(man, "\\fB\\%\\-o\\fR, \\fB\\%\\-\\-out\\-file\\fR \\fI\\%REPORT_FILE\\fR"));
    EXPECT_TRUE(contains(man, "Allowed values: \\fB\\%reliable\\fR, \\fB\\%unordered\\fR."));
    EXPECT_TRUE(
        contains(man, ".TP\n\\fI\\%files\\fR \\&...\nFiles to send.\nThe file must exist."));
    EXPECT_TRUE(contains(man, "[\\fI\\%files\\fR \\&...]")) << "optional variadic in SYNOPSIS";
    // No fallthrough: global options must come first.
    EXPECT_TRUE(contains(man, "go before the command name:"));
}

TEST(DocgenMan, ManualSectionsInManPagesOrderWithMarkup) {
    Toy toy;
    auto man = generate_docs(*toy.app, toy_options()).at("man/toy.1");
    const auto options = man.find(".SH OPTIONS");
    const auto json = man.find(".SH JSON OUTPUT");
    const auto exit = man.find(".SH EXIT STATUS");
    const auto see = man.find(".SH SEE ALSO");
    ASSERT_NE(json, std::string::npos);
    ASSERT_NE(exit, std::string::npos);
    EXPECT_LT(options, json) << "unknown titles right after OPTIONS";
    EXPECT_LT(json, exit) << "then the standard ones in man-pages(7) order";
    EXPECT_LT(exit, see);
    EXPECT_TRUE(contains(man, ".SH EXIT STATUS\n.TP\n0\nSuccess.\n.TP\n3\nICE failed"));
    EXPECT_TRUE(
        contains(man, ".PP\nWith \\fB\\%\\-\\-json\\fR every line is one object. Fields:\n"));
    EXPECT_TRUE(contains(man, ".IP \\(bu 2\n\\fB\\%ts\\fR: seconds since start,\nas a float.\n"));
    EXPECT_TRUE(contains(man, ".SS Events\n"));
    EXPECT_TRUE(contains(man, ".RS 4\n.EX\ntoy probe \\-\\-json stun.example.org:3478 | jq "
                              ".type\n\\&.hidden\\-looking line\n\\&\necho \\(aqit\\(aq\\(aqs\\(aq "
                              "\\en\n.EE\n.RE\n"));
    EXPECT_TRUE(
        contains(man, ".SH SEE ALSO\n.PP\n\\fB\\%toy\\-probe\\fR(1),\n\\fB\\%toy\\-send\\fR(1),\n"
                      "\\fB\\%tshark\\fR(1),\n\\fB\\%jq\\fR(1)\n"))
        << "generated references first, the manual's without repeats";
}

TEST(DocgenMan, ManualDescriptionReplacesTheOneLiner) {
    Toy toy;
    auto man = generate_docs(*toy.app, toy_options()).at("man/toy-probe.1");
    EXPECT_TRUE(contains(man,
                         ".SH DESCRIPTION\n.PP\nSends Binding requests to \\fI\\%server\\fR. "
                         "See \\fB\\%toy\\fR(1) for more.\nUse \\(gabackticks\\(ga and <angles> "
                         "literally.\n"))
        << man;
    EXPECT_TRUE(contains(man, ".SH EXAMPLES\n.PP\nAsk Google's server:\n.PP\n.RS 4\n.EX\ntoy "
                              "probe "));
    EXPECT_FALSE(contains(man, "Prints the address")) << "only the manual's DESCRIPTION";
}

TEST(DocgenMan, BadManualsAreErrors) {
    Toy toy;
    auto opts = toy_options();
    opts.manuals = std::vector<ManualPage>{{.name = "prbe", .summary = "", .sections = {}}};
    EXPECT_THROW(generate_docs(*toy.app, opts), DocError);
    opts.manuals =
        std::vector<ManualPage>{{.name = "probe", .summary = "", .sections = {{"OPTIONS", "x"}}}};
    EXPECT_THROW(generate_docs(*toy.app, opts), DocError);
    opts.manuals = std::vector<ManualPage>{
        {.name = "probe", .summary = "", .sections = {{"NOTES", "x"}, {"Notes", "y"}}}};
    EXPECT_THROW(generate_docs(*toy.app, opts), DocError);
}

TEST(DocgenMan, RegistryReplacesPagesByName) {
    clear_manuals();
    register_manual({.name = "probe", .summary = "one", .sections = {}});
    register_manual({.name = "send", .summary = "two", .sections = {}});
    register_manual({.name = "probe", .summary = "three", .sections = {}});
    ASSERT_EQ(manuals().size(), 2u);
    EXPECT_EQ(manuals()[0].summary, "three");
    ASSERT_NE(find_manual("send"), nullptr);
    EXPECT_EQ(find_manual("nope"), nullptr);

    Toy toy;
    DocOptions opts; // manuals from the registry
    auto man = generate_docs(*toy.app, opts).at("man/toy-probe.1");
    EXPECT_TRUE(contains(man, "toy\\-probe \\- three\n"));
    clear_manuals();
}

TEST(DocgenMan, CommandWithoutAnySummaryIsAnError) {
    CLI::App app{"", "bare"};
    DocOptions opts;
    opts.manuals = std::vector<ManualPage>{};
    EXPECT_THROW(generate_docs(app, opts), DocError);
    opts.manuals =
        std::vector<ManualPage>{{.name = "bare", .summary = "do nothing", .sections = {}}};
    EXPECT_TRUE(contains(generate_docs(app, opts).at("man/bare.1"), "bare \\- do nothing\n"));
}

namespace {

// Two levels: "nt remote add" with fallthrough to "nt remote".
struct Nested {
    bool dry_run = false;
    std::string name;
    int weight = 0;
    std::unique_ptr<CLI::App> app = std::make_unique<CLI::App>("Nested toy", "nt");
    Nested() {
        auto* remote = app->add_subcommand("remote", "Manage remotes");
        remote->add_flag("--dry-run", dry_run, "Change nothing");
        auto* add = remote->add_subcommand("add", "Add a remote")->fallthrough();
        add->add_option("name", name, "Its name")->required();
        add->add_option("--weight", weight, "Weight")->check(CLI::IsMember({1, 2, 3}));
        remote->add_subcommand("list", "List remotes");
    }
};

} // namespace

TEST(DocgenMan, NestedCommandsGetTheirOwnPages) {
    Nested nt;
    DocOptions opts;
    opts.manuals = std::vector<ManualPage>{
        {.name = "remote add", .summary = "", .sections = {{"NOTES", "Names are unique."}}}};
    auto files = generate_docs(*nt.app, opts);
    ASSERT_EQ(files.count("man/nt-remote-add.1"), 1u);
    ASSERT_EQ(files.count("man/nt-remote-list.1"), 1u);
    const auto& add = files.at("man/nt-remote-add.1");
    EXPECT_TRUE(contains(add, "\\fB\\%nt\\fR\n\\fB\\%remote\\fR\n\\fB\\%add\\fR\n"));
    EXPECT_TRUE(contains(add, "These options of \\fB\\%nt\\-remote\\fR(1) are also accepted"));
    EXPECT_TRUE(contains(add, "\\fB\\%\\-\\-dry\\-run\\fR\nChange nothing."));
    EXPECT_TRUE(contains(add, ".SH NOTES\n.PP\nNames are unique.\n"));
    EXPECT_TRUE(contains(add, ".SH SEE ALSO\n.PP\n\\fB\\%nt\\-remote\\fR(1)\n"));
    const auto& remote = files.at("man/nt-remote.1");
    EXPECT_TRUE(contains(remote, "See \\fB\\%nt\\-remote\\-add\\fR(1)."));
}

TEST(DocgenCompletion, Bash) {
    Toy toy;
    auto bash = generate_docs(*toy.app, toy_options()).at("completions/toy.bash");
    EXPECT_TRUE(contains(bash, "complete -F _toy toy\n"));
    EXPECT_TRUE(contains(bash, "'') REPLY='probe send' ;;"));
    EXPECT_TRUE(contains(bash, "'/probe' | '/p') REPLY='probe' ;;"));
    EXPECT_TRUE(contains(bash, "'probe') REPLY='-h --help -c --count --proto --rate --odd "
                               "-q --quiet -v --verbose --config' ;;"));
    EXPECT_TRUE(contains(bash, "'probe/--proto') REPLY='udp tcp tls' ;;"));
    EXPECT_TRUE(contains(bash, "'send/-o' | 'send/--out-file') REPLY='@file' ;;"));
    EXPECT_TRUE(contains(bash, "'send/--mode') REPLY='reliable unordered' ;;"));
    EXPECT_FALSE(contains(bash, "secret"));
    EXPECT_FALSE(contains(bash, "hidden"));
}

TEST(DocgenCompletion, ZshAndFish) {
    Toy toy;
    auto files = generate_docs(*toy.app, toy_options());
    const auto& zsh = files.at("completions/_toy");
    EXPECT_TRUE(contains(zsh, "#compdef toy\n"));
    EXPECT_TRUE(contains(zsh, "'probe:Probe a STUN server. Prints the address.'"));
    EXPECT_TRUE(contains(zsh, "'(-c --count)--count=[Number of requests]:INT: '"));
    EXPECT_TRUE(contains(zsh, "'--proto=[Transport]:TEXT:(udp tcp tls)'"));
    EXPECT_TRUE(contains(zsh, "'*-v[More diagnostics; repeat for more]'"));
    EXPECT_TRUE(contains(zsh, "'1:server: '"));
    EXPECT_TRUE(contains(zsh, "'*:files:_files'"));
    EXPECT_TRUE(contains(zsh, "('probe'|'p') _toy__probe && ret=0 ;;"));
    EXPECT_FALSE(contains(zsh, "secret"));

    const auto& fish = files.at("completions/toy.fish");
    EXPECT_TRUE(contains(fish, "complete -c toy -n '__fish_use_subcommand' -a 'probe' -d "
                               "'Probe a STUN server. Prints the address.'\n"));
    EXPECT_TRUE(contains(fish, "complete -c toy -n '__fish_seen_subcommand_from probe p' -s c "
                               "-l count -x -d 'Number of requests'\n"));
    EXPECT_TRUE(contains(fish, "-l proto -x -a 'udp tcp tls'"));
    EXPECT_TRUE(contains(fish, "-l config -r -F -d 'Read defaults from <path>'"));
    EXPECT_FALSE(contains(fish, "secret"));
}

TEST(DocgenOutput, Deterministic) {
    Toy a;
    Toy b;
    EXPECT_EQ(generate_docs(*a.app, toy_options()), generate_docs(*a.app, toy_options()));
    EXPECT_EQ(generate_docs(*a.app, toy_options()), generate_docs(*b.app, toy_options()));
}

TEST(DocgenOutput, OwnedPaths) {
    EXPECT_TRUE(is_generated_doc_path("man/toy.1", "toy"));
    EXPECT_TRUE(is_generated_doc_path("man/toy-old-command.1", "toy"));
    EXPECT_TRUE(is_generated_doc_path("completions/_toy", "toy"));
    EXPECT_TRUE(is_generated_doc_path("completions/toy.elvish", "toy"));
    EXPECT_FALSE(is_generated_doc_path("man/README.md", "toy"));
    EXPECT_FALSE(is_generated_doc_path("man/toybox.1", "toy"));
    EXPECT_FALSE(is_generated_doc_path("completions/other.bash", "toy"));
}

TEST(DocgenLint, GroffFindsNoProblems) {
    if (!have_program("groff")) {
        GTEST_SKIP() << "groff not installed";
    }
    Toy toy;
    Nested nt;
    DocOptions nt_options;
    nt_options.manuals = std::vector<ManualPage>{};
    auto files = generate_docs(*toy.app, toy_options());
    files.merge(generate_docs(*nt.app, nt_options));
    TempDir dir;
    for (const auto& [name, content] : files) {
        if (name.starts_with("man/")) {
            auto path = dir.write(name, content);
            auto warnings = run("groff -man -ww -z -Tutf8 '" + path.string() + "' 2>&1");
            EXPECT_EQ(warnings, "") << name;
        }
    }
}

TEST(DocgenLint, BashCompletesWhatTheTreeAccepts) {
    if (!have_program("bash")) {
        GTEST_SKIP() << "bash not installed";
    }
    Toy toy;
    TempDir dir;
    auto script =
        dir.write("toy.bash", generate_docs(*toy.app, toy_options()).at("completions/toy.bash"));
    dir.write("files/a.txt", "");
    dir.write("files/b.txt", "");
    // Runs the completion function (_<program>) as bash would for the words of `line`, the
    // cursor at the end.
    auto complete = [&](const std::string& line) {
        const std::string driver =
            "cd '" + (dir.path / "files").string() + "' && source '" + script.string() +
            "' && COMP_WORDS=(" + line +
            ") && COMP_CWORD=$((${#COMP_WORDS[@]} - 1)) && \"_${COMP_WORDS[0]}\" && "
            "((${#COMPREPLY[@]} == 0)) || printf '%s\\n' \"${COMPREPLY[@]}\"";
        std::ofstream(dir.path / "driver.sh") << driver;
        // Sorted: file names come back in directory order.
        return run("bash --norc --noprofile '" + (dir.path / "driver.sh").string() + "' | sort");
    };
    EXPECT_EQ(complete("toy ''"), "probe\nsend\n");
    EXPECT_EQ(complete("toy pr"), "probe\n");
    EXPECT_EQ(complete("toy probe --pr"), "--proto\n");
    EXPECT_EQ(complete("toy p --proto t"), "tcp\ntls\n") << "alias and option value";
    EXPECT_EQ(complete("toy probe --proto = ''"), "tcp\ntls\nudp\n") << "--proto=<TAB>";
    EXPECT_EQ(complete("toy --config x probe --co"), "--config\n--count\n");
    EXPECT_EQ(complete("toy send -o ''"), "a.txt\nb.txt\n");
    EXPECT_EQ(complete("toy send --mode reliable ''"), "a.txt\nb.txt\n") << "positional files";
    EXPECT_EQ(complete("toy send -- --"), "") << "after -- only positionals";

    Nested nt;
    DocOptions opts;
    opts.manuals = std::vector<ManualPage>{};
    script = dir.write("nt.bash", generate_docs(*nt.app, opts).at("completions/nt.bash"));
    EXPECT_EQ(complete("nt remote ''"), "add\nlist\n");
    EXPECT_EQ(complete("nt remote add --"), "--dry-run\n--help\n--weight\n");
    EXPECT_EQ(complete("nt remote --dry-run add --weight ''"), "1\n2\n3\n");
    EXPECT_EQ(complete("nt remote list --"), "--help\n") << "no fallthrough: own options";
}

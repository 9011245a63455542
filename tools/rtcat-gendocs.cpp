// rtcat-gendocs: writes and checks man/ and completions/ from the rtcat command tree (the same
// build_app() the binary runs), so help, man pages and completions cannot disagree.
//
//   rtcat-gendocs --write DIR          write the files under DIR (a repository root), delete
//                                      generated files of commands that no longer exist
//   rtcat-gendocs --check DIR          exit 1 with a diff when DIR's files differ (drift test)
//   rtcat-gendocs --lint-man --groff G run groff -man -ww on every page; 77 (skip) without G
//   rtcat-gendocs --lint-completions --bash B [--zsh Z] [--fish F]
//                                      syntax-check each shell's file, run bash's for real
//   rtcat-gendocs --print PATH | --list  show one generated file / every generated path

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "cli/app.hpp"
#include "cli/docgen.hpp"

#ifndef RTCAT_DOCS_DATE
#error "RTCAT_DOCS_DATE must be defined (tools/CMakeLists.txt)"
#endif
#ifndef RTCAT_VERSION
#error "RTCAT_VERSION must be defined (rtcat_cli's compile definitions)"
#endif

namespace fs = std::filesystem;

namespace {

constexpr int kSkip = 77; // ctest SKIP_RETURN_CODE
constexpr const char* kProgram = "rtcat";
constexpr std::size_t kMaxDiffLines = 80; // per file: enough to see what changed

std::map<std::string, std::string> generate() {
    auto ctx = rtcat::cli::make_context();
    auto app = rtcat::cli::build_app(*ctx);
    rtcat::cli::DocOptions options;
    options.program = kProgram;
    options.version = RTCAT_VERSION;
    options.date = RTCAT_DOCS_DATE;
    return rtcat::cli::generate_docs(*app, options);
}

bool read_file(const fs::path& path, std::string& out) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        return false;
    }
    out.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    return true;
}

bool write_file(const fs::path& path, const std::string& content) {
    fs::create_directories(path.parent_path());
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << content;
    return static_cast<bool>(out.flush());
}

// Files under DIR the generator owns (see is_generated_doc_path), as relative paths.
std::set<std::string> owned_files(const fs::path& dir) {
    std::set<std::string> found;
    for (const char* sub : {"man", "completions"}) {
        std::error_code ec;
        for (const auto& entry : fs::directory_iterator(dir / sub, ec)) {
            const std::string rel = std::string(sub) + "/" + entry.path().filename().string();
            if (entry.is_regular_file() && rtcat::cli::is_generated_doc_path(rel, kProgram)) {
                found.insert(rel);
            }
        }
    }
    return found;
}

std::vector<std::string> split_lines(const std::string& s) {
    std::vector<std::string> lines;
    std::istringstream in(s);
    for (std::string line; std::getline(in, line);) {
        lines.push_back(line);
    }
    return lines;
}

// A unified diff (3 lines of context) from an LCS table; the files are a few hundred lines, so
// the quadratic table is small. Output stops after `limit` lines.
std::string unified_diff(const std::string& name, const std::string& old_text,
                         const std::string& new_text, std::size_t limit) {
    const auto a = split_lines(old_text);
    const auto b = split_lines(new_text);
    const std::size_t n = a.size();
    const std::size_t m = b.size();
    if (n * m > 16'000'000) {
        return "  (" + std::to_string(n) + " lines committed, " + std::to_string(m) +
               " generated: too large to diff here)\n";
    }
    std::vector<std::vector<std::uint32_t>> lcs(n + 1, std::vector<std::uint32_t>(m + 1, 0));
    for (std::size_t i = n; i-- > 0;) {
        for (std::size_t j = m; j-- > 0;) {
            lcs[i][j] =
                a[i] == b[j] ? lcs[i + 1][j + 1] + 1 : std::max(lcs[i + 1][j], lcs[i][j + 1]);
        }
    }
    struct Op {
        char tag; // ' ', '-', '+'
        std::size_t ai;
        std::size_t bi;
    };
    std::vector<Op> ops;
    std::size_t i = 0;
    std::size_t j = 0;
    while (i < n || j < m) {
        if (i < n && j < m && a[i] == b[j]) {
            ops.push_back({' ', i++, j++});
        } else if (i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1])) {
            ops.push_back({'-', i++, j}); // removals first, as diff(1) prints them
        } else {
            ops.push_back({'+', i, j++});
        }
    }
    constexpr std::size_t kContext = 3;
    std::string out = "--- " + name + " (committed)\n+++ " + name + " (generated)\n";
    std::size_t printed = 0;
    std::size_t k = 0;
    while (k < ops.size()) {
        if (ops[k].tag == ' ') {
            ++k;
            continue;
        }
        // A hunk: from kContext before this change to kContext after the last change that is
        // at most 2*kContext unchanged lines further on.
        std::size_t start = k >= kContext ? k - kContext : 0;
        std::size_t end = k;
        std::size_t same = 0;
        for (std::size_t x = k; x < ops.size(); ++x) {
            if (ops[x].tag == ' ') {
                if (++same > 2 * kContext) {
                    break;
                }
            } else {
                same = 0;
                end = x;
            }
        }
        const std::size_t stop = std::min(ops.size(), end + kContext + 1);
        std::size_t a_len = 0;
        std::size_t b_len = 0;
        for (std::size_t x = start; x < stop; ++x) {
            a_len += ops[x].tag != '+' ? 1 : 0;
            b_len += ops[x].tag != '-' ? 1 : 0;
        }
        out += "@@ -" + std::to_string(ops[start].ai + (a_len != 0 ? 1 : 0)) + "," +
               std::to_string(a_len) + " +" + std::to_string(ops[start].bi + (b_len != 0 ? 1 : 0)) +
               "," + std::to_string(b_len) + " @@\n";
        for (std::size_t x = start; x < stop; ++x) {
            if (++printed > limit) {
                return out + "  ... (diff cut here)\n";
            }
            const auto& line = ops[x].tag == '+' ? b[ops[x].bi] : a[ops[x].ai];
            out += std::string(1, ops[x].tag) + line + "\n";
        }
        k = stop;
    }
    return out;
}

int do_write(const fs::path& dir, const std::map<std::string, std::string>& files) {
    int written = 0;
    int unchanged = 0;
    for (const auto& [rel, content] : files) {
        std::string old;
        if (read_file(dir / rel, old) && old == content) {
            ++unchanged; // leave the mtime alone
            continue;
        }
        if (!write_file(dir / rel, content)) {
            std::cerr << "rtcat-gendocs: cannot write " << (dir / rel).string() << "\n";
            return 1;
        }
        std::cout << "wrote " << rel << "\n";
        ++written;
    }
    int removed = 0;
    for (const auto& rel : owned_files(dir)) {
        if (files.count(rel) == 0) {
            fs::remove(dir / rel);
            std::cout << "removed " << rel << " (no such command any more)\n";
            ++removed;
        }
    }
    std::cout << "rtcat-gendocs: " << written << " written, " << removed << " removed, "
              << unchanged << " unchanged in " << dir.string() << "\n";
    return 0;
}

int do_check(const fs::path& dir, const std::map<std::string, std::string>& files) {
    int drifted = 0;
    for (const auto& [rel, content] : files) {
        std::string committed;
        if (!read_file(dir / rel, committed)) {
            std::cout << rel << ": missing (the generator produces it)\n";
            ++drifted;
        } else if (committed != content) {
            std::cout << rel << ": differs from the generated file\n"
                      << unified_diff(rel, committed, content, kMaxDiffLines);
            ++drifted;
        }
    }
    for (const auto& rel : owned_files(dir)) {
        if (files.count(rel) == 0) {
            std::cout << rel << ": stale (no command produces it any more; delete it)\n";
            ++drifted;
        }
    }
    if (drifted != 0) {
        std::cout << "rtcat-gendocs: " << drifted << " file(s) out of date with the command tree."
                  << " Run scripts/gen-docs.sh and commit the result.\n";
        return 1;
    }
    std::cout << "rtcat-gendocs: " << files.size() << " files up to date in " << dir.string()
              << "\n";
    return 0;
}

// A scratch directory, removed at scope exit.
class TempDir {
public:
    TempDir() {
        std::string tmpl = (fs::temp_directory_path() / "rtcat-gendocs-XXXXXX").string();
        if (mkdtemp(tmpl.data()) == nullptr) {
            throw std::runtime_error("mkdtemp failed");
        }
        path_ = tmpl;
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    fs::path put(const std::string& rel, const std::string& content) const {
        auto p = path_ / rel;
        if (!write_file(p, content)) {
            throw std::runtime_error("cannot write " + p.string());
        }
        return p;
    }
    const fs::path& path() const { return path_; }

private:
    fs::path path_;
};

std::string shell_quote(const std::string& s) {
    std::string out = "'";
    for (char c : s) {
        out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    }
    return out + "'";
}

struct RunResult {
    int status = -1;
    std::string output; // stdout and stderr
};

RunResult run(const std::string& command) {
    RunResult result;
    FILE* pipe = popen((command + " 2>&1").c_str(), "r");
    if (pipe == nullptr) {
        return result;
    }
    std::array<char, 4096> buf{};
    std::size_t n = 0;
    while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0) {
        result.output.append(buf.data(), n);
    }
    const int raw = pclose(pipe);
    result.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
    return result;
}

int do_lint_man(const std::string& groff, const std::map<std::string, std::string>& files) {
    if (groff.empty()) {
        std::cout << "SKIP: groff not found; install groff-base to lint the man pages\n";
        return kSkip;
    }
    TempDir tmp;
    int bad = 0;
    int pages = 0;
    for (const auto& [rel, content] : files) {
        if (!rel.starts_with("man/")) {
            continue;
        }
        ++pages;
        const auto path = tmp.put(rel, content);
        // -ww: every warning category; -z: format but print nothing; utf8 like man(1) on a TTY.
        const auto r =
            run(shell_quote(groff) + " -man -ww -z -Tutf8 " + shell_quote(path.string()));
        if (r.status != 0 || !r.output.empty()) {
            std::cout << rel << ": groff reports problems (exit " << r.status << "):\n" << r.output;
            ++bad;
        }
    }
    std::cout << "rtcat-gendocs: " << pages << " man pages, " << bad << " with groff warnings\n";
    return bad == 0 ? 0 : 1;
}

// Names a shell user types for the visible subcommands / long options of `app`.
std::vector<std::string> visible_subcommands(const CLI::App& app) {
    std::vector<std::string> names;
    for (const CLI::App* sub : app.get_subcommands({})) {
        if (!sub->get_name().empty() && !sub->get_group().empty() && !sub->get_disabled()) {
            names.push_back(sub->get_name());
        }
    }
    return names;
}

std::vector<std::string> visible_long_options(const CLI::App& app) {
    std::vector<std::string> names;
    for (const CLI::Option* opt : app.get_options()) {
        if (!opt->get_group().empty()) {
            for (const auto& l : opt->get_lnames()) {
                names.push_back("--" + l);
            }
        }
    }
    return names;
}

// Sources the bash completion and asks it what the user would see after "rtcat <TAB>" and
// "rtcat <sub> --<TAB>": a syntax check cannot tell that the functions work.
int bash_smoke_test(const std::string& bash, const fs::path& script, const TempDir& tmp) {
    auto ctx = rtcat::cli::make_context();
    auto app = rtcat::cli::build_app(*ctx);
    auto complete = [&](const std::string& words) {
        const auto driver = tmp.put(
            "driver.sh",
            "source " + shell_quote(script.string()) + "\nCOMP_WORDS=(" + words +
                ")\nCOMP_CWORD=$((${#COMP_WORDS[@]} - 1))\n"
                "_rtcat\n((${#COMPREPLY[@]} == 0)) || printf '%s\\n' \"${COMPREPLY[@]}\"\n");
        const auto r =
            run(shell_quote(bash) + " --norc --noprofile " + shell_quote(driver.string()));
        std::set<std::string> words_out;
        for (const auto& line : split_lines(r.output)) {
            words_out.insert(line);
        }
        return words_out;
    };
    int bad = 0;
    auto expect = [&](const std::string& words, const std::vector<std::string>& wanted) {
        const auto got = complete(words);
        for (const auto& w : wanted) {
            if (got.count(w) == 0) {
                std::cout << "completions/rtcat.bash: \"rtcat " << words
                          << "<TAB>\" does not offer " << w << "\n";
                ++bad;
            }
        }
    };
    expect("rtcat ''", visible_subcommands(*app));
    for (const CLI::App* sub : app->get_subcommands({})) {
        if (!sub->get_name().empty() && !sub->get_group().empty() && !sub->get_disabled()) {
            expect("rtcat " + shell_quote(sub->get_name()) + " --", visible_long_options(*sub));
        }
    }
    return bad;
}

int do_lint_completions(const std::string& bash, const std::string& zsh, const std::string& fish,
                        const std::map<std::string, std::string>& files) {
    if (bash.empty() && zsh.empty() && fish.empty()) {
        std::cout << "SKIP: no shell given\n";
        return kSkip;
    }
    TempDir tmp;
    int bad = 0;
    auto check = [&](const std::string& shell, const std::string& rel, const std::string& flag) {
        if (shell.empty()) {
            std::cout << rel << ": not checked (shell not installed)\n";
            return fs::path();
        }
        const auto path = tmp.put(rel, files.at(rel));
        const auto r = run(shell_quote(shell) + " " + flag + " " + shell_quote(path.string()));
        if (r.status != 0 || !r.output.empty()) {
            std::cout << rel << ": " << shell << " " << flag << " fails (exit " << r.status
                      << "):\n"
                      << r.output;
            ++bad;
        } else {
            std::cout << rel << ": syntax ok\n";
        }
        return path;
    };
    const auto bash_script = check(bash, std::string("completions/") + kProgram + ".bash", "-n");
    check(zsh, std::string("completions/_") + kProgram, "-n");
    check(fish, std::string("completions/") + kProgram + ".fish", "--no-execute");
    if (!bash_script.empty() && bad == 0) {
        bad += bash_smoke_test(bash, bash_script, tmp);
    }
    return bad == 0 ? 0 : 1;
}

} // namespace

int main(int argc, char** argv) {
    CLI::App tool{"Generates rtcat's man pages and shell completions from its command tree.",
                  "rtcat-gendocs"};
    std::string write_dir;
    std::string check_dir;
    std::string print_path;
    bool list = false;
    bool lint_man = false;
    bool lint_completions = false;
    std::string groff;
    std::string bash;
    std::string zsh;
    std::string fish;
    tool.add_option("--write", write_dir, "Write man/ and completions/ under DIR (the repo root)")
        ->type_name("DIR");
    tool.add_option("--check", check_dir, "Fail with a diff when DIR's files are out of date")
        ->type_name("DIR");
    tool.add_flag("--lint-man", lint_man, "Run groff with all warnings on every man page");
    tool.add_flag("--lint-completions", lint_completions, "Syntax-check the completion scripts");
    tool.add_option("--print", print_path, "Print one generated file (e.g. man/rtcat.1)")
        ->type_name("PATH");
    tool.add_flag("--list", list, "List the generated files");
    tool.add_option("--groff", groff, "groff for --lint-man (none: skip, exit 77)")
        ->type_name("FILE");
    tool.add_option("--bash", bash, "bash for --lint-completions")->type_name("FILE");
    tool.add_option("--zsh", zsh, "zsh for --lint-completions (none: not checked)")
        ->type_name("FILE");
    tool.add_option("--fish", fish, "fish for --lint-completions (none: not checked)")
        ->type_name("FILE");
    CLI11_PARSE(tool, argc, argv);

    const int modes = static_cast<int>(!write_dir.empty()) + static_cast<int>(!check_dir.empty()) +
                      static_cast<int>(!print_path.empty()) + static_cast<int>(list) +
                      static_cast<int>(lint_man) + static_cast<int>(lint_completions);
    if (modes != 1) {
        std::cerr << "rtcat-gendocs: give exactly one of --write, --check, --lint-man, "
                     "--lint-completions, --print, --list\n"
                  << tool.help();
        return 2;
    }

    try {
        const auto files = generate();
        if (!write_dir.empty()) {
            return do_write(write_dir, files);
        }
        if (!check_dir.empty()) {
            return do_check(check_dir, files);
        }
        if (lint_man) {
            return do_lint_man(groff, files);
        }
        if (lint_completions) {
            return do_lint_completions(bash, zsh, fish, files);
        }
        if (list) {
            for (const auto& [rel, content] : files) {
                std::cout << rel << "\n";
            }
            return 0;
        }
        const auto it = files.find(print_path);
        if (it == files.end()) {
            std::cerr << "rtcat-gendocs: " << print_path << " is not generated (see --list)\n";
            return 2;
        }
        std::cout << it->second;
        return 0;
    } catch (const rtcat::cli::DocError& e) {
        std::cerr << "rtcat-gendocs: " << e.what() << "\n";
        return 1;
    } catch (const std::exception& e) {
        std::cerr << "rtcat-gendocs: " << e.what() << "\n";
        return 1;
    }
}

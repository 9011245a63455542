// The layering rule of DESIGN.md §1, enforced: core/ (outside core/io) is sans-IO. It includes
// no socket, thread or OS headers, reads no clock and starts no thread; nothing in core/
// includes cli/, and only core/io itself includes core/io/.
//
// The scanner strips comments and string literals first, so prose that names a forbidden call
// does not trip it; include directives are read from the original text.

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

namespace {

struct Violation {
    std::string file;
    int line = 0;
    std::string what;
    std::string text;
};

// Headers that mean sockets, threads, OS time or other process-level I/O.
constexpr std::string_view kForbiddenHeaders[] = {
    "sys/socket.h", "arpa/inet.h", "netdb.h",      "sys/epoll.h",        "poll.h",   "sys/poll.h",
    "sys/select.h", "sys/un.h",    "ifaddrs.h",    "net/if.h",           "unistd.h", "pthread.h",
    "thread",       "mutex",       "shared_mutex", "condition_variable", "future",   "semaphore",
    "latch",        "barrier",     "stop_token",
};
constexpr std::string_view kForbiddenHeaderPrefixes[] = {"netinet/", "linux/"};

// Token sequences matched against code with comments and string literals blanked out; each
// element lists the spellings accepted at that position. (Hand-written rather than std::regex:
// GCC 12's <regex> trips -Wmaybe-uninitialized under ASan + -Werror.)
struct CodePattern {
    std::vector<std::vector<std::string_view>> tokens;
    const char* what;
};
const std::vector<CodePattern>& forbidden_code() {
    static const std::vector<CodePattern> patterns = {
        {{{"system_clock", "steady_clock", "high_resolution_clock", "utc_clock", "tai_clock",
           "gps_clock", "file_clock"},
          {"::"},
          {"now"}},
         "reads a clock"},
        {{{"gettimeofday"}}, "reads a clock"},
        {{{"clock_gettime"}}, "reads a clock"},
        {{{"time"}, {"("}, {"nullptr", "NULL", "0"}, {")"}}, "reads a clock"},
        {{{"this_thread"}}, "uses std::this_thread"},
        {{{"std"}, {"::"}, {"thread", "jthread", "async"}}, "starts a thread"},
        {{{"pthread_create"}}, "starts a thread"},
    };
    return patterns;
}

struct Token {
    std::string_view text;
    int line;
};

bool is_ident(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
}

// Replaces comments and the contents of string/char literals with spaces, keeping newlines
// (so line numbers survive) and the quote characters. Handles raw strings and digit
// separators (1'000).
std::string strip_comments_and_strings(std::string_view s) {
    std::string out(s);
    auto blank = [&](std::size_t i) {
        if (out[i] != '\n')
            out[i] = ' ';
    };
    std::size_t i = 0;
    const std::size_t n = s.size();
    while (i < n) {
        char c = s[i];
        if (c == '/' && i + 1 < n && s[i + 1] == '/') {
            while (i < n && s[i] != '\n') {
                // A backslash-newline continues a line comment.
                if (s[i] == '\\' && i + 1 < n && s[i + 1] == '\n')
                    blank(i++);
                blank(i++);
            }
        } else if (c == '/' && i + 1 < n && s[i + 1] == '*') {
            blank(i++);
            blank(i++);
            while (i < n && !(s[i] == '*' && i + 1 < n && s[i + 1] == '/'))
                blank(i++);
            if (i < n) {
                blank(i++);
                blank(i++);
            }
        } else if (c == 'R' && i + 1 < n && s[i + 1] == '"' &&
                   (i == 0 || !is_ident(s[i - 1]) || s[i - 1] == '8' || s[i - 1] == 'u' ||
                    s[i - 1] == 'U' || s[i - 1] == 'L')) {
            // Raw string R"delim( ... )delim".
            std::size_t open = s.find('(', i + 2);
            if (open == std::string_view::npos) {
                ++i;
                continue;
            }
            std::string close = ")" + std::string(s.substr(i + 2, open - i - 2)) + "\"";
            std::size_t end = s.find(close, open + 1);
            end = end == std::string_view::npos ? n : end + close.size();
            for (std::size_t k = i + 2; k + 1 < end; ++k)
                blank(k);
            i = end;
        } else if (c == '"' || (c == '\'' && (i == 0 || !is_ident(s[i - 1])))) {
            // A quote after an identifier character is a digit separator (1'000'000) or a
            // prefixed literal (u8'x', L'x'); numbers are consumed whole below, so only the
            // prefixed-literal case reaches here with is_ident true, and we treat it as code.
            char q = c;
            ++i;
            while (i < n && s[i] != q && s[i] != '\n') {
                if (s[i] == '\\' && i + 1 < n)
                    blank(i++);
                blank(i++);
            }
            if (i < n && s[i] == q)
                ++i;
        } else if (std::isdigit(static_cast<unsigned char>(c)) && (i == 0 || !is_ident(s[i - 1]))) {
            // A pp-number, including digit separators and exponents with signs.
            ++i;
            while (i < n) {
                char d = s[i];
                if (is_ident(d) || d == '.' || (d == '\'' && i + 1 < n && is_ident(s[i + 1]))) {
                    ++i;
                } else if ((d == '+' || d == '-') && (s[i - 1] == 'e' || s[i - 1] == 'E' ||
                                                      s[i - 1] == 'p' || s[i - 1] == 'P')) {
                    ++i;
                } else {
                    break;
                }
            }
        } else {
            ++i;
        }
    }
    return out;
}

// Identifiers, numbers, "::" and single punctuation characters, with their line numbers.
std::vector<Token> tokenize(std::string_view s) {
    std::vector<Token> out;
    int line = 1;
    std::size_t i = 0;
    while (i < s.size()) {
        char c = s[i];
        if (c == '\n') {
            ++line;
            ++i;
        } else if (std::isspace(static_cast<unsigned char>(c))) {
            ++i;
        } else if (is_ident(c)) {
            std::size_t j = i;
            while (j < s.size() && is_ident(s[j]))
                ++j;
            out.push_back({s.substr(i, j - i), line});
            i = j;
        } else if (c == ':' && i + 1 < s.size() && s[i + 1] == ':') {
            out.push_back({s.substr(i, 2), line});
            i += 2;
        } else {
            out.push_back({s.substr(i, 1), line});
            ++i;
        }
    }
    return out;
}

// The header named by an #include directive, or nullopt when the line is not one.
std::optional<std::string> included_header(std::string_view line) {
    auto skip_ws = [&](std::size_t i) {
        while (i < line.size() && (line[i] == ' ' || line[i] == '\t'))
            ++i;
        return i;
    };
    std::size_t i = skip_ws(0);
    if (i >= line.size() || line[i] != '#')
        return std::nullopt;
    i = skip_ws(i + 1);
    if (line.substr(i, 7) != "include")
        return std::nullopt;
    i = skip_ws(i + 7);
    if (i >= line.size() || (line[i] != '<' && line[i] != '"'))
        return std::nullopt;
    const char close = line[i] == '<' ? '>' : '"';
    const std::size_t end = line.find(close, i + 1);
    if (end == std::string_view::npos)
        return std::nullopt;
    return std::string(line.substr(i + 1, end - i - 1));
}

std::vector<std::string> split_lines(std::string_view s) {
    std::vector<std::string> lines;
    std::size_t start = 0;
    while (start <= s.size()) {
        std::size_t end = s.find('\n', start);
        if (end == std::string_view::npos) {
            if (start < s.size())
                lines.emplace_back(s.substr(start));
            break;
        }
        lines.emplace_back(s.substr(start, end - start));
        start = end + 1;
    }
    return lines;
}

// Scans one source file's text. `path` is relative to the repository root ("core/ice/agent.cpp").
std::vector<Violation> scan_source(std::string_view text, const std::string& path) {
    const bool in_io = path.starts_with("core/io/");
    std::vector<Violation> found;
    const auto raw = split_lines(text);
    const std::string stripped = strip_comments_and_strings(text);
    const auto code = split_lines(stripped);
    auto add = [&](int line, std::string what) {
        const auto idx = static_cast<std::size_t>(line - 1);
        found.push_back({path, line, std::move(what), idx < raw.size() ? raw[idx] : ""});
    };

    for (std::size_t i = 0; i < code.size() && i < raw.size(); ++i) {
        const int line = static_cast<int>(i) + 1;
        // An include that survives stripping is real (not inside a comment); the header name
        // comes from the original text (stripping blanks "quoted" names).
        if (!included_header(code[i]))
            continue;
        const auto header = included_header(raw[i]);
        if (!header)
            continue;
        if (header->starts_with("cli/"))
            add(line, "core/ includes cli/ (dependencies point down only)");
        if (in_io)
            continue;
        if (header->starts_with("core/io/"))
            add(line, "sans-IO core includes core/io/");
        for (auto h : kForbiddenHeaders)
            if (*header == h)
                add(line, "includes <" + *header + "> (socket/thread/OS header)");
        for (auto p : kForbiddenHeaderPrefixes)
            if (header->starts_with(p))
                add(line, "includes <" + *header + "> (socket/thread/OS header)");
    }
    if (in_io)
        return found;

    const auto tokens = tokenize(stripped);
    for (std::size_t t = 0; t < tokens.size(); ++t) {
        for (const auto& pattern : forbidden_code()) {
            if (t + pattern.tokens.size() > tokens.size())
                continue;
            bool match = true;
            for (std::size_t k = 0; k < pattern.tokens.size() && match; ++k) {
                const auto& alts = pattern.tokens[k];
                match = std::find(alts.begin(), alts.end(), tokens[t + k].text) != alts.end();
            }
            if (match)
                add(tokens[t].line, pattern.what);
        }
    }
    std::stable_sort(found.begin(), found.end(),
                     [](const Violation& a, const Violation& b) { return a.line < b.line; });
    return found;
}

std::string describe(const std::vector<Violation>& v) {
    std::ostringstream os;
    for (const auto& x : v)
        os << x.file << ":" << x.line << ": " << x.what << "\n    " << x.text << "\n";
    return os.str();
}

bool is_source(const std::filesystem::path& p) {
    static constexpr std::string_view kExts[] = {".hpp", ".cpp", ".h",   ".cc", ".hh",
                                                 ".ipp", ".inc", ".cxx", ".hxx"};
    const auto ext = p.extension().string();
    return std::any_of(std::begin(kExts), std::end(kExts), [&](auto e) { return ext == e; });
}

TEST(Layering, CoreIsSansIo) {
    namespace fs = std::filesystem;
    const fs::path root(RTCAT_SOURCE_DIR);
    ASSERT_TRUE(fs::is_directory(root / "core")) << "RTCAT_SOURCE_DIR=" << RTCAT_SOURCE_DIR;
    std::vector<fs::path> files;
    for (const auto& e : fs::recursive_directory_iterator(root / "core"))
        if (e.is_regular_file() && is_source(e.path()))
            files.push_back(e.path());
    std::sort(files.begin(), files.end());
    ASSERT_FALSE(files.empty());

    std::vector<Violation> all;
    for (const auto& f : files) {
        std::ifstream in(f, std::ios::binary);
        ASSERT_TRUE(in) << f;
        std::stringstream ss;
        ss << in.rdbuf();
        auto v = scan_source(ss.str(), fs::relative(f, root).generic_string());
        all.insert(all.end(), v.begin(), v.end());
    }
    EXPECT_TRUE(all.empty()) << "layering violations (DESIGN.md §1: core/ is sans-IO):\n"
                             << describe(all);
    RecordProperty("files_scanned", static_cast<int>(files.size()));
}

// --- the scanner catches what it should, and only that ------------------------------------

TEST(Layering, ScannerCatchesPlantedViolations) {
    const std::string planted = "#include <vector>\n"                          // 1 ok
                                "#include <thread>\n"                          // 2
                                "#  include <netinet/in.h>\n"                  // 3
                                "#include \"cli/output.hpp\"\n"                // 4
                                "#include \"core/io/udp_socket.hpp\"\n"        // 5
                                "auto t = std::chrono::steady_clock::now();\n" // 6
                                "gettimeofday(&tv, nullptr);\n"                // 7
                                "auto s = time(nullptr);\n"                    // 8
                                "std::this_thread::sleep_for(d);\n"            // 9
                                "std::thread worker([] {});\n"                 // 10
                                "#include<sys/socket.h>\n"                     // 11
                                "clock_gettime(CLOCK_MONOTONIC, &ts);\n";      // 12
    auto v = scan_source(planted, "core/ice/agent.cpp");
    const std::vector<int> expected_lines = {2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    std::vector<int> lines;
    for (const auto& x : v)
        lines.push_back(x.line);
    lines.erase(std::unique(lines.begin(), lines.end()), lines.end());
    EXPECT_EQ(lines, expected_lines) << describe(v);
    EXPECT_EQ(v.front().file, "core/ice/agent.cpp");
    EXPECT_NE(describe(v).find("core/ice/agent.cpp:2: includes <thread>"), std::string::npos)
        << describe(v);
}

TEST(Layering, ScannerIgnoresCommentsStringsAndTypes) {
    const std::string clean = "// never call steady_clock::now() here; #include <thread>\n"
                              "/* gettimeofday is read by libssl,\n"
                              "   not by us: std::this_thread */\n"
                              "const char* k = \"system_clock::now\";\n"
                              "auto r = R\"x(time(nullptr) \"quoted\" )x\";\n"
                              "std::chrono::steady_clock::time_point tp;\n"
                              "int runtime(int); auto y = runtime(0);\n"
                              "constexpr int big = 1'000'000; char q = '\\'';\n"
                              "#include \"core/base/time.hpp\"\n"
                              "// #include <mutex>\n";
    auto v = scan_source(clean, "core/base/x.cpp");
    EXPECT_TRUE(v.empty()) << describe(v);
}

TEST(Layering, ScannerFollowsTokensAcrossLines) {
    const std::string split = "int x = 0;\n"
                              "auto t = std::chrono::steady_clock\n"
                              "             ::now();\n"
                              "auto u = std :: async(f);\n";
    auto v = scan_source(split, "core/rtp/x.cpp");
    ASSERT_EQ(v.size(), 2u) << describe(v);
    EXPECT_EQ(v[0].line, 2);
    EXPECT_EQ(v[0].what, "reads a clock");
    EXPECT_EQ(v[1].line, 4);
    EXPECT_EQ(v[1].what, "starts a thread");
}

TEST(Layering, IoMayUseTheOsButNotTheCli) {
    const std::string io = "#include <sys/socket.h>\n"
                           "#include <thread>\n"
                           "#include \"core/io/clock.hpp\"\n"
                           "auto t = std::chrono::steady_clock::now();\n"
                           "#include \"cli/main.hpp\"\n";
    auto v = scan_source(io, "core/io/driver.cpp");
    ASSERT_EQ(v.size(), 1u) << describe(v);
    EXPECT_EQ(v[0].line, 5);
}

TEST(Layering, StripperKeepsLineNumbers) {
    const std::string s = "a /* x\ny\nz */ b\n\"s\\\"t\"\n// c\nd";
    auto out = strip_comments_and_strings(s);
    ASSERT_EQ(out.size(), s.size());
    EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), std::count(s.begin(), s.end(), '\n'));
    EXPECT_EQ(out.find('x'), std::string::npos);
    EXPECT_EQ(out.find('t'), std::string::npos);
    EXPECT_NE(out.find('b'), std::string::npos);
    EXPECT_NE(out.find('d'), std::string::npos);
}

} // namespace

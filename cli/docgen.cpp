// Man pages and shell completions from the CLI11 tree. Three stages: the CLI11 tree is read once
// into a neutral model (CommandDoc/OptionDoc, where every CLI11 quirk is handled), then each
// output format is rendered from the model, so the man page and the three shells always agree.

#include "cli/docgen.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdint>
#include <set>
#include <sstream>
#include <utility>

#include <CLI/CLI.hpp>

namespace rtcat::cli {
namespace {

// ===== small string helpers ===================================================================

bool starts_with(std::string_view s, std::string_view prefix) {
    return s.starts_with(prefix);
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) {
        s.remove_prefix(1);
    }
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
        s.remove_suffix(1);
    }
    return s;
}

std::string upper(std::string_view s) {
    std::string out(s);
    for (char& c : out) {
        c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
    return out;
}

bool is_alnum(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0;
}

std::vector<std::string> split_lines(std::string_view text) {
    std::vector<std::string> lines;
    std::size_t start = 0;
    while (start <= text.size()) {
        auto end = text.find('\n', start);
        if (end == std::string_view::npos) {
            lines.emplace_back(text.substr(start));
            break;
        }
        lines.emplace_back(text.substr(start, end - start));
        start = end + 1;
    }
    return lines;
}

std::string join(const std::vector<std::string>& parts, std::string_view sep) {
    std::string out;
    for (std::size_t i = 0; i < parts.size(); ++i) {
        if (i != 0) {
            out += sep;
        }
        out += parts[i];
    }
    return out;
}

std::size_t indent_of(std::string_view line) {
    std::size_t n = 0;
    while (n < line.size() && line[n] == ' ') {
        ++n;
    }
    return n;
}

// Splits at `sep` outside (), [] and {} so a check description like "{a:b,c}" stays whole.
std::vector<std::string> split_top_level(std::string_view s, char sep) {
    std::vector<std::string> parts;
    std::string current;
    int depth = 0;
    for (char c : s) {
        if (c == '(' || c == '[' || c == '{') {
            ++depth;
        } else if ((c == ')' || c == ']' || c == '}') && depth > 0) {
            --depth;
        }
        if (c == sep && depth == 0) {
            parts.push_back(std::move(current));
            current.clear();
        } else {
            current += c;
        }
    }
    parts.push_back(std::move(current));
    return parts;
}

// The first line of a description, for completion menus, which show one line per entry.
std::string first_line(std::string_view s) {
    s = trim(s);
    auto nl = s.find('\n');
    return std::string(trim(s.substr(0, nl)));
}

// ===== roff escaping ==========================================================================

// Decodes one UTF-8 sequence at s[i]; returns the code point (U+FFFD for invalid input) and
// advances i past it.
std::uint32_t next_code_point(std::string_view s, std::size_t& i) {
    auto byte = [&](std::size_t k) { return static_cast<std::uint8_t>(s[k]); };
    const std::uint8_t b0 = byte(i);
    int len = 0;
    std::uint32_t cp = 0;
    if (b0 >= 0xC2 && b0 <= 0xDF) {
        len = 2;
        cp = b0 & 0x1Fu;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
        len = 3;
        cp = b0 & 0x0Fu;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
        len = 4;
        cp = b0 & 0x07u;
    } else {
        ++i;
        return 0xFFFD;
    }
    if (i + static_cast<std::size_t>(len) > s.size()) {
        ++i;
        return 0xFFFD;
    }
    for (int k = 1; k < len; ++k) {
        const std::uint8_t b = byte(i + static_cast<std::size_t>(k));
        if ((b & 0xC0u) != 0x80u) {
            ++i;
            return 0xFFFD;
        }
        cp = (cp << 6) | (b & 0x3Fu);
    }
    i += static_cast<std::size_t>(len);
    return cp;
}

// Escapes text for roff. `code` marks text the user types or copies (options, examples): there
// quotes must stay ASCII (\(aq, \(ga) instead of groff's typographic quotes. Hyphens are always
// \- so copied options and commands keep an ASCII '-'; ^ and ~ are always the ASCII glyphs
// (groff would print modifier letters). Non-ASCII becomes \[uXXXX] so the source stays ASCII
// and groff needs no input encoding.
std::string escape_text(std::string_view s, bool code) {
    std::string out;
    out.reserve(s.size() + s.size() / 8);
    for (std::size_t i = 0; i < s.size();) {
        const char c = s[i];
        if (static_cast<unsigned char>(c) >= 0x80) {
            const std::uint32_t cp = next_code_point(s, i);
            std::ostringstream hex;
            hex << std::uppercase << std::hex << cp;
            std::string digits = hex.str();
            if (digits.size() < 4) {
                digits.insert(0, 4 - digits.size(), '0');
            }
            out += "\\[u" + digits + "]";
            continue;
        }
        switch (c) {
        case '\\':
            out += "\\e";
            break;
        case '-':
            out += "\\-";
            break;
        case '^':
            out += "\\(ha";
            break;
        case '~':
            out += "\\(ti";
            break;
        case '\'':
            out += code ? "\\(aq" : "'";
            break;
        case '`':
            out += "\\(ga";
            break;
        case '\t':
            out += ' ';
            break;
        default:
            out += c;
        }
        ++i;
    }
    return out;
}

// A text line in roff source: a leading '.' or '\'' would start a request, leading spaces force
// a break in filled text.
std::string text_line(std::string_view escaped) {
    escaped = trim(escaped);
    if (!escaped.empty() && (escaped.front() == '.' || escaped.front() == '\'')) {
        return "\\&" + std::string(escaped);
    }
    return std::string(escaped);
}

// An argument of .TH/.SH/.SS: as text, with double quotes (argument delimiters) spelled out.
std::string macro_arg(std::string_view s) {
    std::string out;
    for (char c : escape_text(s, false)) {
        if (c == '"') {
            out += "\\(dq";
        } else {
            out += c;
        }
    }
    return out;
}

// Code spans: \% keeps groff from hyphenating a command, option or page name at a line end
// (someone would type the hyphen).
std::string bold(std::string_view s) {
    return "\\fB\\%" + escape_text(s, true) + "\\fR";
}
std::string italic(std::string_view s) {
    return "\\fI\\%" + escape_text(s, true) + "\\fR";
}

// ===== inline markup ==========================================================================

bool is_placeholder_char(char c) {
    return is_alnum(c) || c == '_' || c == '-' || c == '.';
}
bool is_page_name_char(char c) {
    return is_alnum(c) || c == '_' || c == '-' || c == '.' || c == '+';
}

// Length of a "name(N)" man page reference starting at s[i] (0 when there is none). Only at a
// word start, so "f(1)" inside "printf(1)" is not cut in half.
std::size_t page_ref_length(std::string_view s, std::size_t i) {
    if (i > 0 && is_page_name_char(s[i - 1])) {
        return 0;
    }
    std::size_t j = i;
    while (j < s.size() && is_page_name_char(s[j])) {
        ++j;
    }
    if (j == i || !is_alnum(s[i]) || j + 2 >= s.size() || s[j] != '(') {
        return 0;
    }
    std::size_t k = j + 1;
    if (s[k] < '1' || s[k] > '9') {
        return 0;
    }
    ++k;
    while (k < s.size() && std::islower(static_cast<unsigned char>(s[k])) != 0) {
        ++k;
    }
    if (k >= s.size() || s[k] != ')') {
        return 0;
    }
    ++k;
    if (k < s.size() && is_alnum(s[k])) {
        return 0;
    }
    return k - i;
}

enum class InlineTarget { Roff, Plain };

// Renders the inline markup of cli/manual.hpp: `code`, <placeholder>, name(N), \ escapes.
std::string render_inline(std::string_view s, InlineTarget target) {
    const bool roff = target == InlineTarget::Roff;
    std::string out;
    std::string plain; // pending literal text, escaped in one go
    auto flush = [&] {
        out += roff ? escape_text(plain, false) : plain;
        plain.clear();
    };
    for (std::size_t i = 0; i < s.size();) {
        const char c = s[i];
        if (c == '\\' && i + 1 < s.size() &&
            (s[i + 1] == '`' || s[i + 1] == '<' || s[i + 1] == '\\')) {
            plain += s[i + 1];
            i += 2;
            continue;
        }
        if (c == '`') {
            // Find the closing backtick, honouring \` and \\ inside the span.
            std::string code;
            std::size_t j = i + 1;
            bool closed = false;
            while (j < s.size()) {
                if (s[j] == '\\' && j + 1 < s.size() && (s[j + 1] == '`' || s[j + 1] == '\\')) {
                    code += s[j + 1];
                    j += 2;
                } else if (s[j] == '`') {
                    closed = true;
                    break;
                } else {
                    code += s[j++];
                }
            }
            if (closed && !code.empty()) {
                flush();
                out += roff ? bold(code) : code;
                i = j + 1;
                continue;
            }
        }
        if (c == '<' && i + 1 < s.size() && std::isalpha(static_cast<unsigned char>(s[i + 1]))) {
            std::size_t j = i + 1;
            while (j < s.size() && is_placeholder_char(s[j])) {
                ++j;
            }
            if (j < s.size() && s[j] == '>') {
                flush();
                const std::string_view name = s.substr(i + 1, j - i - 1);
                out += roff ? italic(name) : "<" + std::string(name) + ">";
                i = j + 1;
                continue;
            }
        }
        if (std::size_t len = page_ref_length(s, i); len != 0) {
            flush();
            const std::string_view ref = s.substr(i, len);
            const auto paren = ref.find('(');
            out += roff ? bold(ref.substr(0, paren)) + std::string(ref.substr(paren))
                        : std::string(ref);
            i += len;
            continue;
        }
        plain += c;
        ++i;
    }
    flush();
    return out;
}

// Filled text (several source lines allowed) as roff text lines.
std::string roff_fill(std::string_view text) {
    std::string out;
    for (const auto& line : split_lines(text)) {
        const auto t = trim(line);
        if (t.empty()) {
            continue;
        }
        out += text_line(render_inline(t, InlineTarget::Roff));
        out += '\n';
    }
    return out;
}

// One-line plain text for completion menus: markup removed, whitespace collapsed.
std::string plain_summary(std::string_view text) {
    std::string out;
    for (char c : render_inline(first_line(text), InlineTarget::Plain)) {
        if (c == '\t') {
            c = ' ';
        }
        if (c == ' ' && (out.empty() || out.back() == ' ')) {
            continue;
        }
        out += c;
    }
    while (!out.empty() && out.back() == ' ') {
        out.pop_back();
    }
    return out;
}

// ===== block markup ===========================================================================

enum class BlockKind { Heading, Paragraph, Literal, Bullets, Tagged };

struct Block {
    BlockKind kind = BlockKind::Paragraph;
    std::vector<std::string> lines;                         // Heading, Paragraph, Literal
    std::vector<std::pair<std::string, std::string>> items; // Bullets (.second), Tagged
};

std::vector<std::string> expand_tabs(std::string_view text) {
    std::vector<std::string> lines;
    for (const auto& raw : split_lines(text)) {
        std::string line;
        for (char c : raw) {
            if (c == '\t') {
                line.append(8 - line.size() % 8, ' ');
            } else if (c != '\r') {
                line += c;
            }
        }
        while (!line.empty() && line.back() == ' ') {
            line.pop_back();
        }
        lines.push_back(std::move(line));
    }
    return lines;
}

void classify(std::vector<std::string> lines, std::vector<Block>& blocks) {
    if (lines.empty()) {
        return;
    }
    const std::string& first = lines.front();
    Block block;
    if (starts_with(first, "## ")) {
        block.kind = BlockKind::Heading;
        block.lines.emplace_back(trim(std::string_view(first).substr(3)));
        blocks.push_back(std::move(block));
        lines.erase(lines.begin());
        classify(std::move(lines), blocks);
        return;
    }
    if (indent_of(first) >= 2) {
        block.kind = BlockKind::Literal;
        for (const auto& line : lines) {
            block.lines.push_back(line.substr(std::min<std::size_t>(2, indent_of(line))));
        }
        // Blank-line separated literal blocks are one example with its blank lines.
        if (!blocks.empty() && blocks.back().kind == BlockKind::Literal) {
            auto& prev = blocks.back().lines;
            prev.emplace_back();
            prev.insert(prev.end(), block.lines.begin(), block.lines.end());
            return;
        }
    } else if (starts_with(first, "- ")) {
        block.kind = BlockKind::Bullets;
        for (const auto& line : lines) {
            if (starts_with(line, "- ") || block.items.empty()) {
                block.items.emplace_back(
                    "", trim(std::string_view(line).substr(starts_with(line, "- ") ? 2 : 0)));
            } else {
                block.items.back().second += "\n" + std::string(trim(line));
            }
        }
    } else if (lines.size() > 1 && indent_of(lines[1]) >= 4) {
        block.kind = BlockKind::Tagged;
        for (const auto& line : lines) {
            if (indent_of(line) == 0 || block.items.empty()) {
                block.items.emplace_back(std::string(trim(line)), "");
            } else {
                auto& def = block.items.back().second;
                def += (def.empty() ? "" : "\n") + std::string(trim(line));
            }
        }
    } else {
        block.kind = BlockKind::Paragraph;
        for (const auto& line : lines) {
            block.lines.emplace_back(trim(line));
        }
    }
    blocks.push_back(std::move(block));
}

std::vector<Block> parse_markup(std::string_view body) {
    auto lines = expand_tabs(body);
    std::size_t common = std::string::npos;
    for (const auto& line : lines) {
        if (!line.empty()) {
            common = std::min(common, indent_of(line));
        }
    }
    std::vector<Block> blocks;
    if (common == std::string::npos) {
        return blocks; // all blank
    }
    std::vector<std::string> current;
    for (auto& line : lines) {
        if (line.empty()) {
            classify(std::move(current), blocks);
            current.clear();
        } else {
            current.push_back(line.substr(common));
        }
    }
    classify(std::move(current), blocks);
    return blocks;
}

std::string render_blocks(const std::vector<Block>& blocks) {
    std::string out;
    for (const auto& block : blocks) {
        switch (block.kind) {
        case BlockKind::Heading:
            out += ".SS " + macro_arg(block.lines.front()) + "\n";
            break;
        case BlockKind::Paragraph:
            out += ".PP\n" + roff_fill(join(block.lines, "\n"));
            break;
        case BlockKind::Literal:
            // man-pages(7): examples in .EX/.EE, indented; \& keeps blank lines as lines.
            out += ".PP\n.RS 4\n.EX\n";
            for (const auto& line : block.lines) {
                out += line.empty() ? std::string("\\&") : text_line(escape_text(line, true));
                out += '\n';
            }
            out += ".EE\n.RE\n";
            break;
        case BlockKind::Bullets:
            for (const auto& item : block.items) {
                out += ".IP \\(bu 2\n" + roff_fill(item.second);
            }
            break;
        case BlockKind::Tagged:
            for (const auto& [term, def] : block.items) {
                out += ".TP\n" + roff_fill(term) + roff_fill(def);
            }
            break;
        }
    }
    return out;
}

// ===== the model ==============================================================================

enum class ValueKind { None, Text, File, Dir, Choice };

struct OptionDoc {
    std::vector<std::string> short_names; // without '-'
    std::vector<std::string> long_names;  // without "--"
    std::string positional;               // the positional name, if it is one
    std::string metavar;
    std::string description;
    std::vector<std::string> notes; // sentences in markup: default, allowed values, ...
    std::vector<std::string> choices;
    ValueKind kind = ValueKind::None;
    bool optional_value = false; // expected(0, 1): "--opt[=VALUE]"
    bool several_values = false; // takes more than one value per occurrence
    bool repeatable = false;     // may be given more than once
    bool required = false;
    bool is_help = false;
    std::string section;

    bool takes_value() const { return kind != ValueKind::None; }
    bool is_named() const { return !short_names.empty() || !long_names.empty(); }
};

struct OptionSection {
    std::string name;
    std::string description;
};

struct CommandDoc {
    std::vector<std::string> path; // words after the program; empty for the program itself
    std::vector<std::string> aliases;
    std::string description;
    std::vector<OptionDoc> options; // named options, help included
    std::vector<OptionDoc> positionals;
    std::vector<OptionSection> sections;
    std::vector<OptionDoc> inherited; // ancestors' options accepted after the name
    bool fallthrough = false;
    bool subcommand_required = false;
    std::vector<CommandDoc> subcommands;

    std::string key() const { return join(path, " "); }
    const std::string& name() const { return path.back(); }
};

// Words of a type name, split at anything but letters and digits ("SDP_FILE" -> SDP, FILE).
ValueKind kind_from_type_name(std::string_view type) {
    static const std::set<std::string, std::less<>> kFileWords = {
        "FILE", "FILES", "FILENAME", "FILENAMES", "PATH", "PATHS", "FIFO"};
    static const std::set<std::string, std::less<>> kDirWords = {"DIR", "DIRS", "DIRECTORY",
                                                                 "DIRECTORIES"};
    std::string word;
    ValueKind kind = ValueKind::Text;
    auto finish = [&] {
        const std::string w = upper(word);
        if (kDirWords.count(w) != 0) {
            kind = ValueKind::Dir;
        } else if (kFileWords.count(w) != 0 && kind != ValueKind::Dir) {
            kind = ValueKind::File;
        }
        word.clear();
    };
    for (char c : type) {
        if (is_alnum(c)) {
            word += c;
        } else {
            finish();
        }
    }
    finish();
    return kind;
}

std::string code_span(std::string_view value) {
    std::string out = "`";
    for (char c : value) {
        if (c == '`' || c == '\\') {
            out += '\\';
        }
        out += c;
    }
    return out + "`";
}

std::string code_list(const std::vector<std::string>& values) {
    std::vector<std::string> spans;
    spans.reserve(values.size());
    for (const auto& v : values) {
        spans.push_back(code_span(v));
    }
    return join(spans, ", ");
}

// Items of a "{a,b}" or "{a->1,b->2}" description; `mapping` tells which form it was.
std::vector<std::string> set_items(std::string_view braced, bool& mapping) {
    std::vector<std::string> keys;
    mapping = false;
    const auto inner = braced.substr(1, braced.size() - 2);
    if (inner.empty()) {
        return keys;
    }
    for (auto& item : split_top_level(inner, ',')) {
        const auto arrow = item.find("->");
        if (arrow != std::string::npos) {
            mapping = true;
            item.resize(arrow);
        }
        keys.push_back(std::move(item));
    }
    return keys;
}

// "INT in [1 - 100]" (Range) or "INT bounded to [1 - 100]" (Bound): the two limits.
bool parse_interval(std::string_view desc, std::string_view word, std::string& lo,
                    std::string& hi) {
    const auto at = desc.find(word);
    if (at == std::string_view::npos || desc.back() != ']') {
        return false;
    }
    const auto inner = desc.substr(at + word.size(), desc.size() - at - word.size() - 1);
    // The separator is " - " (with spaces), so negative limits ("-5 - 5") still split right.
    const auto sep = inner.find(" - ");
    if (sep == std::string_view::npos) {
        return false;
    }
    lo = trim(inner.substr(0, sep));
    hi = trim(inner.substr(sep + 3));
    return !lo.empty() && !hi.empty();
}

// Turns one check/transform description into notes, choices and a value kind.
void apply_check(std::string_view desc, OptionDoc& doc, ValueKind& check_kind) {
    std::string lo;
    std::string hi;
    bool mapping = false;
    if (desc.size() >= 2 && desc.front() == '{' && desc.back() == '}') {
        auto keys = set_items(desc, mapping);
        // CLI::Transformer passes unknown values through: its keys are suggestions only.
        doc.notes.push_back((mapping ? "Known values: " : "Allowed values: ") + code_list(keys) +
                            ".");
        doc.choices = std::move(keys);
    } else if (starts_with(desc, "value in {") && desc.find("} OR {") != std::string_view::npos) {
        // CLI::CheckedTransformer: "value in {a->1,b->2} OR {1,2}"; the names are what users type.
        const auto close = desc.find("} OR {");
        auto keys = set_items(desc.substr(9, close - 9 + 1), mapping);
        doc.notes.push_back("Allowed values: " + code_list(keys) + ".");
        doc.choices = std::move(keys);
    } else if (parse_interval(desc, " in [", lo, hi)) {
        doc.notes.push_back("Range: " + code_span(lo) + " to " + code_span(hi) + ".");
    } else if (parse_interval(desc, " bounded to [", lo, hi)) {
        doc.notes.push_back("Values outside " + code_span(lo) + " to " + code_span(hi) +
                            " are clamped.");
    } else if (desc == "POSITIVE") {
        doc.notes.emplace_back("Must be positive.");
    } else if (desc == "NONNEGATIVE") {
        doc.notes.emplace_back("Must not be negative.");
    } else if (desc == "FILE") {
        check_kind = ValueKind::File;
        doc.notes.emplace_back("The file must exist.");
    } else if (desc == "DIR") {
        check_kind = ValueKind::Dir;
        doc.notes.emplace_back("The directory must exist.");
    } else if (desc == "PATH(existing)") {
        check_kind = ValueKind::File;
        doc.notes.emplace_back("The path must exist.");
    } else if (desc == "PATH(non-existing)") {
        check_kind = ValueKind::File;
        doc.notes.emplace_back("The path must not exist yet.");
    } else {
        doc.notes.push_back("Format: " + code_span(desc) + ".");
    }
}

std::vector<std::string> option_names(const std::set<CLI::Option*>& options) {
    // std::set<Option*> is ordered by address: sort by name for reproducible output.
    std::vector<std::string> names;
    for (const CLI::Option* o : options) {
        if (!o->get_group().empty()) {
            names.push_back(o->get_name());
        }
    }
    std::sort(names.begin(), names.end());
    return names;
}

OptionDoc describe_option(const CLI::Option& opt) {
    OptionDoc doc;
    doc.short_names = opt.get_snames();
    doc.long_names = opt.get_lnames();
    if (opt.get_positional()) {
        doc.positional = opt.get_name(true, false);
    }
    doc.description = opt.get_description();
    doc.required = opt.get_required();
    const auto policy = opt.get_multi_option_policy();
    const bool collects =
        policy == CLI::MultiOptionPolicy::TakeAll || policy == CLI::MultiOptionPolicy::Join;
    const bool flag = opt.get_expected_max() == 0;

    if (!flag) {
        // get_type_name() is "TYPE:check1:check2" (checks without a description are left out).
        // It is the only const view of the checks CLI11 2.1 offers.
        auto parts = split_top_level(opt.get_type_name(), ':');
        const std::string base = parts.front();
        ValueKind check_kind = ValueKind::None;
        for (std::size_t i = 1; i < parts.size(); ++i) {
            apply_check(parts[i], doc, check_kind);
        }
        if (!doc.choices.empty()) {
            doc.kind = ValueKind::Choice;
        } else if (auto by_name = kind_from_type_name(base); by_name != ValueKind::Text) {
            doc.kind = by_name;
        } else if (check_kind != ValueKind::None) {
            doc.kind = check_kind;
        } else {
            doc.kind = ValueKind::Text;
        }
        if (!opt.get_option_text().empty()) {
            doc.metavar = trim(opt.get_option_text());
        } else if ((base.empty() || base == "TEXT") && doc.kind == ValueKind::File) {
            doc.metavar = "FILE";
        } else if ((base.empty() || base == "TEXT") && doc.kind == ValueKind::Dir) {
            doc.metavar = "DIR";
        } else {
            doc.metavar = base.empty() ? "VALUE" : base;
        }
        doc.optional_value = opt.get_expected_min() == 0;
        // allow_extra_args(false): one value per occurrence, repeated (--bind A --bind B).
        doc.several_values = opt.get_expected_max() > 1 && opt.get_allow_extra_args();
        if (!opt.get_default_str().empty()) {
            doc.notes.insert(doc.notes.begin(),
                             "Default: " + code_span(opt.get_default_str()) + ".");
        }
    }
    doc.repeatable = collects || doc.several_values;
    if (!doc.positional.empty() && doc.several_values) {
        // A vector positional takes all remaining words; nothing to repeat.
        doc.repeatable = false;
    } else if (doc.several_values) {
        doc.notes.emplace_back("Takes one or more values.");
    } else if (collects && !flag) {
        doc.notes.emplace_back("May be given more than once.");
    } else if (collects && flag) {
        doc.notes.emplace_back("May be given more than once (counted).");
    }
    if (!opt.get_envname().empty()) {
        doc.notes.push_back("Environment: " + code_span(opt.get_envname()) + ".");
    }
    if (doc.required && doc.positional.empty()) {
        doc.notes.emplace_back("Required.");
    }
    if (auto needs = option_names(opt.get_needs()); !needs.empty()) {
        std::vector<std::string> spans;
        for (const auto& n : needs) {
            spans.push_back(code_span(n));
        }
        doc.notes.push_back("Requires " + join(spans, ", ") + ".");
    }
    if (auto excludes = option_names(opt.get_excludes()); !excludes.empty()) {
        std::vector<std::string> spans;
        for (const auto& n : excludes) {
            spans.push_back(code_span(n));
        }
        doc.notes.push_back("Cannot be combined with " + join(spans, ", ") + ".");
    }
    return doc;
}

void note_section(CommandDoc& cmd, const std::string& name, const std::string& description) {
    auto it = std::find_if(cmd.sections.begin(), cmd.sections.end(),
                           [&](const OptionSection& s) { return s.name == name; });
    if (it == cmd.sections.end()) {
        cmd.sections.push_back({name, description});
    } else if (it->description.empty()) {
        it->description = description;
    }
}

// Options of `app` and of its option groups (nameless subcommands, possibly nested); an option
// group's options are listed under the group's name.
void collect_options(const CLI::App& app, const std::string& group, CommandDoc& cmd) {
    for (const CLI::Option* opt : app.get_options()) {
        if (opt->get_group().empty()) {
            continue; // hidden
        }
        const bool is_help = opt == app.get_help_ptr() || opt == app.get_help_all_ptr();
        if (is_help && !group.empty()) {
            continue; // an option group's copy of the help flag; the command has the real one
        }
        OptionDoc doc = describe_option(*opt);
        doc.is_help = is_help;
        doc.section = group.empty() ? opt->get_group() : group;
        note_section(cmd, doc.section, "");
        if (!doc.positional.empty()) {
            cmd.positionals.push_back(doc);
        }
        if (doc.is_named()) {
            cmd.options.push_back(std::move(doc));
        }
    }
    for (const CLI::App* sub : app.get_subcommands({})) {
        if (!sub->get_name().empty() || sub->get_group().empty() || sub->get_disabled()) {
            continue;
        }
        note_section(cmd, sub->get_group(), sub->get_description());
        collect_options(*sub, sub->get_group(), cmd);
    }
}

bool shares_a_name(const OptionDoc& a, const OptionDoc& b) {
    auto overlap = [](const std::vector<std::string>& x, const std::vector<std::string>& y) {
        return std::any_of(x.begin(), x.end(), [&](const std::string& n) {
            return std::find(y.begin(), y.end(), n) != y.end();
        });
    };
    return overlap(a.short_names, b.short_names) || overlap(a.long_names, b.long_names);
}

CommandDoc describe_command(const CLI::App& app, std::vector<std::string> path,
                            const CommandDoc* parent) {
    CommandDoc cmd;
    cmd.path = std::move(path);
    cmd.aliases = app.get_aliases();
    cmd.description = app.get_description();
    cmd.fallthrough = parent != nullptr && app.get_fallthrough();
    cmd.subcommand_required = app.get_require_subcommand_min() > 0;
    collect_options(app, "", cmd);
    if (cmd.fallthrough) {
        // The parent's own options plus what it inherits itself, minus help (ours shadows it)
        // and anything our options shadow.
        std::vector<OptionDoc> candidates = parent->options;
        candidates.insert(candidates.end(), parent->inherited.begin(), parent->inherited.end());
        for (auto& opt : candidates) {
            const bool shadowed = opt.is_help || std::any_of(cmd.options.begin(), cmd.options.end(),
                                                             [&](const OptionDoc& o) {
                                                                 return shares_a_name(o, opt);
                                                             });
            if (!shadowed) {
                cmd.inherited.push_back(std::move(opt));
            }
        }
    }
    for (const CLI::App* sub : app.get_subcommands({})) {
        if (sub->get_name().empty() || sub->get_group().empty() || sub->get_disabled()) {
            continue; // option groups (handled above), hidden and disabled commands
        }
        auto sub_path = cmd.path;
        sub_path.push_back(sub->get_name());
        cmd.subcommands.push_back(describe_command(*sub, std::move(sub_path), &cmd));
    }
    return cmd;
}

void for_each_command(const CommandDoc& cmd, const auto& fn) {
    fn(cmd);
    for (const auto& sub : cmd.subcommands) {
        for_each_command(sub, fn);
    }
}

// ===== man pages ==============================================================================

std::string page_name(const std::string& program, const CommandDoc& cmd) {
    std::string name = program;
    for (const auto& word : cmd.path) {
        name += "-" + word;
    }
    return name;
}

std::string page_ref(const std::string& name) {
    return bold(name) + "(1)";
}

// man-pages(7) order of the sections that follow OPTIONS. Titles not listed here (OUTPUT, JSON
// OUTPUT, ...) go before all of them.
constexpr std::array kLateSections = {
    "EXIT STATUS", "RETURN VALUE",   "ERRORS",    "ENVIRONMENT", "FILES",
    "ATTRIBUTES",  "VERSIONS",       "STANDARDS", "HISTORY",     "NOTES",
    "CAVEATS",     "BUGS",           "EXAMPLES",  "EXAMPLE",     "AUTHORS",
    "AUTHOR",      "REPORTING BUGS", "COPYRIGHT", "SEE ALSO",
};
constexpr std::array kGeneratedSections = {"NAME",      "SYNOPSIS", "COMMANDS",
                                           "ARGUMENTS", "OPTIONS",  "GLOBAL OPTIONS"};

int late_rank(const std::string& title) {
    for (std::size_t i = 0; i < kLateSections.size(); ++i) {
        if (title == kLateSections[i]) {
            return static_cast<int>(i);
        }
    }
    return -1;
}

// The manual's sections, upper-cased, checked and in man-pages order.
std::vector<ManSection> ordered_sections(const ManualPage& page) {
    std::vector<ManSection> sections;
    std::set<std::string> seen;
    for (const auto& s : page.sections) {
        ManSection section{upper(trim(s.title)), s.body};
        if (section.title.empty()) {
            throw DocError("manual page '" + page.name + "': a section has no title");
        }
        for (const char* reserved : kGeneratedSections) {
            if (section.title == reserved) {
                throw DocError("manual page '" + page.name + "': section " + section.title +
                               " is generated from the command tree; describe options in "
                               "CLI11 and write prose in DESCRIPTION or a section of its own");
            }
        }
        if (!seen.insert(section.title).second) {
            throw DocError("manual page '" + page.name + "': section " + section.title +
                           " appears twice");
        }
        sections.push_back(std::move(section));
    }
    std::stable_sort(sections.begin(), sections.end(),
                     [](const ManSection& a, const ManSection& b) {
                         return late_rank(a.title) < late_rank(b.title);
                     });
    return sections;
}

// Command words in bold ("stun-probe", "pcap decode").
std::string command_line(const std::vector<std::string>& path) {
    std::vector<std::string> words;
    for (const auto& word : path) {
        words.push_back(bold(word));
    }
    return join(words, " ");
}

std::string option_heading(const OptionDoc& opt) {
    std::vector<std::string> names;
    for (const auto& s : opt.short_names) {
        names.push_back(bold("-" + s));
    }
    for (const auto& l : opt.long_names) {
        names.push_back(bold("--" + l));
    }
    std::string out = join(names, ", ");
    if (opt.takes_value()) {
        const std::string meta = italic(opt.metavar);
        out += opt.optional_value ? "[=" + meta + "]" : " " + meta;
        if (opt.several_values) {
            out += " \\&...";
        }
    }
    return out;
}

// CLI11 descriptions are phrases for --help columns; man pages want sentences.
std::string as_sentence(std::string_view text) {
    std::string out{trim(text)};
    if (!out.empty() && std::string_view(".!?:").find(out.back()) == std::string_view::npos) {
        out += '.';
    }
    return out;
}

// The description as a sentence, then the notes (default, allowed values, ...).
std::string option_body(const OptionDoc& opt) {
    std::string text = as_sentence(opt.description);
    for (const auto& note : opt.notes) {
        text += "\n" + note;
    }
    return roff_fill(text);
}

std::string render_options(const CommandDoc& cmd, const std::vector<OptionDoc>& options) {
    std::string out;
    // One untitled block for CLI11's default group, then a subsection per other group.
    std::vector<const OptionSection*> order;
    for (const auto& s : cmd.sections) {
        if (s.name == "Options") {
            order.insert(order.begin(), &s);
        } else {
            order.push_back(&s);
        }
    }
    for (const OptionSection* section : order) {
        std::string entries;
        for (const auto& opt : options) {
            if (opt.section == section->name) {
                entries += ".TP\n" + text_line(option_heading(opt)) + "\n" + option_body(opt);
            }
        }
        if (entries.empty()) {
            continue;
        }
        if (section->name != "Options") {
            out += ".SS " + macro_arg(section->name) + "\n";
            if (!trim(section->description).empty()) {
                out += ".PP\n" + roff_fill(section->description);
            }
        }
        out += entries;
    }
    return out;
}

// Options of a command inherited from its ancestors carry the ancestors' sections; list them
// flat (they are documented in full on the ancestor's page).
std::string render_flat_options(const std::vector<OptionDoc>& options) {
    std::string out;
    for (const auto& opt : options) {
        out += ".TP\n" + text_line(option_heading(opt)) + "\n" + option_body(opt);
    }
    return out;
}

std::string positional_usage(const OptionDoc& pos) {
    std::string out = italic(pos.positional);
    if (pos.several_values) {
        out += " \\&...";
    }
    return pos.required ? out : "[" + out + "]";
}

std::string summary_of(const CommandDoc& cmd, const ManualPage* manual) {
    std::string summary = manual != nullptr ? std::string(trim(manual->summary)) : std::string();
    if (summary.empty()) {
        summary = first_line(cmd.description);
        // First sentence, final period dropped (man-pages(7) NAME convention).
        if (auto dot = summary.find(". "); dot != std::string::npos) {
            summary.resize(dot);
        }
        while (!summary.empty() && summary.back() == '.') {
            summary.pop_back();
        }
    }
    return summary;
}

struct ManContext {
    const DocOptions& options;
    const std::string& program;
    const CommandDoc& root;
    const std::vector<ManualPage>& manuals;
};

const ManualPage* manual_for(const ManContext& ctx, const CommandDoc& cmd) {
    const std::string key = cmd.path.empty() ? ctx.program : cmd.key();
    for (const auto& page : ctx.manuals) {
        if (page.name == key) {
            return &page;
        }
    }
    return nullptr;
}

std::string render_man_page(const ManContext& ctx, const CommandDoc& cmd) {
    const ManualPage* manual = manual_for(ctx, cmd);
    const std::vector<ManSection> extra =
        manual != nullptr ? ordered_sections(*manual) : std::vector<ManSection>{};
    auto find_extra = [&](std::string_view title) -> const ManSection* {
        for (const auto& s : extra) {
            if (s.title == title) {
                return &s;
            }
        }
        return nullptr;
    };
    const bool is_root = cmd.path.empty();
    const std::string name = page_name(ctx.program, cmd);
    const bool has_globals = std::any_of(ctx.root.options.begin(), ctx.root.options.end(),
                                         [](const OptionDoc& o) { return !o.is_help; });

    std::string out;
    out += ".\\\" Generated by rtcat-gendocs from the CLI11 command tree and cli/manual.hpp\n";
    out += ".\\\" pages. Do not edit: change the code, then run scripts/gen-docs.sh.\n";
    out += ".TH \"" + macro_arg(upper(name)) + "\" 1 \"" + macro_arg(ctx.options.date) + "\" \"" +
           macro_arg(trim(ctx.program + " " + ctx.options.version)) + "\" \"" +
           macro_arg(ctx.options.manual_title) + "\"\n";

    out += ".SH NAME\n";
    const std::string summary = summary_of(cmd, manual);
    if (summary.empty()) {
        // whatis(1)/apropos(1) index the NAME line; a page without a summary is broken.
        throw DocError("command '" + (is_root ? ctx.program : cmd.key()) +
                       "' has no description: pass one to CLI11 or set ManualPage::summary");
    }
    out +=
        text_line(escape_text(name, true) + " \\- " + render_inline(summary, InlineTarget::Roff)) +
        "\n";

    out += ".SH SYNOPSIS\n";
    std::vector<std::string> synopsis;
    synopsis.push_back(bold(ctx.program));
    if (!is_root && has_globals) {
        synopsis.emplace_back("[\\fIglobal\\ options\\fR]");
    }
    for (const auto& word : cmd.path) {
        synopsis.push_back(bold(word));
    }
    if (!cmd.options.empty()) {
        synopsis.emplace_back("[\\fIoptions\\fR]");
    }
    for (const auto& opt : cmd.options) {
        if (opt.required) {
            const std::string& n =
                opt.long_names.empty() ? opt.short_names.front() : opt.long_names.front();
            synopsis.push_back(bold((opt.long_names.empty() ? "-" : "--") + n) +
                               (opt.takes_value() ? " " + italic(opt.metavar) : ""));
        }
    }
    if (!cmd.subcommands.empty()) {
        synopsis.emplace_back(cmd.subcommand_required ? "\\fIcommand\\fR" : "[\\fIcommand\\fR]");
        synopsis.emplace_back("[\\fIcommand\\ options\\fR]");
    }
    for (const auto& pos : cmd.positionals) {
        synopsis.push_back(positional_usage(pos));
    }
    for (const auto& piece : synopsis) {
        out += text_line(piece) + "\n";
    }

    if (const ManSection* desc = find_extra("DESCRIPTION")) {
        out += ".SH DESCRIPTION\n" + markup_to_roff(desc->body);
    } else if (!trim(cmd.description).empty()) {
        out += ".SH DESCRIPTION\n.PP\n" + roff_fill(as_sentence(cmd.description));
    }

    if (!cmd.subcommands.empty()) {
        out += ".SH COMMANDS\n";
        for (const auto& sub : cmd.subcommands) {
            std::vector<std::string> names{bold(sub.name())};
            for (const auto& alias : sub.aliases) {
                names.push_back(bold(alias));
            }
            out += ".TP\n" + text_line(join(names, ", ")) + "\n" +
                   roff_fill(as_sentence(sub.description)) +
                   text_line("See " + page_ref(page_name(ctx.program, sub)) + ".") + "\n";
        }
    }

    if (!cmd.positionals.empty()) {
        out += ".SH ARGUMENTS\n";
        for (const auto& pos : cmd.positionals) {
            std::string heading = italic(pos.positional);
            if (pos.several_values) {
                heading += " \\&...";
            }
            out += ".TP\n" + text_line(heading) + "\n" + option_body(pos);
        }
    }

    if (!cmd.options.empty()) {
        out += ".SH OPTIONS\n" + render_options(cmd, cmd.options);
    }

    // The page of the command this one belongs to: rtcat(1) or rtcat-<parent>(1).
    std::string parent_name = ctx.program;
    for (std::size_t i = 0; i + 1 < cmd.path.size(); ++i) {
        parent_name += "-" + cmd.path[i];
    }
    if (!is_root && !cmd.inherited.empty()) {
        out += ".SH GLOBAL OPTIONS\n.PP\n" +
               text_line("These options of " + page_ref(parent_name) +
                         " are also accepted after the command name.") +
               "\n" + render_flat_options(cmd.inherited);
    } else if (!is_root && !cmd.fallthrough && has_globals) {
        out += ".SH GLOBAL OPTIONS\n.PP\n" +
               text_line("The global options described in " + page_ref(ctx.program) +
                         " go before the command name:") +
               "\n.PP\n" +
               text_line(bold(ctx.program) + " [\\fIglobal\\ options\\fR] " +
                         command_line(cmd.path) + " \\&...") +
               "\n";
    }

    std::vector<std::string> ref_pages; // generated SEE ALSO entries (section 1 pages)
    if (!is_root) {
        ref_pages.push_back(parent_name);
    }
    for (const auto& sub : cmd.subcommands) {
        ref_pages.push_back(page_name(ctx.program, sub));
    }

    for (const auto& section : extra) {
        if (section.title == "DESCRIPTION" || section.title == "SEE ALSO") {
            continue;
        }
        out += ".SH " + macro_arg(section.title) + "\n" + markup_to_roff(section.body);
    }

    const ManSection* see_also = find_extra("SEE ALSO");
    if (!ref_pages.empty() || see_also != nullptr) {
        out += ".SH SEE ALSO\n";
        std::vector<Block> blocks;
        if (see_also != nullptr) {
            blocks = parse_markup(see_also->body);
        }
        // One list: the generated references, then the items of a one-paragraph manual SEE
        // ALSO ("rtcat(1), tshark(1), RFC 8489") that are not among them already. A longer
        // manual SEE ALSO follows as its own paragraphs.
        std::vector<std::string> items;
        for (const auto& page : ref_pages) {
            items.push_back(page_ref(page));
        }
        if (blocks.size() == 1 && blocks.front().kind == BlockKind::Paragraph) {
            for (const auto& item : split_top_level(join(blocks.front().lines, " "), ',')) {
                const auto text = trim(item);
                const bool duplicate =
                    std::any_of(ref_pages.begin(), ref_pages.end(),
                                [&](const std::string& page) { return text == page + "(1)"; });
                if (!text.empty() && !duplicate) {
                    items.push_back(render_inline(text, InlineTarget::Roff));
                }
            }
            blocks.clear();
        }
        if (!items.empty()) {
            out += ".PP\n";
            for (std::size_t i = 0; i < items.size(); ++i) {
                out += text_line(items[i]) + (i + 1 < items.size() ? ",\n" : "\n");
            }
        }
        out += render_blocks(blocks);
    }
    return out;
}

// ===== shells: shared =========================================================================

// A shell single-quoted word ('it'\''s').
std::string sq(std::string_view s) {
    std::string out = "'";
    for (char c : s) {
        if (c == '\'') {
            out += "'\\''";
        } else {
            out += c;
        }
    }
    return out + "'";
}

std::string identifier(std::string_view s) {
    std::string out;
    for (char c : s) {
        out += is_alnum(c) ? c : '_';
    }
    return out;
}

std::vector<std::string> all_names(const OptionDoc& opt) {
    std::vector<std::string> names;
    for (const auto& s : opt.short_names) {
        names.push_back("-" + s);
    }
    for (const auto& l : opt.long_names) {
        names.push_back("--" + l);
    }
    return names;
}

// Named options a command accepts: its own and the inherited ones.
std::vector<const OptionDoc*> accepted_options(const CommandDoc& cmd) {
    std::vector<const OptionDoc*> out;
    for (const auto& o : cmd.options) {
        out.push_back(&o);
    }
    for (const auto& o : cmd.inherited) {
        out.push_back(&o);
    }
    return out;
}

// ===== bash ===================================================================================

// How a value completes in the bash script: "" none, @file, @dir, @text, or the words.
std::string bash_value_kind(const OptionDoc& opt) {
    switch (opt.kind) {
    case ValueKind::None:
        return "";
    case ValueKind::Text:
        return "@text";
    case ValueKind::File:
        return "@file";
    case ValueKind::Dir:
        return "@dir";
    case ValueKind::Choice:
        return join(opt.choices, " ");
    }
    return "";
}

std::string bash_completion(const std::string& program, const CommandDoc& root) {
    const std::string fn = "_" + identifier(program);
    const std::string helper = "__" + identifier(program);
    std::string subcmd_cases;
    std::string subcmd_lists;
    std::string option_lists;
    std::string value_cases;
    std::string positional_cases;
    for_each_command(root, [&](const CommandDoc& cmd) {
        const std::string key = cmd.key();
        if (!cmd.subcommands.empty()) {
            std::vector<std::string> names;
            for (const auto& sub : cmd.subcommands) {
                std::vector<std::string> patterns{sq(key + "/" + sub.name())};
                for (const auto& alias : sub.aliases) {
                    patterns.push_back(sq(key + "/" + alias));
                }
                subcmd_cases +=
                    "    " + join(patterns, " | ") + ") REPLY=" + sq(sub.name()) + " ;;\n";
                names.push_back(sub.name());
            }
            subcmd_lists += "    " + sq(key) + ") REPLY=" + sq(join(names, " ")) + " ;;\n";
        }
        std::vector<std::string> names;
        for (const OptionDoc* opt : accepted_options(cmd)) {
            for (const auto& n : all_names(*opt)) {
                names.push_back(n);
            }
            if (opt->takes_value()) {
                std::vector<std::string> patterns;
                for (const auto& n : all_names(*opt)) {
                    patterns.push_back(sq(key + "/" + n));
                }
                value_cases += "    " + join(patterns, " | ") +
                               ") REPLY=" + sq(bash_value_kind(*opt)) + " ;;\n";
            }
        }
        option_lists += "    " + sq(key) + ") REPLY=" + sq(join(names, " ")) + " ;;\n";
        if (!cmd.positionals.empty()) {
            positional_cases += "    " + sq(key) + ")\n";
            int index = 0;
            for (const auto& pos : cmd.positionals) {
                const std::string kind = bash_value_kind(pos);
                if (pos.several_values) {
                    positional_cases += "        REPLY=" + sq(kind) + "\n        return\n";
                    break;
                }
                ++index;
                positional_cases += "        if (($2 < " + std::to_string(index) +
                                    ")); then REPLY=" + sq(kind) + "; return; fi\n";
            }
            positional_cases += "        ;;\n";
        }
    });

    std::string out;
    out += "# bash completion for " + program + "                        -*- shell-script -*-\n";
    out += "# Generated by rtcat-gendocs from the CLI11 command tree. Do not edit: change the\n";
    out += "# code, then run scripts/gen-docs.sh.\n";
    out += "#\n";
    out += "# Command paths are the subcommand words after the program, space separated (\"\" is\n";
    out += "# the program itself). The helpers answer in REPLY to avoid subshells.\n\n";

    out += "# Canonical name of subcommand $2 of command path $1, or \"\".\n";
    out += helper + "_subcommand() {\n    case \"$1/$2\" in\n" + subcmd_cases +
           "    *) REPLY='' ;;\n    esac\n}\n\n";
    out += "# Subcommand names of command path $1.\n";
    out += helper + "_subcommands() {\n    case \"$1\" in\n" + subcmd_lists +
           "    *) REPLY='' ;;\n    esac\n}\n\n";
    out += "# Option names accepted by command path $1.\n";
    out += helper + "_options() {\n    case \"$1\" in\n" + option_lists +
           "    *) REPLY='' ;;\n    esac\n}\n\n";
    out += "# How the value of option $2 of command path $1 completes: \"\" (the option takes no\n";
    out += "# value), @file, @dir, @text (free text: nothing to offer) or the words to offer.\n";
    out += helper + "_value() {\n    case \"$1/$2\" in\n" + value_cases +
           "    *) REPLY='' ;;\n    esac\n}\n\n";
    out += "# How positional argument $2 (counting from 0) of command path $1 completes.\n";
    out += helper + "_positional() {\n    case \"$1\" in\n" + positional_cases + "    esac\n" +
           "    REPLY=''\n}\n\n";
    out += "# Adds the candidates of value kind $1 that start with $2 to COMPREPLY.\n";
    out += helper + R"__(_add() {
    local line
    case "$1" in
    '' | @text) return ;;
    @file | @dir)
        # Quote special characters and mark directories, as for any file name.
        compopt -o filenames 2>/dev/null
        while IFS= read -r line; do COMPREPLY+=("$line"); done < <(compgen "-${1:1:1}" -- "$2")
        ;;
    *) while IFS= read -r line; do COMPREPLY+=("$line"); done < <(compgen -W "$1" -- "$2") ;;
    esac
}

)__";
    out += fn + "() {\n";
    out += R"__(    local cur="${COMP_WORDS[COMP_CWORD]}" prev='' word path='' opt='' REPLY
    local -i i=1 npos=0 only_args=0
    COMPREPLY=()
    # Walk the words before the cursor: the command path, and how many positionals were given.
    # "--opt=value" arrives as three words ("--opt" "=" "value": '=' is in COMP_WORDBREAKS).
    while ((i < COMP_CWORD)); do
        word="${COMP_WORDS[i]}"
        if ((only_args == 0)) && [[ $word == -- ]]; then
            only_args=1
        elif ((only_args == 0)) && [[ $word == -?* ]]; then
            if [[ ${COMP_WORDS[i + 1]-} == = ]]; then
                i+=2
            else
)__";
    out += "                " + helper + "_value \"$path\" \"$word\"\n";
    out += R"__(                [[ -n $REPLY ]] && i+=1
            fi
        else
            REPLY=''
)__";
    out += "            ((only_args == 0 && npos == 0)) && " + helper +
           "_subcommand \"$path\" \"$word\"\n";
    out += R"__(            if [[ -n $REPLY ]]; then
                path="${path:+$path }$REPLY"
            else
                npos+=1
            fi
        fi
        i+=1
    done
    ((COMP_CWORD > 0)) && prev="${COMP_WORDS[COMP_CWORD - 1]}"
    if [[ $cur == = ]]; then
        opt=$prev
        cur=''
    elif [[ $prev == = ]] && ((COMP_CWORD > 1)); then
        opt="${COMP_WORDS[COMP_CWORD - 2]}"
    elif [[ $prev == -?* ]]; then
        opt=$prev
    fi
    if [[ -n $opt ]] && ((only_args == 0)); then
)__";
    out += "        " + helper + "_value \"$path\" \"$opt\"\n";
    out += R"__(        if [[ -n $REPLY ]]; then
)__";
    out += "            " + helper + "_add \"$REPLY\" \"$cur\"\n";
    out += R"__(            return 0
        fi
    fi
    if ((only_args == 0)) && [[ $cur == -* ]]; then
)__";
    out += "        " + helper + "_options \"$path\"\n";
    out += "        " + helper + "_add \"$REPLY\" \"$cur\"\n";
    out += R"__(        return 0
    fi
    if ((only_args == 0 && npos == 0)); then
)__";
    out += "        " + helper + "_subcommands \"$path\"\n";
    out += "        " + helper + "_add \"$REPLY\" \"$cur\"\n";
    out += "    fi\n";
    out += "    " + helper + "_positional \"$path\" \"$npos\"\n";
    out += R"__(    if [[ -n $REPLY ]]; then
)__";
    out += "        " + helper + "_add \"$REPLY\" \"$cur\"\n";
    out += R"__(    elif ((${#COMPREPLY[@]} == 0)) && [[ -z $cur ]] && ((only_args == 0)); then
        # Nothing positional to offer: show the options rather than nothing.
)__";
    out += "        " + helper + "_options \"$path\"\n";
    out += "        " + helper + "_add \"$REPLY\" \"$cur\"\n";
    out += "    fi\n    return 0\n}\n\n";
    out += "complete -F " + fn + " " + program + "\n";
    return out;
}

// ===== zsh ====================================================================================

// Text inside an _arguments "[description]".
std::string zsh_description(std::string_view s) {
    std::string out;
    for (char c : plain_summary(s)) {
        if (c == '[' || c == ']' || c == '\\') {
            out += '\\';
        }
        out += c;
    }
    return out;
}

// A message or value between _arguments colons.
std::string zsh_colon_field(std::string_view s) {
    std::string out;
    for (char c : s) {
        if (c == ':' || c == '\\') {
            out += '\\';
        }
        out += c;
    }
    return out;
}

std::string zsh_action(const OptionDoc& opt) {
    switch (opt.kind) {
    case ValueKind::File:
        return "_files";
    case ValueKind::Dir:
        return "_files -/";
    case ValueKind::Choice: {
        std::vector<std::string> values;
        for (const auto& v : opt.choices) {
            std::string e;
            for (char c : v) {
                if (c == ' ' || c == '(' || c == ')' || c == '\\' || c == ':' || c == '\'' ||
                    c == '"' || c == '$' || c == '`') {
                    e += '\\';
                }
                e += c;
            }
            values.push_back(e);
        }
        return "(" + join(values, " ") + ")";
    }
    case ValueKind::None:
    case ValueKind::Text:
        break;
    }
    return " "; // free text: show the message, complete nothing
}

std::vector<std::string> zsh_option_specs(const OptionDoc& opt) {
    std::vector<std::string> specs;
    const auto names = all_names(opt);
    std::string exclusion;
    if (opt.is_help) {
        exclusion = "(- *)"; // nothing else makes sense after --help
    } else if (!opt.repeatable && names.size() > 1) {
        exclusion = "(" + join(names, " ") + ")";
    }
    const std::string repeat = opt.repeatable && !opt.is_help ? "*" : "";
    const std::string desc = "[" + zsh_description(opt.description) + "]";
    for (const auto& n : names) {
        std::string spec = exclusion + repeat + n;
        if (opt.takes_value()) {
            // -x+: "-x5" or "-x 5"; --xx=: "--xx=5" or "--xx 5" (both accepted by CLI11).
            spec += starts_with(n, "--") ? "=" : "+";
        }
        spec += desc;
        if (opt.takes_value()) {
            spec += (opt.optional_value ? "::" : ":") + zsh_colon_field(opt.metavar) + ":" +
                    zsh_action(opt);
        }
        specs.push_back(sq(spec));
    }
    return specs;
}

std::string zsh_function_name(const std::string& program, const CommandDoc& cmd) {
    std::string name = "_" + identifier(program);
    for (const auto& word : cmd.path) {
        name += "__" + identifier(word);
    }
    return name;
}

void zsh_command_function(const std::string& program, const CommandDoc& cmd, std::string& out) {
    const std::string fn = zsh_function_name(program, cmd);
    std::vector<std::string> specs;
    for (const OptionDoc* opt : accepted_options(cmd)) {
        for (auto& s : zsh_option_specs(*opt)) {
            specs.push_back(std::move(s));
        }
    }
    if (!cmd.subcommands.empty()) {
        specs.push_back(sq("1: :" + fn + "_commands"));
        specs.emplace_back("'*:: :->args'");
    } else {
        int index = 1;
        for (const auto& pos : cmd.positionals) {
            const std::string message = zsh_colon_field(pos.positional);
            if (pos.several_values) {
                specs.push_back(sq("*:" + message + ":" + zsh_action(pos)));
                break;
            }
            specs.push_back(sq(std::to_string(index++) + (pos.required ? ":" : "::") + message +
                               ":" + zsh_action(pos)));
        }
    }

    out += fn + "() {\n";
    if (!cmd.subcommands.empty()) {
        out += "    local curcontext=\"$curcontext\" state state_descr line ret=1\n";
        out += "    typeset -A opt_args\n";
        out += "    _arguments -C -s -S";
    } else {
        out += "    _arguments -s -S";
    }
    for (const auto& s : specs) {
        out += " \\\n        " + s;
    }
    if (!cmd.subcommands.empty()) {
        out += " && ret=0\n";
        out += "    case $state in\n    (args)\n";
        out += "        curcontext=\"${curcontext%:*:*}:" + page_name(program, cmd) +
               "-$words[1]:\"\n";
        out += "        case $words[1] in\n";
        for (const auto& sub : cmd.subcommands) {
            std::vector<std::string> patterns{sq(sub.name())};
            for (const auto& alias : sub.aliases) {
                patterns.push_back(sq(alias));
            }
            out += "        (" + join(patterns, "|") + ") " + zsh_function_name(program, sub) +
                   " && ret=0 ;;\n";
        }
        out += "        esac\n        ;;\n    esac\n    return ret\n";
    } else {
        out += "\n";
    }
    out += "}\n\n";

    if (!cmd.subcommands.empty()) {
        out += fn + "_commands() {\n    local -a commands\n    commands=(\n";
        for (const auto& sub : cmd.subcommands) {
            std::vector<std::string> names{sub.name()};
            names.insert(names.end(), sub.aliases.begin(), sub.aliases.end());
            for (const auto& n : names) {
                out += "        " + sq(zsh_colon_field(n) + ":" + plain_summary(sub.description)) +
                       "\n";
            }
        }
        const std::string what = cmd.path.empty() ? program : page_name(program, cmd);
        out +=
            "    )\n    _describe -t commands " + sq(what + " command") + " commands \"$@\"\n}\n\n";
        for (const auto& sub : cmd.subcommands) {
            zsh_command_function(program, sub, out);
        }
    }
}

std::string zsh_completion(const std::string& program, const CommandDoc& root) {
    const std::string fn = zsh_function_name(program, root);
    std::string out = "#compdef " + program + "\n";
    out += "# zsh completion for " + program + ". Generated by rtcat-gendocs from the CLI11\n";
    out += "# command tree. Do not edit: change the code, then run scripts/gen-docs.sh.\n\n";
    zsh_command_function(program, root, out);
    // Autoloaded from $fpath the file body is the function; sourced, it registers itself.
    out += "if [[ $funcstack[1] == " + fn + " ]]; then\n    " + fn + " \"$@\"\nelse\n    compdef " +
           fn + " " + program + "\nfi\n";
    return out;
}

// ===== fish ===================================================================================

std::string fish_quote(std::string_view s) {
    std::string out = "'";
    for (char c : s) {
        if (c == '\'' || c == '\\') {
            out += '\\';
        }
        out += c;
    }
    return out + "'";
}

std::string fish_seen(const CommandDoc& cmd) {
    std::vector<std::string> names{cmd.name()};
    names.insert(names.end(), cmd.aliases.begin(), cmd.aliases.end());
    return "__fish_seen_subcommand_from " + join(names, " ");
}

std::string fish_children(const CommandDoc& cmd) {
    std::vector<std::string> names;
    for (const auto& sub : cmd.subcommands) {
        names.push_back(sub.name());
        names.insert(names.end(), sub.aliases.begin(), sub.aliases.end());
    }
    return join(names, " ");
}

// The condition under which words of `cmd` (its options, its subcommands) are offered.
std::string fish_condition(const std::vector<const CommandDoc*>& chain) {
    const CommandDoc& cmd = *chain.back();
    std::vector<std::string> parts;
    if (chain.size() == 1) {
        if (!cmd.subcommands.empty()) {
            parts.emplace_back("__fish_use_subcommand");
        }
    } else {
        for (std::size_t i = 1; i < chain.size(); ++i) {
            parts.push_back(fish_seen(*chain[i]));
        }
        if (!cmd.subcommands.empty()) {
            parts.push_back("not __fish_seen_subcommand_from " + fish_children(cmd));
        }
    }
    return join(parts, "; and ");
}

std::string fish_value_flags(const OptionDoc& opt) {
    switch (opt.kind) {
    case ValueKind::None:
        return "";
    case ValueKind::Text:
        return opt.optional_value ? "" : " -x";
    case ValueKind::File:
        return " -r -F";
    case ValueKind::Dir:
        return " -x -a " + fish_quote("(__fish_complete_directories (commandline -ct))");
    case ValueKind::Choice:
        return " -x -a " + fish_quote(join(opt.choices, " "));
    }
    return "";
}

void fish_command(const std::string& program, std::vector<const CommandDoc*>& chain,
                  std::string& out) {
    const CommandDoc& cmd = *chain.back();
    const std::string cond = fish_condition(chain);
    const std::string prefix =
        "complete -c " + program + (cond.empty() ? "" : " -n " + fish_quote(cond));
    out += "\n# " + program + (cmd.path.empty() ? "" : " " + cmd.key()) + "\n";
    for (const OptionDoc* opt : accepted_options(cmd)) {
        std::string line = prefix;
        for (const auto& s : opt->short_names) {
            line += " -s " + s;
        }
        for (const auto& l : opt->long_names) {
            line += " -l " + l;
        }
        line += fish_value_flags(*opt);
        if (auto d = plain_summary(opt->description); !d.empty()) {
            line += " -d " + fish_quote(d);
        }
        out += line + "\n";
    }
    for (const auto& sub : cmd.subcommands) {
        out += prefix + " -a " + fish_quote(sub.name());
        if (auto d = plain_summary(sub.description); !d.empty()) {
            out += " -d " + fish_quote(d);
        }
        out += "\n";
    }
    if (cmd.subcommands.empty()) {
        for (const auto& pos : cmd.positionals) {
            std::string flags;
            if (pos.kind == ValueKind::File) {
                flags = " -F";
            } else if (pos.kind == ValueKind::Dir) {
                flags = " -a " + fish_quote("(__fish_complete_directories (commandline -ct))");
            } else if (pos.kind == ValueKind::Choice) {
                flags = " -a " + fish_quote(join(pos.choices, " "));
            } else {
                continue;
            }
            out += prefix + flags;
            if (auto d = plain_summary(pos.description); !d.empty()) {
                out += " -d " + fish_quote(d);
            }
            out += "\n";
        }
    }
    for (const auto& sub : cmd.subcommands) {
        chain.push_back(&sub);
        fish_command(program, chain, out);
        chain.pop_back();
    }
}

std::string fish_completion(const std::string& program, const CommandDoc& root) {
    std::string out = "# fish completion for " + program +
                      ". Generated by rtcat-gendocs from the CLI11 command\n"
                      "# tree. Do not edit: change the code, then run scripts/gen-docs.sh.\n\n";
    out += "# No file names unless an option or argument takes one.\n";
    out += "complete -c " + program + " -f\n";
    std::vector<const CommandDoc*> chain{&root};
    fish_command(program, chain, out);
    return out;
}

} // namespace

// ===== public =================================================================================

std::string roff_escape(std::string_view text) {
    std::string out;
    const auto lines = split_lines(text);
    for (std::size_t i = 0; i < lines.size(); ++i) {
        if (i != 0) {
            out += '\n';
        }
        out += text_line(escape_text(lines[i], false));
    }
    return out;
}

std::string markup_to_roff(std::string_view body) {
    return render_blocks(parse_markup(body));
}

bool is_generated_doc_path(std::string_view relative_path, std::string_view program) {
    if (relative_path.starts_with("man/")) {
        const auto file = relative_path.substr(4);
        if (file.find('/') != std::string_view::npos || !file.starts_with(program)) {
            return false;
        }
        const auto rest = file.substr(program.size());
        // "<program>.N" or "<program>-<anything>.N", N a man section digit.
        return (rest.starts_with(".") || rest.starts_with("-")) && rest.size() >= 2 &&
               rest[rest.size() - 2] == '.' && rest.back() >= '1' && rest.back() <= '9';
    }
    if (relative_path.starts_with("completions/")) {
        const auto file = relative_path.substr(12);
        if (file.find('/') != std::string_view::npos) {
            return false;
        }
        return file == "_" + std::string(program) ||
               (file.starts_with(program) && file.substr(program.size()).starts_with("."));
    }
    return false;
}

std::map<std::string, std::string> generate_docs(const CLI::App& app, const DocOptions& options) {
    const std::string program = !options.program.empty() ? options.program : app.get_name();
    if (program.empty()) {
        throw DocError("no program name: set DocOptions::program or name the root CLI::App");
    }
    const CommandDoc root = describe_command(app, {}, nullptr);
    const std::vector<ManualPage>& pages = options.manuals ? *options.manuals : manuals();

    // Every manual must describe a command that exists: a renamed command must not silently
    // lose its prose.
    std::set<std::string> keys{program};
    for_each_command(root, [&](const CommandDoc& cmd) {
        if (!cmd.path.empty()) {
            keys.insert(cmd.key());
        }
    });
    for (const auto& page : pages) {
        if (keys.count(page.name) == 0) {
            std::vector<std::string> known(keys.begin(), keys.end());
            throw DocError("manual page '" + page.name +
                           "' matches no command; known: " + join(known, ", "));
        }
    }

    std::map<std::string, std::string> files;
    const ManContext ctx{options, program, root, pages};
    for_each_command(root, [&](const CommandDoc& cmd) {
        files["man/" + page_name(program, cmd) + ".1"] = render_man_page(ctx, cmd);
    });
    files["completions/" + program + ".bash"] = bash_completion(program, root);
    files["completions/_" + program] = zsh_completion(program, root);
    files["completions/" + program + ".fish"] = fish_completion(program, root);
    return files;
}

} // namespace rtcat::cli

#pragma once

// The prose of the manual pages: what CLI11's option tree cannot hold (long descriptions, output
// formats, exit status, examples). Each command file registers its page next to the code that adds
// its subcommand; cli/docgen.cpp merges it with the option tree into man/*.1. Completions never
// use it. Header-only so command files need neither CLI11 nor docgen to describe themselves.
//
// Registering a page
// ------------------
//     void add_stun_probe_command(CLI::App& app, AppContext& ctx) {
//         auto* sub = app.add_subcommand("stun-probe", "Ask a STUN server for our public address");
//         ...
//         register_manual({
//             .name = "stun-probe",
//             .summary = "ask a STUN server for the public address",
//             .sections = {
//                 {"DESCRIPTION", R"(
//                     Sends a STUN Binding request to <server> and prints the reflexive
//                     address. See rtcat(1) for the global options.
//                 )"},
//                 {"EXAMPLES", R"(
//                     Probe Google's server over UDP:
//
//                       rtcat stun-probe stun.l.google.com:19302
//                 )"},
//             },
//         });
//     }
//
// `name` is "rtcat" (the program name) for the top-level page rtcat(1), otherwise the command
// path after the program, words separated by one space: "stun-probe", or "pcap decode" for a
// nested command (page rtcat-pcap-decode(1)). A page whose name matches no command in the tree
// is an error at generation time, so a renamed command cannot silently lose its manual.
//
// register_manual() replaces an earlier page of the same name, so building the command tree
// twice (tests, the docs tool) is harmless. It is not thread-safe: register while building the
// tree, before any thread starts. Registering from the function that adds the subcommand (not
// from a static initializer) matters: in a static library an object file that nothing
// references is dropped by the linker, and its static initializers with it.
//
// Sections
// --------
// Titles are upper case by man-pages(7) convention (lower case is upper-cased for you). The
// generator writes NAME, SYNOPSIS, COMMANDS, ARGUMENTS, OPTIONS and GLOBAL OPTIONS itself; a
// manual section with one of those titles is an error. Two titles are merged instead:
//   DESCRIPTION  replaces the generated one (which is the CLI11 description of the command);
//   SEE ALSO     continues the generated cross references (parent and subcommand pages): a
//                one-paragraph body is read as a comma-separated list whose items join the
//                generated ones (repeats of those dropped); a longer body follows the list.
// Other sections keep their relative order, but are placed where man-pages(7) puts them: titles
// it does not know (e.g. OUTPUT, JSON OUTPUT) right after the options, then the standard ones
// in its order: EXIT STATUS, ENVIRONMENT, FILES, NOTES, BUGS, EXAMPLES, ..., SEE ALSO.
//
// Body markup (deliberately small; reads well as plain text too)
// --------------------------------------------------------------
// The body is dedented first (the common leading whitespace of its non-blank lines is removed,
// tabs count as 8-column stops) and leading/trailing blank lines are dropped, so indented raw
// string literals work as shown above. (So a body made only of an indented example loses its
// indentation: start such a section with a line of prose, as EXAMPLES above does.) Then it is
// split into blocks at blank lines; the first line of a block decides its kind:
//
//   "## Title"        a subsection heading (.SS); the heading must be the block's first line,
//                     further lines of the block are read as a new block.
//   "  text"          (two or more spaces) a literal block: an example or command line, printed
//                     verbatim in a fixed-width font, indented, with 2 spaces of indentation
//                     removed. No inline markup. Literal blocks separated only by blank lines
//                     are one block with the blank lines kept.
//   "- text"          a bullet list: every line starting with "- " begins an item, other lines
//                     continue the current item.
//   "TERM" followed   a tagged list (like this one): every unindented line is a term, the
//   by "    text"     lines indented by 4 or more spaces after it are its definition. Good for
//                     exit codes, JSON fields, event names.
//   anything else     a paragraph: lines are joined and refilled by man.
//
// Inline markup (paragraphs, bullets, terms and definitions; also applied to the CLI11
// descriptions of commands and options, where it reads fine in --help as well):
//   `text`            bold: literal text the user types or sees (commands, options, values).
//   <name>            italic, brackets dropped: a placeholder (letters, digits, '_', '-', '.').
//   name(N)           a cross reference to man page name in section N (1-9): bold name.
//   \` \< \\          a literal backtick, '<' and backslash.
// Everything else is taken literally and escaped for roff (hyphens, backslashes, leading dots
// and quotes, non-ASCII characters), so no roff can be written here on purpose.

#include <algorithm>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace rtcat::cli {

// One titled section of a manual page; `body` uses the markup documented above.
struct ManSection {
    std::string title;
    std::string body;
};

// The prose of one man page. See the top of this file for `name` and the section rules.
struct ManualPage {
    std::string name;
    // The NAME line after "\-": a lower-case phrase without a final period, per man-pages(7).
    // Empty: the command's CLI11 description (its first sentence, final period dropped); a
    // command with neither is an error, since whatis(1) and apropos(1) index this line.
    std::string summary;
    std::vector<ManSection> sections;
};

namespace detail {
// Function-local static: safe to use from other translation units' initializers.
inline std::vector<ManualPage>& manual_registry() {
    static std::vector<ManualPage> registry;
    return registry;
}
} // namespace detail

// Adds `page`, replacing a registered page of the same name (keeping its position, so the order
// stays the order of first registration).
inline void register_manual(ManualPage page) {
    auto& registry = detail::manual_registry();
    auto same = std::find_if(registry.begin(), registry.end(),
                             [&](const ManualPage& p) { return p.name == page.name; });
    if (same != registry.end()) {
        *same = std::move(page);
    } else {
        registry.push_back(std::move(page));
    }
}

// Every registered page, in order of first registration.
inline const std::vector<ManualPage>& manuals() {
    return detail::manual_registry();
}

// The registered page called `name`, or nullptr.
inline const ManualPage* find_manual(std::string_view name) {
    const auto& registry = detail::manual_registry();
    auto it = std::find_if(registry.begin(), registry.end(),
                           [&](const ManualPage& p) { return p.name == name; });
    return it == registry.end() ? nullptr : &*it;
}

// Forgets every page. For tests that register pages of a toy command tree.
inline void clear_manuals() {
    detail::manual_registry().clear();
}

} // namespace rtcat::cli

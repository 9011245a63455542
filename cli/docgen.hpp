#pragma once

// Man pages and shell completions generated from the CLI11 command tree (DESIGN.md §3 rule 10:
// one flag tree produces help, man pages and completions). The prose CLI11 cannot hold comes
// from cli/manual.hpp. tools/rtcat-gendocs writes the output into the repository (man/,
// completions/) and its drift test fails when the committed files differ from it.
//
// What is read from the tree
// --------------------------
// - Subcommands in definition order; nameless subcommands are CLI11 option groups, whose
//   options are listed with their parent's under the group's name. Subcommands and options in
//   the group "" (CLI11's way to hide them) and disabled subcommands are left out everywhere.
// - For each option: short and long names, positional name, description, get_type_name() (the
//   type plus the descriptions of its checks/transforms), get_default_str(), environment
//   variable, required, needs/excludes, and whether it takes a value (get_expected_max() == 0
//   means a flag) or several (vectors, TakeAll/Join policies: may be repeated).
// - Checks are recognised by their descriptions: CLI::IsMember and CLI::CheckedTransformer
//   ("{a,b}") give allowed values, completed by every shell; CLI::Transformer gives suggested
//   values; CLI::Range / CLI::Bound / PositiveNumber / NonNegativeNumber and the path checks
//   (ExistingFile, ExistingDirectory, ExistingPath, NonexistentPath) become sentences in the
//   option's man entry. Other checks show their description verbatim.
// - Values complete as file names when a word of the type name (split at anything but letters
//   and digits) is FILE, FILES, FILENAME, PATH, PATHS or FIFO, or a file check is attached; as
//   directories for DIR, DIRS, DIRECTORY or ExistingDirectory. So name path options with
//   ->type_name("FILE") (or "SDP_FILE", "DIR", ...), not "TEXT".
// - The help flag is each command's own option: every page lists it and every shell completes
//   it; a parent's help flag is never listed among a subcommand's GLOBAL OPTIONS.
// - A subcommand with fallthrough() accepts its ancestors' options after its name: its page
//   lists them under GLOBAL OPTIONS and its completions offer them. Without fallthrough, the
//   page says that global options go before the command name.
// - Footers (App::footer) are left to --help; write man page prose in a ManualPage.
//
// Output is a pure function of the tree, the manuals and DocOptions (no clock, no environment,
// definition order everywhere), so regenerating is idempotent and the drift test is stable.

#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "cli/manual.hpp"

namespace CLI {
class App;
} // namespace CLI

namespace rtcat::cli {

struct DocOptions {
    // The command name users type; empty: the root App's name.
    std::string program;
    // Printed in every man page footer ("rtcat 0.1.0").
    std::string version;
    // The .TH date (man-pages(7): date of the last nontrivial change, YYYY-MM-DD). Pass a
    // constant, never the clock, or the committed pages drift on every build.
    std::string date;
    // The .TH manual title (centre of the header line).
    std::string manual_title = "User Commands";
    // The pages to merge; nullopt: the registry of cli/manual.hpp (manuals()).
    std::optional<std::vector<ManualPage>> manuals;
};

// A generator input that cannot produce correct documentation: a manual page for a command
// that does not exist, a section title the generator owns, a duplicate section, a command
// without any summary (no CLI11 description, no ManualPage::summary), no program name. The
// message names the offender.
class DocError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Every generated file, keyed by its path relative to the repository root:
//   man/<program>.1                 top-level page: commands, global options, manual sections
//   man/<program>-<sub>[-<sub>].1   one page per (nested) subcommand
//   completions/<program>.bash      bash: `complete -F _<program> <program>`
//   completions/_<program>          zsh (#compdef)
//   completions/<program>.fish      fish
// Throws DocError (see above).
std::map<std::string, std::string> generate_docs(const CLI::App& app, const DocOptions& options);

// True for the paths generate_docs() owns in a repository: man pages of the program in man/ and
// the program's completion files in completions/. The drift check reports any such file that
// the generator no longer produces (a removed command's page, say) as stale.
bool is_generated_doc_path(std::string_view relative_path, std::string_view program);

// The markup of cli/manual.hpp rendered as roff body text (no .SH line). Exposed for tests.
std::string markup_to_roff(std::string_view body);

// Text escaped for a roff text line or macro argument: backslashes, hyphens as \-, non-ASCII as
// \[uXXXX], and a leading '.' or '\'' made harmless. Newlines are kept as line breaks of the
// source. Exposed for tests.
std::string roff_escape(std::string_view text);

} // namespace rtcat::cli

#include "cli/app.hpp"

int main(int argc, char** argv) {
    return rtcat::cli::run(argc, argv);
}

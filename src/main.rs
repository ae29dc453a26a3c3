//! The `ferry` binary: everything lives in the library; this only hands over the process.
fn main() {
    std::process::exit(ferry::cli::main());
}

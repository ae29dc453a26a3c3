//! The `ferry` binary: everything lives in the library; this only hands over the process.
fn main() {
    // glibc gives every thread that allocates its own malloc arena; ferry's few runtime
    // threads share one, which keeps peak memory down (bench (a), 8 x 128 MiB on loopback:
    // 22.3 MiB instead of 24.7 with two arenas, for about 8 % more CPU time).
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning; it is called before any thread starts.
    #[allow(unsafe_code)]
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
    std::process::exit(ferry::cli::main());
}

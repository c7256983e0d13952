// The binary is `#![no_std]`/`#![no_main]`: it defines `main` for the C start files (crt1.o), and
// `__libc_start_main` lives in libc.a. On the musl target that is the static musl bundled with Rust.
// Nothing else from libc is called: every syscall goes through rustix or `src/sys.rs`.
fn main() {
    println!("cargo:rustc-link-arg-bins=-lc");
    // One read-only+code segment instead of page-aligned separate ones: about 4 KB less padding in
    // a binary this small, with PIE (and so ASLR) kept.
    println!("cargo:rustc-link-arg-bins=-Wl,-z,noseparate-code");
}

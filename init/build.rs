// The binary is `#![no_std]`/`#![no_main]`: it defines `main` for the C start files (crt1.o), and
// `__libc_start_main` lives in libc.a. On the musl target that is the static musl bundled with Rust.
// Nothing else from libc is called: every syscall goes through rustix or `src/sys.rs`.
fn main() {
    println!("cargo:rustc-link-arg-bins=-lc");
}

//! The init binary: C start files call `main`, which hands over to the library.

#![no_std]
#![no_main]

use core::ffi::{c_char, c_int};

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    init::log::write_all(2, b"init: internal error (panic)\n");
    init::sys::exit(125)
}

#[no_mangle]
extern "C" fn main(argc: c_int, argv: *const *const c_char, envp: *const *const c_char) -> c_int {
    // SAFETY: these are the arguments the C start files pass to `main`, straight from the kernel.
    unsafe { init::start(argc, argv, envp) }
}

/// The precompiled `core` references an unwinding personality even under `panic = "abort"`; in builds
/// without LTO that reference survives to the linker. init never unwinds (every panic aborts through
/// the handler above), so the routine is never called.
#[no_mangle]
extern "C" fn rust_eh_personality() {}

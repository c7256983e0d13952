// Embeds the static init into spawner, so that one static spawner file is enough to run a container.
// `cargo xtask dist` builds init first and passes its path in SPAWNER_INIT_BIN. Without it (a plain
// `cargo build`), nothing is embedded and spawner looks for `init` beside its own executable, or in
// SPAWNER_INIT, at run time.
fn main() {
    println!("cargo:rerun-if-env-changed=SPAWNER_INIT_BIN");
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("init");
    match std::env::var("SPAWNER_INIT_BIN") {
        Ok(path) if !path.is_empty() => {
            println!("cargo:rerun-if-changed={path}");
            std::fs::copy(&path, &out).unwrap_or_else(|e| panic!("SPAWNER_INIT_BIN={path}: {e}"));
        }
        _ => std::fs::write(&out, b"").unwrap(),
    }
}

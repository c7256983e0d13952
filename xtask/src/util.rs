//! Running commands and installing Debian packages.

use std::path::{Path, PathBuf};
use std::process::Command;

pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// The workspace root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

pub fn cmd(program: &str) -> Command {
    Command::new(program)
}

pub fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd.status().map_err(|e| format!("{:?}: {e}", cmd.get_program()))?;
    if !status.success() {
        return Err(format!("{cmd:?} failed: {status}").into());
    }
    Ok(())
}

pub fn output(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().map_err(|e| format!("{:?}: {e}", cmd.get_program()))?;
    if !out.status.success() {
        return Err(
            format!("{cmd:?} failed: {}: {}", out.status, String::from_utf8_lossy(&out.stderr)).into()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
}

/// Installs the Debian packages that are missing (running `apt-get update` first, once).
pub fn apt_install(packages: &[&str]) -> Result<()> {
    let missing: Vec<&str> = packages.iter().copied().filter(|p| !installed(p)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("xtask: installing {}", missing.join(" "));
    run(cmd("apt-get").args(["update", "-q"]))?;
    run(cmd("apt-get")
        .args(["install", "-y", "-q", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive"))
}

/// Copies a file, replacing the target (never writing through a running binary's inode).
pub fn copy(from: &Path, to: &Path) -> Result<()> {
    let tmp = to.with_extension("tmp");
    std::fs::copy(from, &tmp).map_err(|e| format!("copy {} to {}: {e}", from.display(), tmp.display()))?;
    std::fs::rename(&tmp, to)?;
    Ok(())
}

/// Replaces the part of a Markdown file between `<!-- bench:NAME -->` and `<!-- /bench:NAME -->`
/// (appending it when missing), so each benchmark keeps its own table in one file.
pub fn write_section(file: &Path, name: &str, content: &str) -> Result<()> {
    let (open, close) = (format!("<!-- bench:{name} -->"), format!("<!-- /bench:{name} -->"));
    let mut text = std::fs::read_to_string(file).unwrap_or_else(|_| "# Benchmarks\n".to_string());
    let block = format!("{open}\n{content}{close}");
    match (text.find(&open), text.find(&close)) {
        (Some(a), Some(b)) if a < b => text.replace_range(a..b + close.len(), &block),
        _ => text.push_str(&format!("\n## {name}\n\n{block}\n")),
    }
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(file, text)?;
    Ok(())
}

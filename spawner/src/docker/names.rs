//! Container names: the ones spawner makes up for unnamed containers (Docker's `adjective_surname`),
//! and the reservation that makes a name one run's alone from the moment it is chosen.
//!
//! A run uses its name long before its directory `containers/NAME` is renamed into place (its
//! network lease and its bridge peers' /etc/hosts carry it), so a name is reserved first: a
//! directory `containers/.NAME.name`, locked with flock for as long as the reservation lives and
//! removed when it ends. Two runs that make up the same name at once get two different names; two
//! runs given the same `--name` at once, one error. The lock goes with a run that dies; a
//! reservation left by one is taken over by the next run that wants the name, and removed after a
//! minute by the stale-run cleanup, which looks after every dot-named entry.
//!
//! A run makes its container directory of its reservation ([`Reserved::into_staging`]): the
//! directory fills, and the rename to its name ends the reservation, still under the same lock.
//! One directory made and locked per run, not two.

use super::{stale, RunError};
use rustix::fd::OwnedFd;
use std::path::{Path, PathBuf};

/// A name this run holds until it drops it (once its container directory has that name).
pub struct Reserved {
    pub name: String,
    path: PathBuf,
    /// None once given up to [`Reserved::into_staging`].
    lock: Option<OwnedFd>,
}

impl Reserved {
    /// The reservation's directory and its lock, for the run to build its container directory in
    /// and rename into place (or remove, if that fails): the reservation is then the caller's.
    pub fn into_staging(mut self) -> (PathBuf, OwnedFd) {
        let lock = self.lock.take().expect("a reservation holds its lock until it is given up");
        (self.path.clone(), lock)
    }
}

impl Drop for Reserved {
    fn drop(&mut self) {
        // Removed while still locked: whoever opens it next finds either nothing or a new one.
        if self.lock.is_some() {
            let _ = std::fs::remove_dir(&self.path);
        }
    }
}

/// Reserves `name` in `containers` for this run, or says it is in use: by a container (its
/// directory), or by another run that has reserved it.
pub fn reserve(containers: &Path, name: &str) -> Result<Reserved, RunError> {
    let in_use = || RunError::msg(format!("container name {name:?} is already in use"));
    let path = containers.join(format!(".{name}.name"));
    // A reservation removed by its owner between this run's mkdir and its lock is tried again.
    for _ in 0..8 {
        // 0700: it becomes the container's directory (see `create_container_dir`), and no other
        // host user may reach the upper directory in it (setuid files the container wrote).
        match std::os::unix::fs::DirBuilderExt::mode(&mut std::fs::DirBuilder::new(), 0o700).create(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(RunError::msg(format!("create {}: {e}", path.display()))),
        }
        let lock = match stale::claim(&path) {
            Ok(lock) => lock,
            Err(rustix::io::Errno::WOULDBLOCK) => return Err(in_use()),
            Err(rustix::io::Errno::NOENT) => continue,
            Err(e) => return Err(RunError::msg(format!("lock {}: {e}", path.display()))),
        };
        // The lock counts only on the directory that is still at the path.
        let held = rustix::fs::fstat(&lock);
        let at_path = rustix::fs::lstat(&path);
        let held = match (held, at_path) {
            (Ok(h), Ok(p)) if (h.st_dev, h.st_ino) == (p.st_dev, p.st_ino) => h,
            _ => continue,
        };
        // One taken over from a dead run of an older spawner was made 0755.
        if held.st_mode & 0o777 != 0o700 {
            rustix::fs::fchmod(&lock, rustix::fs::Mode::from_raw_mode(0o700))
                .map_err(|e| RunError::msg(format!("chmod {}: {e}", path.display())))?;
        }
        let reserved = Reserved { name: name.to_string(), path, lock: Some(lock) };
        // Checked under the reservation: a run that made the directory dropped its reservation after.
        if containers.join(name).exists() {
            return Err(in_use());
        }
        return Ok(reserved);
    }
    Err(in_use())
}

/// Reserves a name made up for the container `id`, as Docker names an unnamed container.
pub fn reserve_generated(containers: &Path, id: &str) -> Result<Reserved, RunError> {
    let mut last = None;
    for name in generated(id).take(4096) {
        match reserve(containers, &name) {
            Ok(reserved) => return Ok(reserved),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| RunError::msg("no container name left to give")))
}

const ADJECTIVES: [&str; 24] = [
    "admiring", "bold", "brave", "clever", "eager", "elated", "festive", "focused", "gallant", "happy",
    "jolly", "keen", "kind", "lucid", "modest", "nifty", "quirky", "serene", "sharp", "stoic", "tender",
    "vibrant", "wizardly", "zealous",
];
const SURNAMES: [&str; 24] = [
    "archimedes",
    "babbage",
    "curie",
    "darwin",
    "euler",
    "fermat",
    "galois",
    "hopper",
    "hypatia",
    "kepler",
    "lamport",
    "lovelace",
    "meitner",
    "newton",
    "noether",
    "pascal",
    "ritchie",
    "shannon",
    "thompson",
    "torvalds",
    "turing",
    "volta",
    "wozniak",
    "yonath",
];

/// Names for the container `id` as Docker gives an unnamed one (`adjective_surname`), the likeliest
/// first, then with a number after them.
pub fn generated(id: &str) -> impl Iterator<Item = String> {
    let seed = u64::from_str_radix(&id[..id.len().min(12)], 16).unwrap_or(0);
    (0u64..).map(move |round| {
        let n = seed.wrapping_add(round.wrapping_mul(7919)) as usize;
        let base = format!("{}_{}", ADJECTIVES[n % 24], SURNAMES[n / 24 % 24]);
        if round < 64 {
            base
        } else {
            format!("{base}{}", round / 64)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_names_differ_and_reservations_are_exclusive() {
        let id = super::super::record::new_id();
        let names: Vec<String> = generated(&id).take(65).collect();
        assert!(names[0].contains('_'));
        assert_ne!(names[0], names[1]);
        assert!(names[64].ends_with('1'));

        let dir = std::env::temp_dir().join(format!("spawner-names-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let first = reserve_generated(&dir, &id).unwrap();
        let second = reserve_generated(&dir, &id).unwrap();
        assert_ne!(first.name, second.name, "one name is never given to two runs at once");
        assert!(reserve(&dir, &first.name).is_err());
        let name = first.name.clone();
        drop(first);
        assert!(reserve(&dir, &name).is_ok(), "a dropped reservation frees the name");
        std::fs::create_dir(dir.join(&name)).unwrap();
        assert!(reserve(&dir, &name).is_err(), "a container's name is in use");
        drop(second);
        std::fs::remove_dir(dir.join(&name)).unwrap();
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "reservations leave nothing");
        std::fs::remove_dir(&dir).unwrap();
    }
}

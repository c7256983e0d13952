//! What can go wrong in a runc command, typed so that callers tell the cases apart (`delete --force`
//! of an unknown ID is no error; `run` deletes what it made however it ends), and worded as runc's
//! where engines match the words: `container does not exist`, `container with id exists: ID`,
//! `container not running`. The user sees one line; `--debug` adds the chain of causes.

use crate::container::RunError;
use crate::spec::SpecError;

#[derive(Debug)]
pub enum RuncError {
    /// No container of that ID under `--root`.
    NotExist,
    /// `create` of an ID in use.
    Exists(String),
    /// An ID runc would refuse.
    InvalidId(String),
    /// Refused in the container's present state (runc's words: `container not running`,
    /// `cannot start an already running container`…).
    State(String),
    /// An argument, or a file named by one, that cannot be used.
    Usage(String),
    /// config.json, `exec --process` or `update --resources`.
    Spec(SpecError),
    /// Making or running the container (the core's error, already one line).
    Container(RunError),
    /// The container's cgroup, reopened from the state.
    Cgroup(crate::cgroup::Error),
    /// A file or call of the runtime's own: what was done, on what.
    Io { what: String, source: std::io::Error },
}

impl RuncError {
    /// `map_err` for an I/O error or an errno while doing `what` (which names the path).
    pub fn io<E: Into<std::io::Error>>(what: impl Into<String>) -> impl FnOnce(E) -> RuncError {
        let what = what.into();
        move |e| RuncError::Io { what, source: e.into() }
    }
}

impl std::fmt::Display for RuncError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RuncError::NotExist => f.write_str("container does not exist"),
            RuncError::Exists(id) => write!(f, "container with id exists: {id}"),
            RuncError::InvalidId(id) => write!(f, "invalid container id format: {id}"),
            RuncError::State(why) | RuncError::Usage(why) => f.write_str(why),
            RuncError::Spec(e) => write!(f, "{e}"),
            RuncError::Container(e) => write!(f, "{e}"),
            RuncError::Cgroup(e) => write!(f, "{e}"),
            RuncError::Io { what, source } => write!(f, "{what}: {source}"),
        }
    }
}

impl std::error::Error for RuncError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RuncError::Spec(e) => e.source(),
            RuncError::Container(e) => e.source(),
            RuncError::Cgroup(e) => e.source(),
            RuncError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<SpecError> for RuncError {
    fn from(e: SpecError) -> Self {
        RuncError::Spec(e)
    }
}

impl From<RunError> for RuncError {
    fn from(e: RunError) -> Self {
        RuncError::Container(e)
    }
}

impl From<crate::cgroup::Error> for RuncError {
    fn from(e: crate::cgroup::Error) -> Self {
        RuncError::Cgroup(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engines_words_and_a_chain_of_causes() {
        assert_eq!(RuncError::NotExist.to_string(), "container does not exist");
        assert_eq!(RuncError::Exists("c1".into()).to_string(), "container with id exists: c1");
        let e = RuncError::io("write /run/x/pid")(std::io::Error::from_raw_os_error(28));
        assert_eq!(e.to_string(), "write /run/x/pid: No space left on device (os error 28)");
        assert!(std::error::Error::source(&e).is_some());
    }
}

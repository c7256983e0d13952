//! Why a runtime spec was refused, in one line that names the file and the field the way the spec
//! spells it (`config.json: linux.namespaces[2].type: …`), so that whoever wrote the file, or the
//! engine that did, can find the mistake.

use crate::seccomp::SeccompError;
use std::fmt;
use std::io;
use std::path::PathBuf;

/// What validation errors start with. A spec handed to [`super::validate`] need not come from a
/// file, so they use the spec's own name for it; [`super::load`]'s read and parse errors name the
/// real path.
const FILE: &str = "config.json";

#[derive(Debug)]
pub enum SpecError {
    /// `config.json` could not be read.
    Read { path: PathBuf, source: io::Error },
    /// `config.json` is not JSON, or not a runtime spec's shape (a required field missing, a value
    /// of the wrong type, a name that is not one of the spec's). `field` is where serde found it.
    Parse { path: PathBuf, line: usize, column: usize, field: Option<String>, source: serde_json::Error },
    /// A field breaks a rule of the spec (or one runc keeps, which engines rely on).
    Invalid { field: String, reason: String },
    /// A field spawner does not implement is set; `what` says which value, when that helps.
    Unsupported { field: String, what: Option<String> },
    /// `linux.seccomp` is not a profile spawner can compile.
    Seccomp { source: SeccompError },
    /// The bundle directory could not be made absolute (no current directory).
    Bundle { path: PathBuf, source: io::Error },
}

impl SpecError {
    pub(super) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> SpecError {
        SpecError::Invalid { field: field.into(), reason: reason.into() }
    }

    pub(super) fn unsupported(field: impl Into<String>) -> SpecError {
        SpecError::Unsupported { field: field.into(), what: None }
    }

    pub(super) fn unsupported_value(field: impl Into<String>, what: impl Into<String>) -> SpecError {
        SpecError::Unsupported { field: field.into(), what: Some(what.into()) }
    }

    /// The field the error is about (`process.rlimits[0].type`), when it is about one.
    pub fn field(&self) -> Option<&str> {
        match self {
            SpecError::Parse { field, .. } => field.as_deref(),
            SpecError::Invalid { field, .. } | SpecError::Unsupported { field, .. } => Some(field),
            SpecError::Seccomp { .. } => Some("linux.seccomp"),
            SpecError::Read { .. } | SpecError::Bundle { .. } => None,
        }
    }
}

/// One line whatever the file held: a control character in a value (a name with a newline in
/// it) comes out escaped, as `\n`.
impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = Text(self).to_string();
        if !text.contains(char::is_control) {
            return f.write_str(&text);
        }
        text.chars().try_for_each(|c| match c.is_control() {
            true => write!(f, "{}", c.escape_default()),
            false => write!(f, "{c}"),
        })
    }
}

/// The message as written, before [`SpecError`]'s Display escapes it.
struct Text<'a>(&'a SpecError);

impl fmt::Display for Text<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            SpecError::Read { path, source } => write!(f, "{}: {source}", path.display()),
            SpecError::Parse { path, line, column, field, source } => {
                write!(f, "{}:{line}:{column}: ", path.display())?;
                if let Some(field) = field {
                    write!(f, "{field}: ")?;
                }
                f.write_str(&serde_message(source))
            }
            SpecError::Invalid { field, reason } => write!(f, "{FILE}: {field}: {reason}"),
            SpecError::Unsupported { field, what: None } => {
                write!(f, "{FILE}: {field}: not supported by spawner")
            }
            SpecError::Unsupported { field, what: Some(what) } => {
                write!(f, "{FILE}: {field}: {what} is not supported by spawner")
            }
            SpecError::Seccomp { source } => write!(f, "{FILE}: linux.seccomp: {source}"),
            SpecError::Bundle { path, source } => write!(f, "bundle {}: {source}", path.display()),
        }
    }
}

impl std::error::Error for SpecError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SpecError::Read { source, .. } | SpecError::Bundle { source, .. } => Some(source),
            SpecError::Parse { source, .. } => Some(source),
            SpecError::Seccomp { source } => Some(source),
            SpecError::Invalid { .. } | SpecError::Unsupported { .. } => None,
        }
    }
}

/// serde_json's message without the ` at line L column C` it appends: the position is already at
/// the front of the line, where editors and terminals pick it up.
fn serde_message(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    text.strip_suffix(&suffix).map(str::to_owned).unwrap_or(text)
}

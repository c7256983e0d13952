//! How Docker prints things: the part of Go's templates that `--format` is used with in scripts
//! (`{{.Field.Sub}}`: a string as it is, anything else as JSON; `{{json .Field}}`, `{{json .}}`,
//! and `\t` for a tab), tables as Go's tabwriter sets them, and sizes as `units.HumanSize`.

use crate::container::RunError;
use serde_json::Value;

pub fn render(format: &str, value: &Value) -> Result<String, RunError> {
    let format = format.replace("\\t", "\t").replace("\\n", "\n");
    let mut out = String::new();
    let mut rest = format.as_str();
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let close =
            after.find("}}").ok_or_else(|| RunError::msg(format!("--format {format:?}: unclosed {{{{")))?;
        out.push_str(&action(after[..close].trim(), value, &format)?);
        rest = &after[close + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

fn action(action: &str, value: &Value, format: &str) -> Result<String, RunError> {
    let bad = || {
        RunError::msg(format!(
            "--format {format:?}: {{{{{action}}}}}: give {{{{.Field}}}} or {{{{json .Field}}}}"
        ))
    };
    let (json, path) = match action.strip_prefix("json ") {
        Some(path) => (true, path.trim()),
        None => (false, action),
    };
    let path = path.strip_prefix('.').ok_or_else(bad)?;
    let mut v = value;
    for key in path.split('.').filter(|k| !k.is_empty()) {
        v = v.get(key).ok_or_else(|| RunError::msg(format!("--format {format:?}: no field {key:?}")))?;
    }
    Ok(match (json, v) {
        (false, Value::String(s)) => s.clone(),
        (false, Value::Null) => "<no value>".into(),
        _ => v.to_string(),
    })
}

/// Rows in columns as Go's tabwriter sets Docker's tables: each cell but a row's last padded to
/// its column's widest cell plus `padding`, and to at least `min_width` (Docker's formatter: 10
/// and 3; `top`: 20 and 3).
pub fn tabwrite(rows: &[Vec<String>], min_width: usize, padding: usize) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let width = |i: usize| {
        let widest = rows.iter().filter(|r| i + 1 < r.len()).map(|r| r[i].chars().count()).max();
        (widest.unwrap_or(0) + padding).max(min_width)
    };
    let widths: Vec<usize> = (0..columns).map(width).collect();
    let mut out = String::new();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            out.push_str(cell);
            if i + 1 < row.len() {
                out.push_str(&" ".repeat(widths[i].saturating_sub(cell.chars().count())));
            }
        }
        out.push('\n');
    }
    out
}

/// A size as Docker's `units.HumanSize` says it: decimal units, four significant digits
/// ("0B", "212B", "1.5kB", "16.43MB").
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut size = bytes as f64;
    let mut unit = 0;
    while size >= 1000.0 && unit + 1 < UNITS.len() {
        size /= 1000.0;
        unit += 1;
    }
    // Go's %.4g: four significant digits, trailing zeros dropped.
    let digits = if size < 1.0 { 1 } else { size.log10().floor() as usize + 1 };
    let text = format!("{size:.*}", 4usize.saturating_sub(digits));
    let text = match text.contains('.') {
        true => text.trim_end_matches('0').trim_end_matches('.').to_string(),
        false => text,
    };
    format!("{text}{}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_as_tabwriter_sets_them() {
        let rows = |r: &[&[&str]]| -> Vec<Vec<String>> {
            r.iter().map(|row| row.iter().map(|c| c.to_string()).collect()).collect()
        };
        let table = tabwrite(&rows(&[&["TYPE", "TOTAL", "SIZE"], &["Local Volumes", "2", "36B"]]), 10, 3);
        assert_eq!(table, "TYPE            TOTAL     SIZE\nLocal Volumes   2         36B\n");
    }

    #[test]
    fn sizes_as_docker_says_them() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(212), "212B");
        assert_eq!(human_size(1500), "1.5kB");
        assert_eq!(human_size(16_430_000), "16.43MB");
        assert_eq!(human_size(4_000_000), "4MB");
        assert_eq!(human_size(123_456_789), "123.5MB");
    }

    #[test]
    fn fields_json_and_tabs() {
        let v =
            serde_json::json!({"Name": "/web", "State": {"Status": "running", "Pid": 42}, "Env": ["A=1"]});
        assert_eq!(render("{{.Name}}", &v).unwrap(), "/web");
        assert_eq!(render("{{.State.Status}} {{.State.Pid}}", &v).unwrap(), "running 42");
        assert_eq!(render("{{json .Env}}", &v).unwrap(), "[\"A=1\"]");
        assert_eq!(render("{{ .Name }}\\t!", &v).unwrap(), "/web\t!");
        assert!(render("{{.Nope}}", &v).is_err());
        assert!(render("{{.Name", &v).is_err());
        assert!(render("{{range .Env}}", &v).is_err());
    }
}

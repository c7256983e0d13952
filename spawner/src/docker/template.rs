//! The part of Go's templates that `--format` is used with in scripts: `{{.Field.Sub}}` (a string
//! as it is, anything else as JSON), `{{json .Field}}`, `{{json .}}`, and `\t` for a tab.

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
            after.find("}}").ok_or_else(|| RunError(format!("--format {format:?}: unclosed {{{{")))?;
        out.push_str(&action(after[..close].trim(), value, &format)?);
        rest = &after[close + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

fn action(action: &str, value: &Value, format: &str) -> Result<String, RunError> {
    let bad = || {
        RunError(format!("--format {format:?}: {{{{{action}}}}}: give {{{{.Field}}}} or {{{{json .Field}}}}"))
    };
    let (json, path) = match action.strip_prefix("json ") {
        Some(path) => (true, path.trim()),
        None => (false, action),
    };
    let path = path.strip_prefix('.').ok_or_else(bad)?;
    let mut v = value;
    for key in path.split('.').filter(|k| !k.is_empty()) {
        v = v.get(key).ok_or_else(|| RunError(format!("--format {format:?}: no field {key:?}")))?;
    }
    Ok(match (json, v) {
        (false, Value::String(s)) => s.clone(),
        (false, Value::Null) => "<no value>".into(),
        _ => v.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::render;

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

//! The image configuration JSON (`application/vnd.oci.image.config.v1+json`, also Docker's and
//! the legacy per-layer `json`), reduced to what running a container needs.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

use super::digest::Digest;

/// The parsed image configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct ImageConfig {
    /// GOARCH-style name: `amd64`, `arm64`, …
    #[serde(default)]
    pub architecture: Option<String>,
    #[serde(default)]
    pub os: Option<String>,
    #[serde(default)]
    pub variant: Option<String>,
    /// When the image was built (RFC 3339), if it says.
    #[serde(default)]
    pub created: Option<String>,
    /// How to run the image. Absent or `null` in some legacy layers: then all defaults.
    #[serde(default, deserialize_with = "null_as_default")]
    pub config: RunConfig,
    /// The layers' uncompressed digests. Absent in the legacy per-layer `json`.
    #[serde(default)]
    pub rootfs: Option<RootFs>,
}

/// The `config` object: the process defaults of the image.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct RunConfig {
    #[serde(rename = "Env", default, deserialize_with = "null_as_default")]
    pub env: Vec<String>,
    /// `None` (unset) and `Some([])` differ for Docker's override rules, so both are kept.
    #[serde(rename = "Entrypoint", default, deserialize_with = "string_or_list")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(rename = "Cmd", default, deserialize_with = "string_or_list")]
    pub cmd: Option<Vec<String>>,
    #[serde(rename = "WorkingDir", default, deserialize_with = "null_as_default")]
    pub working_dir: String,
    /// `user`, `uid`, `user:group` or `uid:gid`, resolved later against the rootfs.
    #[serde(rename = "User", default, deserialize_with = "null_as_default")]
    pub user: String,
    #[serde(rename = "Hostname", default, deserialize_with = "null_as_default")]
    pub hostname: String,
    #[serde(rename = "Labels", default, deserialize_with = "null_as_default")]
    pub labels: BTreeMap<String, String>,
    #[serde(rename = "StopSignal", default)]
    pub stop_signal: Option<String>,
    /// `VOLUME` paths (the keys; Docker writes `{}` for each value).
    #[serde(rename = "Volumes", default, deserialize_with = "null_as_default")]
    pub volumes: BTreeMap<String, serde_json::Value>,
}

/// The `rootfs` object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct RootFs {
    /// Always `layers` in practice.
    #[serde(rename = "type", default)]
    pub kind: String,
    /// sha256 of each layer's uncompressed tar, bottom to top.
    #[serde(default, deserialize_with = "null_as_default")]
    pub diff_ids: Vec<Digest>,
}

impl ImageConfig {
    /// The diff_ids from `rootfs`, if the config has that section.
    pub fn diff_ids(&self) -> Option<&[Digest]> {
        self.rootfs.as_ref().map(|r| r.diff_ids.as_slice())
    }
}

/// Docker writes `null` for empty lists and maps; treat it as the default.
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// Docker's `strslice`: `Entrypoint`/`Cmd` may be a single string, meaning a one-element list.
fn string_or_list<'de, D>(deserializer: D) -> Result<Option<Vec<String>>, D::Error>
where
    D: Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum StrSlice {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<StrSlice>::deserialize(deserializer)? {
        None => None,
        Some(StrSlice::One(s)) => Some(vec![s]),
        Some(StrSlice::Many(v)) => Some(v),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_config() {
        let json = r#"{
            "architecture": "amd64", "os": "linux",
            "config": {
                "Env": ["PATH=/usr/bin"], "Entrypoint": null, "Cmd": "sh",
                "WorkingDir": "/srv", "User": "1000:1000", "Labels": null,
                "ExposedPorts": {"80/tcp": {}}, "StopSignal": "SIGQUIT"
            },
            "rootfs": {"type": "layers", "diff_ids": [
                "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"]}
        }"#;
        let c: ImageConfig = serde_json::from_str(json).unwrap();
        assert_eq!(c.architecture.as_deref(), Some("amd64"));
        assert_eq!(c.config.env, ["PATH=/usr/bin"]);
        assert_eq!(c.config.entrypoint, None);
        assert_eq!(c.config.cmd, Some(vec!["sh".to_owned()]));
        assert_eq!(c.config.working_dir, "/srv");
        assert_eq!(c.config.user, "1000:1000");
        assert!(c.config.labels.is_empty());
        assert_eq!(c.config.stop_signal.as_deref(), Some("SIGQUIT"));
        assert_eq!(c.diff_ids().unwrap().len(), 1);
    }

    #[test]
    fn legacy_layer_json_has_no_rootfs() {
        let c: ImageConfig = serde_json::from_str(r#"{"id":"abc","parent":"def","config":null}"#).unwrap();
        assert!(c.rootfs.is_none());
        assert_eq!(c.config, RunConfig::default());
    }
}

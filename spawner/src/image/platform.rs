//! OCI platforms (`os/arch[/variant]`), as image indexes and `--platform` name them.

/// An OCI platform, `os/arch[/variant]`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    #[serde(default)]
    pub variant: Option<String>,
}

impl Platform {
    pub fn parse(text: &str) -> Result<Platform, String> {
        let parts: Vec<&str> = text.split('/').collect();
        match parts.as_slice() {
            [os, arch] if !os.is_empty() && !arch.is_empty() => {
                Ok(Platform { os: os.to_string(), architecture: arch.to_string(), variant: None })
            }
            [os, arch, v] if !os.is_empty() && !arch.is_empty() && !v.is_empty() => Ok(Platform {
                os: os.to_string(),
                architecture: arch.to_string(),
                variant: Some(v.to_string()),
            }),
            _ => Err(format!("--platform {text}: give os/arch or os/arch/variant (linux/arm64/v8)")),
        }
    }

    /// How well an index entry's `platform` fits this one, the platform wanted: None when it does
    /// not run here (os or architecture differ, or both name a variant and they differ); else
    /// higher for a closer fit: the same variant, then an entry naming none, then one naming a
    /// variant where none was asked. An entry stating no platform fits least (archives often
    /// leave it out; a registry's attestations say `unknown/unknown`, which fits nothing).
    pub fn fit(&self, platform: Option<&Platform>) -> Option<u8> {
        let Some(p) = platform else { return Some(0) };
        if p.os != self.os || p.architecture != self.architecture {
            return None;
        }
        match (&p.variant, &self.variant) {
            (Some(theirs), Some(ours)) if theirs == ours => Some(3),
            (None, _) => Some(2),
            (Some(_), None) => Some(1),
            (Some(_), Some(_)) => None,
        }
    }

    /// This host, as image indexes name it.
    pub fn host() -> Platform {
        let (os, arch, variant) = super::oci::host_platform();
        Platform { os: os.into(), architecture: arch.into(), variant: variant.map(str::to_string) }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        match &self.variant {
            Some(v) => write!(f, "/{v}"),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Platform;

    #[test]
    fn fit_orders_entries_and_refuses_what_cannot_run() {
        let p = |s: &str| Platform::parse(s).unwrap();
        let arm7 = p("linux/arm/v7");
        assert_eq!(arm7.fit(Some(&p("linux/arm/v7"))), Some(3));
        assert_eq!(arm7.fit(Some(&p("linux/arm"))), Some(2));
        assert_eq!(arm7.fit(None), Some(0));
        assert_eq!(arm7.fit(Some(&p("linux/arm/v6"))), None, "both name a variant, and they differ");
        assert_eq!(arm7.fit(Some(&p("linux/amd64"))), None);
        assert_eq!(p("linux/arm64").fit(Some(&p("linux/arm64/v8"))), Some(1));
        assert_eq!(p("linux/amd64").fit(Some(&p("unknown/unknown"))), None, "attestations");
    }
}

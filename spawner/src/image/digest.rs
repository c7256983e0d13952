//! Content digests (`sha256:<hex>`) and a reader that computes one while bytes stream through.

use std::fmt;
use std::io::{self, Read};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::digest::DynDigest;
use sha2::{Digest as _, Sha256, Sha512};

/// The hash algorithms OCI allows in a digest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Algorithm {
    Sha256,
    Sha512,
}

impl Algorithm {
    /// The name used in digest strings and in `blobs/<alg>/` paths.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }
}

/// A validated content digest such as `sha256:e3b0c442…`.
///
/// The hex part is checked to be lowercase hex of the algorithm's length, so a `Digest` is always
/// safe to use as a file name: it can never contain `/` or `..`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest {
    algorithm: Algorithm,
    hex: String,
}

impl Digest {
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The lowercase hex part, without the `alg:` prefix.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The digest whose raw hash value is `bytes`.
    pub(crate) fn from_raw(algorithm: Algorithm, bytes: &[u8]) -> Digest {
        let mut hex = String::with_capacity(bytes.len() * 2);
        for b in bytes {
            use fmt::Write;
            let _ = write!(hex, "{b:02x}");
        }
        Digest { algorithm, hex }
    }

    /// The sha256 digest of `bytes`.
    pub fn sha256_of(bytes: &[u8]) -> Digest {
        let mut hasher = Hasher::new(Algorithm::Sha256);
        hasher.update(bytes);
        hasher.finish()
    }

    /// The digest `data` would have under this digest's algorithm.
    pub fn compute_same(&self, data: &[u8]) -> Digest {
        let mut hasher = Hasher::new(self.algorithm);
        hasher.update(data);
        hasher.finish()
    }

    /// The digest as written in a `blobs/sha256/<hex>` path, if `path` is such a path.
    pub fn from_blob_path(path: &str) -> Option<Digest> {
        let mut parts = path.trim_start_matches("./").split('/');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some("blobs"), Some(alg), Some(hex), None) => format!("{alg}:{hex}").parse().ok(),
            _ => None,
        }
    }

    /// The path of this digest's blob in an OCI layout: `blobs/<alg>/<hex>`.
    pub fn blob_path(&self) -> String {
        format!("blobs/{}/{}", self.algorithm.name(), self.hex)
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm.name(), self.hex)
    }
}

/// Why a string is not a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestParseError(String);

impl fmt::Display for DigestParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid digest {:?}", self.0)
    }
}

impl std::error::Error for DigestParseError {}

impl FromStr for Digest {
    type Err = DigestParseError;

    fn from_str(s: &str) -> Result<Digest, DigestParseError> {
        let bad = || DigestParseError(s.to_owned());
        let (alg, hex) = s.split_once(':').ok_or_else(bad)?;
        let algorithm = match alg {
            "sha256" => Algorithm::Sha256,
            "sha512" => Algorithm::Sha512,
            _ => return Err(bad()),
        };
        let valid_hex = hex.len() == algorithm.hex_len()
            && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !valid_hex {
            return Err(bad());
        }
        Ok(Digest { algorithm, hex: hex.to_owned() })
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Digest, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// An incremental hash for one [`Algorithm`].
pub struct Hasher {
    algorithm: Algorithm,
    inner: Box<dyn DynDigest + Send>,
}

impl Hasher {
    pub fn new(algorithm: Algorithm) -> Hasher {
        let inner: Box<dyn DynDigest + Send> = match algorithm {
            Algorithm::Sha256 => Box::new(Sha256::new()),
            Algorithm::Sha512 => Box::new(Sha512::new()),
        };
        Hasher { algorithm, inner }
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.inner.update(bytes);
    }

    pub fn finish(self) -> Digest {
        Digest::from_raw(self.algorithm, &self.inner.finalize())
    }
}

/// A reader that hashes every byte read through it, so a stream is digested in the same pass that
/// consumes it.
pub struct DigestReader<R> {
    inner: R,
    /// None: bytes pass through unhashed (see [`DigestReader::hashing_if`]).
    hasher: Option<Hasher>,
    bytes: u64,
}

impl<R: Read> DigestReader<R> {
    pub fn new(inner: R, algorithm: Algorithm) -> DigestReader<R> {
        DigestReader { inner, hasher: Some(Hasher::new(algorithm)), bytes: 0 }
    }

    /// Hashes with `algorithm` when there is one, else only passes the bytes through: one reader
    /// type for a stream whose digest is wanted only sometimes.
    pub fn hashing_if(inner: R, algorithm: Option<Algorithm>) -> DigestReader<R> {
        DigestReader { inner, hasher: algorithm.map(Hasher::new), bytes: 0 }
    }

    /// Whether bytes are hashed (see [`DigestReader::hashing_if`]).
    pub fn is_hashing(&self) -> bool {
        self.hasher.is_some()
    }

    /// Reads the rest of the stream (hashing it), then returns the digest of everything read,
    /// the byte count and the inner reader.
    ///
    /// A digest covers the whole stream, including what a consumer did not need (a tar's
    /// end-of-archive blocks and padding, bytes after the last gzip member), hence the drain.
    pub fn finish(mut self) -> io::Result<(Digest, u64, R)> {
        io::copy(&mut self, &mut io::sink())?;
        let hasher = self.hasher.expect("finish is for a reader made to hash");
        Ok((hasher.finish(), self.bytes, self.inner))
    }
}

impl<R: Read> Read for DigestReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(hasher) = &mut self.hasher {
            hasher.update(&buf[..n]);
        }
        self.bytes += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_validates() {
        let empty = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let d: Digest = empty.parse().unwrap();
        assert_eq!(d, Digest::sha256_of(b""));
        assert_eq!(d.to_string(), empty);
        assert!("sha256:../../etc".parse::<Digest>().is_err());
        assert!("md5:abcd".parse::<Digest>().is_err());
        assert!(empty.to_uppercase().parse::<Digest>().is_err());
        assert_eq!(Digest::from_blob_path(&d.blob_path()), Some(d.clone()), "blob path round trip");
    }

    #[test]
    fn reader_hashes_unread_tail() {
        let mut r = DigestReader::new(&b"hello world"[..], Algorithm::Sha256);
        let mut first = [0u8; 5];
        r.read_exact(&mut first).unwrap();
        let (digest, n, _) = r.finish().unwrap();
        assert_eq!(n, 11);
        assert_eq!(digest, Digest::sha256_of(b"hello world"));
    }
}

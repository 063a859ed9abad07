//! The store directory ("secret dir") and the paths inside it.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};
use crate::protocol::{LOCK_FILE, MANIFEST_FILE, PAYLOAD_DIR, READS_DIR, STORE_ENV};
use crate::sys::fs::create_private_dir;

/// A store directory: where the manifest, its lock and the payload files live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// Resolves the store directory: `explicit`, else `$ALLYE_SECRET_DIR`, else `~/.allye_secrets`.
    /// Does not touch the file system.
    pub fn resolve(explicit: Option<&Path>) -> Result<Self> {
        let root = match explicit {
            Some(p) => expand_home(p),
            None => match std::env::var_os(STORE_ENV).filter(|v| !v.is_empty()) {
                Some(v) => expand_home(Path::new(&v)),
                None => home_dir()
                    .ok_or_else(|| Error::StoreUnusable {
                        path: PathBuf::from("~/.allye_secrets"),
                        reason: "the home directory is unknown; pass secret_dir= or set ALLYE_SECRET_DIR".into(),
                    })?
                    .join(".allye_secrets"),
            },
        };
        Ok(Store { root })
    }

    /// A store at exactly this path.
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Store { root: root.into() }
    }

    /// The store directory.
    pub fn root(&self) -> &Path {
        &self.root
    }
    /// `<store>/manifest.jsonl`.
    pub fn manifest_path(&self) -> PathBuf {
        self.root.join(MANIFEST_FILE)
    }
    /// `<store>/manifest.lock`, the writers' lock.
    pub fn lock_path(&self) -> PathBuf {
        self.root.join(LOCK_FILE)
    }
    /// `<store>/payloads/`, where file payloads live.
    pub fn payload_dir(&self) -> PathBuf {
        self.root.join(PAYLOAD_DIR)
    }
    /// `<store>/reads/`, read markers of `shm_unlink_on_read` segments.
    pub fn reads_dir(&self) -> PathBuf {
        self.root.join(READS_DIR)
    }

    /// Creates the store (0700) and its payload directory if missing, and checks that the
    /// path is a writable directory. Used by writers; readers never create anything.
    pub fn ensure(&self) -> Result<()> {
        for dir in [self.root.clone(), self.payload_dir()] {
            match fs::metadata(&dir) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    return Err(Error::StoreUnusable {
                        path: dir,
                        reason: "it exists but is not a directory; pass another secret_dir=".into(),
                    })
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    create_private_dir(&dir)
                        .ctx(|| format!("cannot create store directory {}", dir.display()))
                        .map_err(|e| Error::StoreUnusable { path: dir.clone(), reason: e.to_string() })?;
                }
                Err(e) => return Err(Error::StoreUnusable { path: dir, reason: e.to_string() }),
            }
        }
        Ok(())
    }

    /// True when `path` names a file directly inside this store's `payloads/` directory.
    /// gc deletes nothing else.
    pub fn owns_payload_file(&self, path: &Path) -> bool {
        let Some(parent) = path.parent() else { return false };
        let Some(name) = path.file_name() else { return false };
        if name == ".." || name == "." {
            return false;
        }
        let canon = |p: &Path| fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        canon(parent) == canon(&self.payload_dir())
    }
}

fn home_dir() -> Option<PathBuf> {
    #[cfg(unix)]
    let var = "HOME";
    #[cfg(windows)]
    let var = "USERPROFILE";
    std::env::var_os(var).filter(|v| !v.is_empty()).map(PathBuf::from)
}

fn expand_home(p: &Path) -> PathBuf {
    if let Ok(rest) = p.strip_prefix("~") {
        if let Some(home) = home_dir() {
            return home.join(rest);
        }
    }
    p.to_path_buf()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_private_dirs_and_refuses_files() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::at(tmp.path().join("s"));
        store.ensure().unwrap();
        assert!(store.payload_dir().is_dir());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(store.root()).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o700);
        }
        let file = tmp.path().join("f");
        fs::write(&file, b"x").unwrap();
        let err = Store::at(&file).ensure().unwrap_err();
        assert!(matches!(err, Error::StoreUnusable { .. }), "{err}");
    }

    #[test]
    fn owns_only_direct_payload_children() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::at(tmp.path());
        store.ensure().unwrap();
        assert!(store.owns_payload_file(&store.payload_dir().join("x.arrow")));
        assert!(!store.owns_payload_file(&tmp.path().join("x.arrow")));
        assert!(!store.owns_payload_file(Path::new("/etc/passwd")));
        assert!(!store.owns_payload_file(&store.payload_dir().join("..")));
    }
}

//! Scratch folders: private working space a load takes in the temporary directory
//! (`$TMPDIR`, else `/tmp`), such as the page ranges a parallel PostgreSQL read spills
//! while the first range streams. A folder is `adc-<purpose>-<16 hex>`, made private
//! (0700), and holds an owner file naming the process that made it (pid, start time and
//! boot id, as a `writing` line does); it is removed when its [`ScratchDir`] is dropped.
//! A process killed meanwhile leaves it behind, outside every store: gc finds such
//! folders by name, and frees those of this user whose owner is certainly dead
//! ([`owner_of`] says whose a folder is).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};
use crate::sys::process::WriterIdentity;

/// First characters of a scratch folder's name.
pub const SCRATCH_PREFIX: &str = "adc-";
/// The file, inside a scratch folder, naming the process that made it.
pub const OWNER_FILE: &str = ".adc-owner";

/// A scratch folder of this process, removed (with what it holds) when dropped.
#[derive(Debug)]
pub struct ScratchDir {
    path: PathBuf,
}

impl ScratchDir {
    /// Makes a new scratch folder `adc-<purpose>-<16 hex>` in the temporary directory,
    /// private to this user, with its owner file. `purpose` is 1 to 16 lowercase letters.
    pub fn create(purpose: &str) -> Result<ScratchDir> {
        if purpose.is_empty() || purpose.len() > 16 || !purpose.bytes().all(|b| b.is_ascii_lowercase()) {
            return Err(Error::InvalidArgument(format!(
                "a scratch folder's purpose is 1 to 16 lowercase letters, got {purpose:?}"
            )));
        }
        let random = crate::sys::ids::new_v4().simple().to_string();
        let path = std::env::temp_dir().join(format!("{SCRATCH_PREFIX}{purpose}-{}", &random[..16]));
        // A new name, made here (not recursive: an existing entry of that name is an
        // error, never adopted), private whatever the umask.
        let mut builder = fs::DirBuilder::new();
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(&path).ctx(|| format!("cannot create the scratch folder {}", path.display()))?;
        let dir = ScratchDir { path };
        let owner = dir.path.join(OWNER_FILE);
        let text = serde_json::to_vec(&WriterIdentity::cached())?;
        let mut opts = fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        opts.open(&owner).and_then(|mut f| f.write_all(&text)).ctx(|| format!("cannot write {}", owner.display()))?;
        Ok(dir)
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the folder and what it holds now (dropping it does the same, quietly).
    pub fn remove(&self) -> Result<()> {
        match fs::remove_dir_all(&self.path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(Error::io(format!("cannot remove the scratch folder {}", self.path.display()), e))
            }
            _ => Ok(()),
        }
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if let Err(e) = self.remove() {
            log::warn!("{e}");
        }
    }
}

/// The scratch folders in the temporary directory that belong to this user: real
/// directories (not links) named like one.
pub fn own_folders() -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(std::env::temp_dir()) else { return Vec::new() };
    entries
        .flatten()
        .filter(|e| e.file_name().to_str().is_some_and(is_scratch_name))
        .filter(|e| fs::symlink_metadata(e.path()).is_ok_and(|m| m.is_dir() && is_mine(&m)))
        .map(|e| e.path())
        .collect()
}

/// `adc-<lowercase letters>-<16 lowercase hex>`.
fn is_scratch_name(name: &str) -> bool {
    let Some(rest) = name.strip_prefix(SCRATCH_PREFIX) else { return false };
    let Some((purpose, random)) = rest.split_once('-') else { return false };
    !purpose.is_empty()
        && purpose.bytes().all(|b| b.is_ascii_lowercase())
        && random.len() == 16
        && random.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn is_mine(meta: &fs::Metadata) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        meta.uid() == rustix::process::geteuid().as_raw()
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        true
    }
}

/// The process that made the scratch folder `dir`, as its owner file says (`None`: no
/// owner file, or one that does not parse: nothing can be told).
pub fn owner_of(dir: &Path) -> Option<WriterIdentity> {
    let bytes = fs::read(dir.join(OWNER_FILE)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scratch_folder_is_private_named_owned_and_removed_with_its_handle() {
        let dir = ScratchDir::create("sql").unwrap();
        let path = dir.path().to_path_buf();
        let name = path.file_name().unwrap().to_str().unwrap();
        assert!(name.starts_with("adc-sql-") && is_scratch_name(name), "{name}");
        assert_eq!(owner_of(&path), Some(WriterIdentity::cached()));
        assert!(own_folders().contains(&path));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o700);
        }
        fs::write(path.join("part1.arrows"), b"spilled").unwrap();
        drop(dir);
        assert!(!path.exists());
        assert!(ScratchDir::create("Bad").is_err() && ScratchDir::create("").is_err());
        for bad in ["adc-sql-xyz", "adc-sql-0123456789abcdeF", "adc--0123456789abcdef", "tmp-sql-0123456789abcdef"] {
            assert!(!is_scratch_name(bad), "{bad}");
        }
    }
}

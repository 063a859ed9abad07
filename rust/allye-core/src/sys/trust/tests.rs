//! The trust rule and the no-symlink handles, as the same user (the second-user attacks
//! are in the Python suite `tests/security`, which creates real users).

use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;

use super::*;

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

fn chmod(p: &Path, m: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
}

fn refused(r: Result<impl std::fmt::Debug>) -> Error {
    match r {
        Err(e @ Error::StoreNotPrivate { .. }) => e,
        other => panic!("expected StoreNotPrivate, got {other:?}"),
    }
}

fn set_umask(mask: u32) {
    rustix::process::umask(rustix::fs::Mode::from_bits_truncate(mask));
}

/// The umask is per process: this runs in a child process of its own (the test below
/// starts it), so that no other test of this process creates files under it.
#[test]
#[ignore = "run by creation_is_private_whatever_the_umask in a child process"]
fn umask_child() {
    let root = std::path::PathBuf::from(std::env::var_os("ADC_UMASK_CHILD_DIR").expect("started by the parent test"));
    set_umask(0o000);
    let dir = TrustedDir::create_root(&root).unwrap();
    let sub = dir.create_dir("payloads").unwrap();
    drop(sub.open("f", Open::CreateNew).unwrap());
    drop(sub.open("a", Open::Append).unwrap());
    // A umask that takes the owner's own bits: still exactly 0700 / 0600.
    set_umask(0o777);
    dir.create_dir("reads").unwrap();
    drop(sub.open("g", Open::CreateNew).unwrap());
    drop(sub.open("h", Open::Append).unwrap());
    drop(TrustedDir::create_root(&root.join("inner")).unwrap());
}

#[test]
fn creation_is_private_whatever_the_umask() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "sys::trust::tests::umask_child", "--test-threads=1", "--quiet"])
        .env("ADC_UMASK_CHILD_DIR", &root)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    for (path, want) in [
        ("", 0o700),
        ("payloads", 0o700),
        ("payloads/f", 0o600),
        ("payloads/a", 0o600),
        ("reads", 0o700),
        ("payloads/g", 0o600),
        ("payloads/h", 0o600),
        ("inner", 0o700),
    ] {
        assert_eq!(mode(&root.join(path)), want, "{path}");
    }
}

#[test]
fn a_directory_or_file_writable_by_others_is_refused_with_the_fix() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    let dir = TrustedDir::create_root(&root).unwrap();
    dir.create_dir("payloads").unwrap();
    drop(dir.open("manifest.jsonl", Open::Append).unwrap());
    for (m, who) in [(0o777, "group and others"), (0o770, "its group"), (0o702, "others")] {
        chmod(&root, m);
        let e = refused(TrustedDir::open_root(&root));
        let text = e.to_string();
        assert!(text.contains(who) && text.contains(&format!("chmod 700 {}", root.display())), "{text}");
        assert!(matches!(e, Error::StoreNotPrivate { mode: Some(x), owner: Some(_), .. } if x == m), "{e:?}");
    }
    // Readable by others (0.1.2's stores under the usual umask) is accepted.
    chmod(&root, 0o755);
    let dir = TrustedDir::open_root(&root).unwrap().unwrap();
    chmod(&root.join("payloads"), 0o775);
    assert!(refused(dir.open_dir("payloads")).to_string().contains("chmod 700"));
    chmod(&root.join("payloads"), 0o755);
    dir.open_dir("payloads").unwrap().unwrap();
    chmod(&root.join("manifest.jsonl"), 0o666);
    let text = refused(dir.open("manifest.jsonl", Open::Read)).to_string();
    assert!(text.contains("chmod 600"), "{text}");
    chmod(&root.join("manifest.jsonl"), 0o644);
    assert!(dir.open("manifest.jsonl", Open::Read).unwrap().is_some());
}

#[test]
fn no_symlink_inside_a_store_is_followed() {
    for fallback in [false, true] {
        force_openat_fallback(fallback);
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("store");
        let outside = tmp.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        chmod(&outside, 0o700);
        std::fs::write(outside.join("file"), b"precious").unwrap();
        let dir = TrustedDir::create_root(&root).unwrap();
        symlink(&outside, root.join("payloads")).unwrap();
        symlink(outside.join("file"), root.join("manifest.jsonl")).unwrap();
        // Directories and files: refused, naming the link.
        let e = refused(dir.open_dir("payloads"));
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert!(refused(dir.create_dir("payloads")).to_string().contains("symbolic link"));
        assert!(refused(dir.open("manifest.jsonl", Open::Read)).to_string().contains("symbolic link"));
        assert!(refused(dir.open("manifest.jsonl", Open::Append)).to_string().contains("symbolic link"));
        assert!(refused(dir.walk(Path::new("payloads/x"), true)).to_string().contains("symbolic link"));
        // A create never lands through a dangling link either.
        symlink(outside.join("new"), root.join("planted")).unwrap();
        assert!(dir.open("planted", Open::CreateNew).is_err());
        assert!(!outside.join("new").exists());
        // Deleting removes the link, never what it names.
        assert!(dir.remove_file("manifest.jsonl").unwrap());
        dir.remove_dir_all("payloads").unwrap();
        assert_eq!(std::fs::read(outside.join("file")).unwrap(), b"precious");
        assert!(!root.join("payloads").exists() && outside.is_dir());
        // Names are single components: no way out through "..".
        assert!(matches!(dir.open("../outside/file", Open::Read), Err(Error::InvalidArgument(_))));
        assert!(matches!(dir.open_dir(".."), Err(Error::InvalidArgument(_))));
        assert!(matches!(dir.walk(Path::new("a/../../outside"), false), Err(Error::InvalidArgument(_))));
    }
    force_openat_fallback(false);
}

#[test]
fn the_store_path_may_be_a_symlink_of_its_owner() {
    let tmp = tempfile::tempdir().unwrap();
    let real = tmp.path().join("real");
    let link = tmp.path().join("link");
    TrustedDir::create_root(&real).unwrap();
    symlink(&real, &link).unwrap();
    let dir = TrustedDir::open_root(&link).unwrap().unwrap();
    drop(dir.open("x", Open::CreateNew).unwrap());
    assert!(real.join("x").is_file());
}

#[test]
fn renames_and_listing_stay_inside() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = TrustedDir::create_root(&tmp.path().join("s")).unwrap();
    let sub = dir.create_dir("d").unwrap();
    drop(sub.open("a.tmp", Open::CreateNew).unwrap());
    sub.rename("a.tmp", &sub, "a").unwrap();
    symlink("/etc", tmp.path().join("s/d/link")).unwrap();
    let mut names: Vec<_> =
        sub.entries().unwrap().into_iter().map(|e| (e.name.into_string().unwrap(), e.kind)).collect();
    names.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(names, vec![("a".into(), EntryKind::File), ("link".into(), EntryKind::Symlink)]);
    assert!(sub.link_new("a", "b").unwrap());
    assert!(!sub.link_new("a", "b").unwrap(), "an existing name is never replaced");
    assert_eq!(sub.stat("link").unwrap().unwrap().kind, EntryKind::Symlink);
    assert!(sub.stat("missing").unwrap().is_none());
}

#[test]
fn the_reused_store_handle_always_follows_the_path() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("s");
    drop(TrustedDir::create_root(&root).unwrap().open("x", Open::CreateNew).unwrap());
    assert!(TrustedDir::open_root(&root).unwrap().unwrap().stat("x").unwrap().is_some());
    // Deleted and made again at the same path: the new directory, never the old one.
    std::fs::remove_dir_all(&root).unwrap();
    assert!(TrustedDir::open_root(&root).unwrap().is_none());
    let again = TrustedDir::create_root(&root).unwrap();
    assert!(again.stat("x").unwrap().is_none());
    // Made writable by others after it was cached: refused at once.
    chmod(&root, 0o777);
    refused(TrustedDir::open_root(&root));
    chmod(&root, 0o700);
    // Swapped for another directory of the user's: that one is used.
    std::fs::rename(&root, tmp.path().join("aside")).unwrap();
    std::fs::create_dir(&root).unwrap();
    chmod(&root, 0o700);
    drop(TrustedDir::open_root(&root).unwrap().unwrap().open("y", Open::CreateNew).unwrap());
    assert!(root.join("y").is_file() && !tmp.path().join("aside/y").exists());
}

#[test]
fn a_reused_walked_directory_always_follows_the_path() {
    let tmp = tempfile::tempdir().unwrap();
    let root = TrustedDir::create_root(&tmp.path().join("s")).unwrap();
    let rel = Path::new("objects/default");
    let ns = tmp.path().join("s/objects/default");
    drop(root.walk(rel, true).unwrap().unwrap().open("x", Open::CreateNew).unwrap());
    // Walked again: the remembered directory (same one, so it sees x).
    assert!(root.walk(rel, false).unwrap().unwrap().stat("x").unwrap().is_some());
    // Deleted and made again at the same path: the new directory, never the old one.
    std::fs::remove_dir_all(&ns).unwrap();
    assert!(root.walk(rel, false).unwrap().is_none());
    let again = root.walk(rel, true).unwrap().unwrap();
    assert!(again.stat("x").unwrap().is_none());
    drop(again.open("y", Open::CreateNew).unwrap());
    // Made writable by others after it was remembered: refused at once.
    chmod(&ns, 0o777);
    refused(root.walk(rel, false));
    chmod(&ns, 0o700);
    // The middle component made writable by others: the full walk refuses it.
    chmod(&tmp.path().join("s/objects"), 0o777);
    refused(root.walk(rel, false));
    chmod(&tmp.path().join("s/objects"), 0o700);
    // Swapped for a symbolic link to the very directory remembered: not followed.
    std::fs::rename(&ns, tmp.path().join("s/aside")).unwrap();
    symlink(tmp.path().join("s/aside"), &ns).unwrap();
    refused(root.walk(rel, false));
    std::fs::remove_file(&ns).unwrap();
    // Swapped for another directory of the user's: that one is used.
    std::fs::create_dir(&ns).unwrap();
    chmod(&ns, 0o700);
    assert!(root.walk(rel, false).unwrap().unwrap().stat("y").unwrap().is_none());
}

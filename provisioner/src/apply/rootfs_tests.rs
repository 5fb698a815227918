//! Tests of the contained filesystem operations (rootfs.rs).

use super::*;

#[test]
fn symlinks_resolve_inside_root() {
    let outside = tempfile::tempdir().unwrap();
    let t = tempfile::tempdir().unwrap();
    std::fs::create_dir(t.path().join("etc")).unwrap();
    // An absolute symlink pointing at a real directory outside the root.
    std::os::unix::fs::symlink(outside.path(), t.path().join("etc/evil")).unwrap();
    std::os::unix::fs::symlink("../../../../..", t.path().join("etc/up")).unwrap();
    let mut r = Root::open(t.path()).unwrap();
    // Writing through them lands inside the root (or fails), never outside.
    let _ = r.mkdir_p(
        &format!("/etc/evil{}", outside.path().display()),
        0o755,
        0,
        0,
    );
    let _ = r.write_file(
        &format!("/etc/evil{}/x", outside.path().display()),
        b"x",
        0o644,
        0,
        0,
    );
    r.write_file("/etc/up/y", b"y", 0o644, 0, 0).unwrap();
    r.commit().unwrap();
    assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
    assert_eq!(std::fs::read(t.path().join("y")).unwrap(), b"y");
}

#[test]
fn fixups_only_when_something_differs() {
    // (created mode, uid, gid), wanted (mode, uid, gid), (chown, chmod)
    let cases = [
        ((0o644, 0, 0), (0o644, 0, 0), (false, false)),
        ((0o644, 0, 0), (0o666, 0, 0), (false, true)),
        ((0o640, 0, 0), (0o640, 1000, 0), (true, false)),
        ((0o640, 0, 0), (0o640, 0, 50), (true, false)),
        ((0o755, 0, 0), (0o4755, 0, 0), (false, true)),
        ((0o2755, 0, 0), (0o755, 0, 0), (false, true)),
    ];
    for ((cm, cu, cg), (m, u, g), want) in cases {
        assert_eq!(needs(cm, cu, cg, m, u, g), want, "{cm:o} -> {m:o}");
    }
}

#[test]
fn modes_and_owners_as_asked_whatever_the_umask_left() {
    let t = tempfile::tempdir().unwrap();
    let mut r = Root::open(t.path()).unwrap();
    let me = rustix::process::geteuid().as_raw();
    let group = rustix::process::getegid().as_raw();
    r.mkdir_p("/d", 0o777, me, group).unwrap();
    r.write_file("/d/a", b"a", 0o666, me, group).unwrap();
    r.write_file("/d/b", b"b", 0o4750, me, group).unwrap();
    r.commit().unwrap();
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &str| {
        std::fs::symlink_metadata(t.path().join(p))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    };
    assert_eq!(mode("d"), 0o777);
    assert_eq!(mode("d/a"), 0o666);
    assert_eq!(mode("d/b"), 0o4750);
}

#[test]
fn a_missing_directory_is_seen_once_it_is_created() {
    let t = tempfile::tempdir().unwrap();
    let mut r = Root::open(t.path()).unwrap();
    assert_eq!(r.node("/x/y/f").unwrap(), None);
    assert_eq!(r.node("/x/y/f").unwrap(), None);
    r.mkdir_p("/x/y", 0o755, 0, 0).unwrap();
    r.write_file("/x/y/f", b"f", 0o644, 0, 0).unwrap();
    assert!(matches!(r.node("/x/y/f").unwrap(), Some(Node::File { .. })));
    // Through a symlink created after the miss, too.
    assert_eq!(r.node("/s/f").unwrap(), None);
    r.symlink("/s", "/x/y", 0, 0).unwrap();
    r.flush().unwrap();
    assert!(matches!(r.node("/s/f").unwrap(), Some(Node::File { .. })));
    r.commit().unwrap();
}

#[test]
fn rollback_restores() {
    let t = tempfile::tempdir().unwrap();
    std::fs::write(t.path().join("a"), b"old").unwrap();
    let mut r = Root::open(t.path()).unwrap();
    r.write_file("/a", b"new", 0o600, 0, 0).unwrap();
    r.mkdir_p("/d/e", 0o755, 0, 0).unwrap();
    r.write_file("/d/e/f", b"f", 0o644, 0, 0).unwrap();
    r.symlink("/l", "/a", 0, 0).unwrap();
    r.rollback().unwrap();
    assert_eq!(std::fs::read(t.path().join("a")).unwrap(), b"old");
    let names: Vec<_> = std::fs::read_dir(t.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("a")]);
}

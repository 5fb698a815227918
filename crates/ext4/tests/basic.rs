mod common;

use basalt_ext4::Mode;
use basalt_tree::{Content, Entry, Kind, Tree};
use common::*;

#[test]
fn small_tree_is_clean() {
    let mut t = Tree::new();
    t.insert_p("/usr/bin/hello", Entry::file(0o755, Content::from_bytes(b"hello world\n".to_vec())).at(1_600_000_000)).unwrap();
    t.insert_p("/usr/lib/empty", Entry::file(0o644, Content::from_bytes(vec![]))).unwrap();
    t.insert("/usr/bin/link", Entry::symlink("hello")).unwrap();
    t.insert("/usr/bin/hard", Entry { kind: Kind::HardLink("/usr/bin/hello".into()), ..Entry::dir(0o755) }).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("a.img");
    let size = write_image(&t, &opts(Mode::ReadOnly { slack_percent: 5 }), &img);
    eprintln!("size {size}");
    e2fsck(&img);
}

//! In-place rewrite of the grubenv file on the mounted ESP, for the OS
//! (mark-good) and the update agent (invalidate, stage a trial).
//!
//! GRUB's `save_env` can only rewrite the file's existing sectors, so the file
//! is never replaced (no rename): it is read, changed and written back at
//! offset 0 with a single write of the same length, then fsynced. The state
//! variables stay inside the first 512-byte sector, so a torn write of the
//! second sector cannot corrupt them.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::error::{GrubError, Result};
use crate::grubenv::EnvBlock;
use crate::slots::{ATOMIC_SECTOR, BootState};

/// Reads the slot state of `names` from the grubenv file at `path`.
pub fn read_state(path: &Path, names: &[char]) -> Result<BootState> {
    let bytes = std::fs::read(path).map_err(GrubError::io("reading", path))?;
    BootState::from_env(&EnvBlock::parse(&bytes)?, names)
}

/// Applies `change` to the slot state in the grubenv file at `path` and
/// rewrites the file in place; other variables are kept. Returns the new state.
pub fn update_state(
    path: &Path,
    names: &[char],
    change: impl FnOnce(&mut BootState) -> Result<()>,
) -> Result<BootState> {
    let file = File::options()
        .read(true)
        .write(true)
        .open(path)
        .map_err(GrubError::io("opening", path))?;
    let len = file.metadata().map_err(GrubError::io("stat", path))?.len();
    let len = usize::try_from(len).map_err(|_| GrubError::Env("grubenv too large".into()))?;
    let mut bytes = vec![0u8; len];
    file.read_exact_at(&mut bytes, 0)
        .map_err(GrubError::io("reading", path))?;
    let mut env = EnvBlock::parse(&bytes)?;
    let mut state = BootState::from_env(&env, names)?;
    change(&mut state)?;
    state.write_env(&mut env)?;
    let new = env.to_bytes_sized(len)?;
    let used = new.len() - new.iter().rev().take_while(|&&b| b == b'#').count();
    if used > ATOMIC_SECTOR {
        return Err(GrubError::Env(format!(
            "{}: variables need {used} bytes, more than the first {ATOMIC_SECTOR}-byte sector",
            path.display()
        )));
    }
    file.write_all_at(&new, 0)
        .map_err(GrubError::io("writing", path))?;
    file.sync_data().map_err(GrubError::io("syncing", path))?;
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_cycle_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("grubenv");
        let names = ['A', 'B'];
        std::fs::write(
            &p,
            BootState::factory(&names).unwrap().to_env_bytes().unwrap(),
        )
        .unwrap();
        let ino = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&p).unwrap());

        update_state(&p, &names, |s| s.invalidate('B')).unwrap();
        let st = update_state(&p, &names, |s| s.stage_trial('B', 3)).unwrap();
        assert_eq!(st.order, vec!['B', 'A']);
        let mut sim = read_state(&p, &names).unwrap();
        assert_eq!(sim.select(), Some('B'));
        update_state(&p, &names, |s| s.mark_good('B')).unwrap();
        let st = read_state(&p, &names).unwrap();
        assert_eq!(
            (st.slot('B').unwrap().ok, st.slot('B').unwrap().tries),
            (true, 0)
        );

        let meta = std::fs::metadata(&p).unwrap();
        assert_eq!(meta.len(), 1024, "size kept");
        assert_eq!(
            std::os::unix::fs::MetadataExt::ino(&meta),
            ino,
            "same file, rewritten in place"
        );
    }

    #[test]
    fn errors_leave_file_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("grubenv");
        let before = BootState::factory(&['A', 'B'])
            .unwrap()
            .to_env_bytes()
            .unwrap();
        std::fs::write(&p, &before).unwrap();
        let e = update_state(&p, &['A', 'B'], |s| s.mark_good('C')).unwrap_err();
        assert!(e.to_string().contains("no slot named C"), "{e}");
        assert_eq!(std::fs::read(&p).unwrap(), before);
        let e = update_state(&dir.path().join("missing"), &['A'], |_| Ok(())).unwrap_err();
        assert!(e.to_string().contains("opening"), "{e}");
    }
}

//! A/B slot state kept in the ESP's GRUB environment block.
//!
//! Variables (RAUC-style, see README.md for the full state machine):
//! - `ORDER`: slot names by preference, space separated (`"A B"`).
//! - `<X>_OK`: `1` once the OS on slot X has confirmed a good boot, else `0`.
//! - `<X>_TRY`: boot attempts left for an unconfirmed slot (`0`..=`9`).
//!
//! grub.cfg walks ORDER and boots the first slot with `TRY > 0` (decrementing
//! and saving TRY first) or `OK = 1`. A slot that is tried and never marked
//! good runs out of tries and loses to the good slot. [`BootState::select`] is
//! the same rule in Rust, for tests and for the update agent.
//!
//! All state variables are kept inside the block's first 512-byte sector so a
//! single sector write flips it atomically.

use crate::error::{GrubError, Result};
use crate::grubenv::EnvBlock;

/// Most tries a trial slot can be given (one digit, so grub.cfg can count
/// down with an unrolled `if` chain: GRUB script has no arithmetic).
pub const MAX_TRIES: u8 = 9;
/// The state variables must fit in the first sector of the block.
pub const ATOMIC_SECTOR: usize = 512;

/// State of one slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotState {
    pub name: char,
    pub ok: bool,
    pub tries: u8,
}

/// The whole A/B state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootState {
    /// Slot names by preference; every slot appears once.
    pub order: Vec<char>,
    /// One entry per slot, in the order the slots were declared.
    pub slots: Vec<SlotState>,
}

/// Checks a slot name: one ASCII uppercase letter.
pub fn check_slot_name(name: char) -> Result<()> {
    if name.is_ascii_uppercase() {
        Ok(())
    } else {
        Err(GrubError::Config(format!(
            "slot name {name:?} must be one uppercase ASCII letter"
        )))
    }
}

pub(crate) fn ok_var(name: char) -> String {
    format!("{name}_OK")
}

pub(crate) fn try_var(name: char) -> String {
    format!("{name}_TRY")
}

impl BootState {
    /// Factory state of a fresh image: the first slot is trusted (`OK=1`),
    /// the others are empty (`OK=0`, `TRY=0`); ORDER is the declared order.
    pub fn factory(names: &[char]) -> Result<BootState> {
        if names.is_empty() {
            return Err(GrubError::Config("at least one slot is needed".into()));
        }
        let mut slots: Vec<SlotState> = Vec::with_capacity(names.len());
        for (i, &name) in names.iter().enumerate() {
            check_slot_name(name)?;
            if slots.iter().any(|s| s.name == name) {
                return Err(GrubError::Config(format!("slot {name} declared twice")));
            }
            slots.push(SlotState {
                name,
                ok: i == 0,
                tries: 0,
            });
        }
        Ok(BootState {
            order: names.to_vec(),
            slots,
        })
    }

    fn slot_mut(&mut self, name: char) -> Result<&mut SlotState> {
        self.slots
            .iter_mut()
            .find(|s| s.name == name)
            .ok_or_else(|| GrubError::Config(format!("no slot named {name}")))
    }

    /// Slot state by name.
    pub fn slot(&self, name: char) -> Option<&SlotState> {
        self.slots.iter().find(|s| s.name == name)
    }

    /// What grub.cfg does at boot: the first slot in ORDER with tries left
    /// (one try is used up) or confirmed good. `None`: nothing bootable.
    pub fn select(&mut self) -> Option<char> {
        for name in self.order.clone() {
            let Some(s) = self.slots.iter_mut().find(|s| s.name == name) else {
                continue;
            };
            if s.tries > 0 {
                s.tries -= 1;
                return Some(name);
            }
            if s.ok {
                return Some(name);
            }
        }
        None
    }

    /// Update agent, before overwriting a slot: make it unbootable.
    pub fn invalidate(&mut self, name: char) -> Result<()> {
        let s = self.slot_mut(name)?;
        s.ok = false;
        s.tries = 0;
        Ok(())
    }

    /// Update agent, after writing a slot: give it `tries` trial boots and
    /// put it first in ORDER. The previous good slot stays `OK=1` as fallback.
    pub fn stage_trial(&mut self, name: char, tries: u8) -> Result<()> {
        if tries == 0 || tries > MAX_TRIES {
            return Err(GrubError::Config(format!(
                "tries must be 1..={MAX_TRIES}, got {tries}"
            )));
        }
        let s = self.slot_mut(name)?;
        s.ok = false;
        s.tries = tries;
        self.order.retain(|&n| n != name);
        self.order.insert(0, name);
        Ok(())
    }

    /// OS, once the booted slot is healthy: confirm it and stop counting.
    pub fn mark_good(&mut self, name: char) -> Result<()> {
        let s = self.slot_mut(name)?;
        s.ok = true;
        s.tries = 0;
        Ok(())
    }

    /// Writes the state variables into `env` (other variables are kept).
    pub fn write_env(&self, env: &mut EnvBlock) -> Result<()> {
        let order: Vec<String> = self.order.iter().map(|c| c.to_string()).collect();
        env.set("ORDER", &order.join(" "))?;
        for s in &self.slots {
            env.set(&ok_var(s.name), if s.ok { "1" } else { "0" })?;
            env.set(&try_var(s.name), &s.tries.to_string())?;
        }
        Ok(())
    }

    /// The environment block holding only this state, checked to keep every
    /// variable inside the first sector.
    pub fn to_env_bytes(&self) -> Result<Vec<u8>> {
        let mut env = EnvBlock::new();
        self.write_env(&mut env)?;
        let bytes = env.to_bytes()?;
        let used = bytes.len() - bytes.iter().rev().take_while(|&&b| b == b'#').count();
        if used > ATOMIC_SECTOR {
            return Err(GrubError::Env(format!(
                "slot state needs {used} bytes, more than one {ATOMIC_SECTOR}-byte sector"
            )));
        }
        Ok(bytes)
    }

    /// Reads the state of the slots `names` from `env`.
    pub fn from_env(env: &EnvBlock, names: &[char]) -> Result<BootState> {
        let mut state = BootState::factory(names)?;
        let order = env
            .get("ORDER")
            .ok_or_else(|| GrubError::Env("ORDER is not set".into()))?;
        let mut parsed = Vec::new();
        for word in order.split_whitespace() {
            let mut chars = word.chars();
            let (Some(c), None) = (chars.next(), chars.next()) else {
                return Err(GrubError::Env(format!(
                    "ORDER entry {word:?} is not one letter"
                )));
            };
            if !names.contains(&c) || parsed.contains(&c) {
                return Err(GrubError::Env(format!(
                    "ORDER {order:?}: unknown or repeated slot {c}"
                )));
            }
            parsed.push(c);
        }
        state.order = parsed;
        for s in state.slots.iter_mut() {
            let get = |var: String| {
                env.get(&var)
                    .ok_or_else(|| GrubError::Env(format!("{var} is not set")))
                    .map(|v| (var, v))
            };
            let (var, ok) = get(ok_var(s.name))?;
            s.ok = match ok {
                "1" => true,
                "0" => false,
                other => return Err(GrubError::Env(format!("{var}={other:?}: want 0 or 1"))),
            };
            let (var, tries) = get(try_var(s.name))?;
            s.tries = tries
                .parse::<u8>()
                .ok()
                .filter(|&t| t <= MAX_TRIES)
                .ok_or_else(|| GrubError::Env(format!("{var}={tries:?}: want 0..={MAX_TRIES}")))?;
        }
        Ok(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn factory_boots_first_slot_forever() {
        let mut st = BootState::factory(&['A', 'B']).unwrap();
        for _ in 0..20 {
            assert_eq!(st.select(), Some('A'));
        }
    }

    #[test]
    fn failed_trial_falls_back_to_good_slot() {
        let mut st = BootState::factory(&['A', 'B']).unwrap();
        st.invalidate('B').unwrap();
        st.stage_trial('B', 3).unwrap();
        assert_eq!(st.order, vec!['B', 'A']);
        // Three boots of B that never get marked good ...
        let boots: Vec<_> = (0..5).map(|_| st.select()).collect();
        assert_eq!(
            boots,
            vec![Some('B'), Some('B'), Some('B'), Some('A'), Some('A')]
        );
        assert_eq!(
            st.slot('B'),
            Some(&SlotState {
                name: 'B',
                ok: false,
                tries: 0
            })
        );
    }

    #[test]
    fn confirmed_trial_wins_from_then_on() {
        let mut st = BootState::factory(&['A', 'B']).unwrap();
        st.stage_trial('B', 2).unwrap();
        assert_eq!(st.select(), Some('B'));
        st.mark_good('B').unwrap();
        for _ in 0..5 {
            assert_eq!(st.select(), Some('B'));
        }
        // Next update goes to A; a failed A falls back to B.
        st.invalidate('A').unwrap();
        st.stage_trial('A', 1).unwrap();
        let boots: Vec<_> = (0..3).map(|_| st.select()).collect();
        assert_eq!(boots, vec![Some('A'), Some('B'), Some('B')]);
    }

    #[test]
    fn nothing_bootable() {
        let mut st = BootState::factory(&['A', 'B']).unwrap();
        st.invalidate('A').unwrap();
        assert_eq!(st.select(), None);
    }

    #[test]
    fn env_round_trip_fits_one_sector() {
        let mut st = BootState::factory(&['A', 'B']).unwrap();
        st.stage_trial('B', 3).unwrap();
        let bytes = st.to_env_bytes().unwrap();
        let text = String::from_utf8(bytes[..190].to_vec()).unwrap();
        assert!(text.starts_with(
            "# GRUB Environment Block\n# WARNING: Do not edit this file by tools other than grub-editenv!!!\nORDER=B A\nA_OK=1\nA_TRY=0\nB_OK=0\nB_TRY=3\n#"
        ));
        let env = EnvBlock::parse(&bytes).unwrap();
        assert_eq!(BootState::from_env(&env, &['A', 'B']).unwrap(), st);
    }

    #[test]
    fn rejects_bad_state() {
        let cases: &[(&str, &str)] = &[
            (
                "ORDER=A C\nA_OK=1\nA_TRY=0\nB_OK=0\nB_TRY=0\n",
                "unknown or repeated slot C",
            ),
            (
                "ORDER=A A\nA_OK=1\nA_TRY=0\nB_OK=0\nB_TRY=0\n",
                "repeated slot A",
            ),
            (
                "ORDER=AB\nA_OK=1\nA_TRY=0\nB_OK=0\nB_TRY=0\n",
                "not one letter",
            ),
            (
                "ORDER=A B\nA_OK=2\nA_TRY=0\nB_OK=0\nB_TRY=0\n",
                "A_OK=\"2\"",
            ),
            (
                "ORDER=A B\nA_OK=1\nA_TRY=10\nB_OK=0\nB_TRY=0\n",
                "A_TRY=\"10\"",
            ),
            ("ORDER=A B\nA_OK=1\nA_TRY=0\nB_OK=0\n", "B_TRY is not set"),
            ("A_OK=1\n", "ORDER is not set"),
        ];
        for (body, want) in cases {
            let mut bytes = b"# GRUB Environment Block\n".to_vec();
            bytes.extend_from_slice(body.as_bytes());
            let env = EnvBlock::parse(&bytes).unwrap();
            let err = BootState::from_env(&env, &['A', 'B'])
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{err} should contain {want}");
        }
        assert!(BootState::factory(&['a']).is_err());
        assert!(BootState::factory(&['A', 'A']).is_err());
        assert!(BootState::factory(&[]).is_err());
        let mut st = BootState::factory(&['A']).unwrap();
        assert!(st.stage_trial('A', 0).is_err());
        assert!(st.stage_trial('A', 10).is_err());
        assert!(st.mark_good('Z').is_err());
    }
}

//! `basalt-update status [--json]`: each slot's version and state, which slot
//! is booted and which boots next, and the last failed trial.

use anyhow::{Context, Result};
use basalt_grub::envfile::read_state;
use serde::Serialize;

use super::SLOTS;
use super::agent::{Machine, failed_trial};
use super::esp::FailureRecord;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SlotStatus {
    pub slot: char,
    pub partition: String,
    /// From the slot record on the ESP (the builder writes slot A's; absent
    /// for a slot that never held an image).
    pub name: Option<String>,
    pub version: Option<String>,
    pub booted: bool,
    /// The slot GRUB will boot next.
    pub active: bool,
    pub good: bool,
    pub tries_left: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    pub booted: char,
    /// What GRUB boots next (`None`: nothing bootable).
    pub next: Option<char>,
    pub order: Vec<char>,
    pub slots: Vec<SlotStatus>,
    /// Recorded by mark-good when a trial fell back, or seen right now.
    pub last_failure: Option<FailureRecord>,
}

pub fn status(m: &Machine) -> Result<Status> {
    super::agent::check_booted(m)?;
    let state = read_state(&m.esp.grubenv(), &SLOTS)
        .map_err(|e| anyhow::anyhow!("reading grubenv: {e}"))?;
    let next = state.clone().select();
    let mut slots = Vec::new();
    for s in &state.slots {
        let rec = m.esp.read_record(s.name)?;
        slots.push(SlotStatus {
            slot: s.name,
            partition: super::disk::partition_name(s.name),
            name: rec.as_ref().map(|r| r.name.clone()),
            version: rec.map(|r| r.version),
            booted: s.name == m.booted,
            active: Some(s.name) == next,
            good: s.ok,
            tries_left: s.tries,
        });
    }
    let last_failure = match failed_trial(&state, m.booted) {
        Some(f) => Some(FailureRecord {
            slot: f,
            version: m.esp.read_record(f)?.map(|r| r.version),
            fell_back_to: m.booted,
        }),
        None => m.esp.read_failure().context("reading the failure record")?,
    };
    Ok(Status {
        booted: m.booted,
        next,
        order: state.order.clone(),
        slots,
        last_failure,
    })
}

impl Status {
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    pub fn to_text(&self) -> String {
        let mut t = format!(
            "booted: {}\nnext boot: {}\norder: {}\n",
            self.booted,
            self.next
                .map_or("none (no bootable slot)".to_string(), |c| c.to_string()),
            self.order
                .iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        );
        for s in &self.slots {
            t.push_str(&format!(
                "slot {} ({}): version {}{}{}, {}, tries left {}\n",
                s.slot,
                s.partition,
                s.version.as_deref().unwrap_or("unknown"),
                if s.booted { ", booted" } else { "" },
                if s.active { ", active" } else { "" },
                if s.good { "good" } else { "not good" },
                s.tries_left
            ));
        }
        match &self.last_failure {
            Some(f) => t.push_str(&format!(
                "last failed attempt: slot {} (version {}) did not boot to mark-good; fell back to {}\n",
                f.slot,
                f.version.as_deref().unwrap_or("unknown"),
                f.fell_back_to
            )),
            None => t.push_str("last failed attempt: none\n"),
        }
        t
    }
}

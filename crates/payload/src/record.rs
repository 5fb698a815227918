//! The slot record: what is installed in a /usr slot, kept on the ESP as
//! `/EFI/basalt/slot-x.json` (path: `basalt_grub::config::slot_record_path`).
//! The builder writes slot A's for the factory image; the update agent
//! writes one for every slot it installs, and `basalt-update status` reads
//! them.

use serde::{Deserialize, Serialize};

/// What is installed in a slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotRecord {
    pub name: String,
    pub version: String,
    /// Hex dm-verity root hash of the slot's /usr.
    pub root_hash: String,
}

#[cfg(test)]
mod tests {
    use super::SlotRecord;

    /// The on-disk JSON has exactly these three keys and reads back equal.
    #[test]
    fn json_round_trip() {
        let r = SlotRecord {
            name: "basalt-qemu".into(),
            version: "1.2.3".into(),
            root_hash: "ab".repeat(32),
        };
        let b = serde_json::to_vec_pretty(&r).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v.as_object().map(|o| o.len()), Some(3));
        assert_eq!(serde_json::from_slice::<SlotRecord>(&b).unwrap(), r);
    }
}

//! Writing a payload: hash every section, plan the layout, sign header +
//! metadata, then write the bytes (each source is read a second time and
//! must hash the same).

use std::io::Write;

use ed25519_dalek::{Signer, SigningKey};

use crate::error::{PayloadError, Result, io};
use crate::header::{ALIGN, HEADER_SIZE, Header, align_up, data_offset_for};
use crate::meta::{Metadata, SectionInfo, VerityInfo};
use crate::source::Source;

/// What the payload describes besides its sections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadInfo {
    pub name: String,
    pub version: String,
    pub verity: VerityInfo,
    /// Extra kernel arguments for the slot (see [`Metadata::cmdline`]).
    pub cmdline: String,
}

fn overflow() -> PayloadError {
    PayloadError::Metadata("section sizes overflow".into())
}

/// Plans the sections back to back at 4096-aligned offsets.
fn plan(info: &PayloadInfo, sections: [(&'static str, &Source, [u8; 32]); 3]) -> Result<Metadata> {
    let mut at = 0u64;
    let mut infos = Vec::with_capacity(3);
    for (_, src, sha) in sections {
        infos.push(SectionInfo {
            offset: at,
            size: src.len(),
            sha256: hex::encode(sha),
        });
        at = align_up(at.checked_add(src.len()).ok_or_else(overflow)?).ok_or_else(overflow)?;
    }
    let [slot, kernel, initrd]: [SectionInfo; 3] = infos.try_into().map_err(|_| overflow())?;
    let meta = Metadata {
        name: info.name.clone(),
        version: info.version.clone(),
        slot,
        verity: info.verity.clone(),
        kernel,
        initrd,
        cmdline: info.cmdline.clone(),
    };
    meta.validate()?;
    Ok(meta)
}

fn zeros(out: &mut dyn Write, n: u64) -> Result<()> {
    let block = [0u8; ALIGN as usize];
    let mut left = n;
    while left > 0 {
        let k = left.min(ALIGN);
        out.write_all(&block[..k as usize])
            .map_err(io("writing padding"))?;
        left -= k;
    }
    Ok(())
}

/// Writes a complete payload to `out` and returns its metadata. Same inputs
/// and key give the same bytes (Ed25519 signatures are deterministic).
pub fn write_payload(
    out: &mut dyn Write,
    info: &PayloadInfo,
    slot: Source,
    kernel: Source,
    initrd: Source,
    key: &SigningKey,
) -> Result<Metadata> {
    let named = [("slot", &slot), ("kernel", &kernel), ("initrd", &initrd)];
    let mut hashed = Vec::with_capacity(3);
    for (name, src) in named {
        hashed.push((name, src, src.sha256(name)?));
    }
    let hashed: [(&'static str, &Source, [u8; 32]); 3] =
        hashed.try_into().map_err(|_| overflow())?;
    let meta = plan(info, hashed)?;
    let json = serde_json::to_vec(&meta)
        .map_err(|e| PayloadError::Metadata(format!("serialising: {e}")))?;
    let meta_len = json.len() as u64;
    let data_offset = data_offset_for(meta_len).ok_or_else(overflow)?;
    let total_len = data_offset
        .checked_add(meta.data_len().ok_or_else(overflow)?)
        .ok_or_else(overflow)?;
    let header = Header {
        meta_len,
        data_offset,
        total_len,
    };
    let hb = header.encode();
    let mut signed = Vec::with_capacity(HEADER_SIZE + json.len());
    signed.extend_from_slice(&hb);
    signed.extend_from_slice(&json);
    let sig = key.sign(&signed).to_bytes();

    out.write_all(&signed)
        .map_err(io("writing header and metadata"))?;
    out.write_all(&sig).map_err(io("writing signature"))?;
    let mut pos = signed.len() as u64 + sig.len() as u64;
    zeros(out, data_offset - pos)?;
    pos = data_offset;
    for (name, src, sha) in hashed {
        let s = meta
            .sections()
            .into_iter()
            .find(|(n, _)| *n == name)
            .map(|(_, s)| s.clone())
            .ok_or_else(overflow)?;
        zeros(out, data_offset + s.offset - pos)?;
        if src.copy_to(name, out)? != sha {
            return Err(PayloadError::SourceChanged { section: name });
        }
        pos = data_offset + s.offset + s.size;
    }
    debug_assert_eq!(pos, total_len);
    out.flush().map_err(io("flushing payload"))?;
    Ok(meta)
}

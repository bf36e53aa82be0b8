//! ELF notes: the GNU build ID (`NT_GNU_BUILD_ID`) and the Go build ID (`.note.go.buildid`,
//! owner `Go`, type 4), from `PT_NOTE` segments as they stream past and, at the end, from
//! `SHT_NOTE` sections outside them.
//!
//! Format: the System V gABI "Note Section"
//! (<https://refspecs.linuxfoundation.org/elf/gabi4+/ch5.pheader.html#note_section>).

use std::ops::Range;

use goblin::elf::note::NT_GNU_BUILD_ID;
use goblin::elf::{program_header as ph, section_header as sh, SectionHeader};

use super::headers::table_range;
use super::ElfScanner;
use crate::inspect::bytes::read_u32;

/// Note type of the Go build ID (`cmd/link`'s `ELF_NOTE_GOBUILDID_TAG`).
const NT_GO_BUILD_ID: u32 = 4;

impl ElfScanner {
    /// The file ranges of the `PT_NOTE` segments inside the file.
    pub(super) fn note_ranges(&self) -> Option<Vec<Range<u64>>> {
        let phdrs = self.phdrs.as_ref()?;
        Some(
            phdrs
                .iter()
                .filter(|p| p.p_type == ph::PT_NOTE)
                .map(|p| table_range(p.p_offset, p.p_filesz))
                .filter(|r| r.end <= self.cap.size())
                .collect(),
        )
    }

    /// Reads the note segments once all are captured. Returns whether it did.
    pub(super) fn step_notes(&mut self) -> bool {
        if self.notes_parsed {
            return false;
        }
        let Some(notes) = self.note_ranges() else {
            return false;
        };
        if !notes.iter().all(|r| self.cap.has(r)) {
            return false;
        }
        self.notes_parsed = true;
        self.parse_notes(&notes);
        true
    }

    /// Reads the notes of the `PT_NOTE` segments and of every `SHT_NOTE` section (Go 1.27
    /// maps only its own note into a segment).
    pub(super) fn parse_all_notes(&mut self, shdrs: &[SectionHeader]) {
        let mut ranges = self.note_ranges().unwrap_or_default();
        ranges.extend(
            shdrs
                .iter()
                .filter(|s| s.sh_type == sh::SHT_NOTE)
                .map(|s| table_range(s.sh_offset, s.sh_size)),
        );
        self.parse_notes(&ranges);
    }

    fn parse_notes(&mut self, ranges: &[Range<u64>]) {
        let Some(h) = self.hdr else { return };
        for r in ranges {
            let Some(b) = self.cap.get(r.clone()) else {
                continue;
            };
            for (name, typ, desc) in notes(b, h.big) {
                match (name, typ) {
                    (b"Go", NT_GO_BUILD_ID) => {
                        self.go_note = Some(String::from_utf8_lossy(desc).into_owned());
                    }
                    (b"GNU", NT_GNU_BUILD_ID) => self.gnu_build_id = Some(hex::encode(desc)),
                    _ => {}
                }
            }
        }
    }
}

/// The notes in `b`: (name without NULs, type, descriptor). Stops at the first note that
/// does not fit.
fn notes(b: &[u8], big: bool) -> Vec<(&[u8], u32, &[u8])> {
    let mut out = Vec::new();
    let mut i = 0usize;
    while i + 12 <= b.len() {
        let (Some(namesz), Some(descsz), Some(typ)) = (
            read_u32(b, i, big),
            read_u32(b, i + 4, big),
            read_u32(b, i + 8, big),
        ) else {
            break;
        };
        let (namesz, descsz) = (namesz as usize, descsz as usize);
        let name_at = i + 12;
        let desc_at = name_at + namesz.div_ceil(4) * 4;
        let next = desc_at.saturating_add(descsz.div_ceil(4) * 4);
        if desc_at.saturating_add(descsz) > b.len() || namesz > b.len() {
            break;
        }
        let name = &b[name_at..name_at + namesz];
        let name = &name[..name.iter().position(|&c| c == 0).unwrap_or(name.len())];
        out.push((name, typ, &b[desc_at..desc_at + descsz]));
        if next <= i {
            break;
        }
        i = next;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::notes;

    #[test]
    fn notes_are_read_until_one_does_not_fit() {
        let mut b = Vec::new();
        for (name, typ, desc) in [
            (&b"GNU\0"[..], 3u32, &[0xab, 0xcd][..]),
            (b"Go\0", 4, b"id"),
        ] {
            b.extend_from_slice(&(name.len() as u32).to_le_bytes());
            b.extend_from_slice(&(desc.len() as u32).to_le_bytes());
            b.extend_from_slice(&typ.to_le_bytes());
            b.extend_from_slice(name);
            b.resize(b.len().next_multiple_of(4), 0);
            b.extend_from_slice(desc);
            b.resize(b.len().next_multiple_of(4), 0);
        }
        let whole = notes(&b, false);
        assert_eq!(
            whole,
            [
                (&b"GNU"[..], 3, &[0xab, 0xcd][..]),
                (&b"Go"[..], 4, &b"id"[..])
            ]
        );
        assert_eq!(notes(&b[..b.len() - 4], false).len(), 1, "second desc cut");
        assert!(notes(&b[..11], false).is_empty());
        let mut huge = b.clone();
        huge[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(notes(&huge, false).is_empty(), "namesz past the end");
    }
}

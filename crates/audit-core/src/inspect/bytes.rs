//! Byte readers shared by the ELF inspector and the Go build-info decoder: fixed-width
//! unsigned integers of either byte order, Go's unsigned varint, and NUL-terminated strings.
//! Every reader checks that its bytes are present and returns `None` (or an error) otherwise;
//! none can panic on short input.

/// Reads the `width`-byte (1 to 8) unsigned integer at the start of `b`, in big- or
/// little-endian order. `None` when `b` is shorter than `width` or `width` is above 8.
pub(crate) fn read_uint(b: &[u8], width: usize, big: bool) -> Option<u64> {
    if width > 8 {
        return None;
    }
    let b = b.get(..width)?;
    let fold = |acc: u64, &byte: &u8| (acc << 8) | u64::from(byte);
    Some(if big {
        b.iter().fold(0, fold)
    } else {
        b.iter().rev().fold(0, fold)
    })
}

/// The 2-byte unsigned integer at offset `at` of `b`.
pub(crate) fn read_u16(b: &[u8], at: usize, big: bool) -> Option<u16> {
    let v: [u8; 2] = b.get(at..at.checked_add(2)?)?.try_into().ok()?;
    Some(if big {
        u16::from_be_bytes(v)
    } else {
        u16::from_le_bytes(v)
    })
}

/// The 4-byte unsigned integer at offset `at` of `b`.
pub(crate) fn read_u32(b: &[u8], at: usize, big: bool) -> Option<u32> {
    let v: [u8; 4] = b.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(if big {
        u32::from_be_bytes(v)
    } else {
        u32::from_le_bytes(v)
    })
}

/// Longest unsigned varint of a 64-bit value (Go's `binary.MaxVarintLen64`).
const MAX_VARINT_LEN: usize = 10;

/// Why [`uvarint`] could not decode a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum VarintError {
    /// The bytes ended inside the varint.
    Truncated,
    /// More than 64 bits: ten bytes without an end, or a tenth byte above 1.
    Overflow,
}

/// Decodes Go's unsigned varint (unsigned LEB128, at most 10 bytes) from the start of `b`;
/// returns the value and the number of bytes used.
///
/// Follows `binary.Uvarint` (<https://pkg.go.dev/encoding/binary#Uvarint>): non-minimal
/// encodings are accepted, and a value that overflows 64 bits (a tenth byte above 1, or no
/// end within ten bytes) is an error rather than a value with its high bits dropped.
pub(crate) fn uvarint(b: &[u8]) -> Result<(u64, usize), VarintError> {
    let mut value: u64 = 0;
    for (i, &c) in b.iter().take(MAX_VARINT_LEN).enumerate() {
        if c < 0x80 {
            if i == MAX_VARINT_LEN - 1 && c > 1 {
                return Err(VarintError::Overflow);
            }
            return Ok((value | (u64::from(c) << (7 * i)), i + 1));
        }
        value |= u64::from(c & 0x7f) << (7 * i);
    }
    if b.len() >= MAX_VARINT_LEN {
        Err(VarintError::Overflow)
    } else {
        Err(VarintError::Truncated)
    }
}

/// The NUL-terminated string at `off` of a string table, without the NUL. `None` when `off`
/// is outside the table or the string has no terminator in it.
pub(crate) fn cstr(table: &[u8], off: u64) -> Option<&[u8]> {
    let s = table.get(usize::try_from(off).ok()?..)?;
    let end = memchr::memchr(0, s)?;
    Some(&s[..end])
}

/// Appends `v` as an unsigned varint (what Go's `binary.AppendUvarint` writes).
#[cfg(test)]
pub(crate) fn uvarint_encode(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uvarint_decodes_like_go() {
        use VarintError::{Overflow, Truncated};
        assert_eq!(uvarint(&[0x08, 0xaa]), Ok((8, 1)));
        assert_eq!(uvarint(&[0xff, 0x02]), Ok((383, 2)));
        assert_eq!(uvarint(&[0x82, 0x03]), Ok((386, 2)));
        assert_eq!(uvarint(&[0x80, 0x00]), Ok((0, 2)), "non-minimal accepted");
        let max = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert_eq!(uvarint(&max), Ok((u64::MAX, 10)));
        // binary.Uvarint returns n < 0 here: the tenth byte carries bits 63 and up, and only
        // bit 63 fits.
        for tenth in [0x02, 0x03, 0x7f] {
            let mut overflow = [0xff; 10];
            overflow[9] = tenth;
            assert_eq!(uvarint(&overflow), Err(Overflow), "{tenth:#x}");
        }
        let mut low_bits_only = [0x80; 10];
        low_bits_only[9] = 0x02;
        assert_eq!(uvarint(&low_bits_only), Err(Overflow));
        assert_eq!(uvarint(&[0x80; 11]), Err(Overflow));
        assert_eq!(uvarint(&[0x80; 10]), Err(Overflow));
        assert_eq!(uvarint(&[0x80; 9]), Err(Truncated));
        assert_eq!(uvarint(&[0x80; 3]), Err(Truncated));
        assert_eq!(uvarint(&[]), Err(Truncated));
        for v in [
            0,
            1,
            127,
            128,
            300,
            16_383,
            16_384,
            1 << 40,
            1 << 63,
            u64::MAX,
        ] {
            let mut b = Vec::new();
            uvarint_encode(v, &mut b);
            assert_eq!(uvarint(&b), Ok((v, b.len())));
        }
    }

    #[test]
    fn fixed_width_reads_check_their_bytes() {
        let b = [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09];
        assert_eq!(read_uint(&b, 4, false), Some(0x0403_0201));
        assert_eq!(read_uint(&b, 4, true), Some(0x0102_0304));
        assert_eq!(read_uint(&b, 8, true), Some(0x0102_0304_0506_0708));
        assert_eq!(read_uint(&b, 9, true), None, "wider than 64 bits");
        assert_eq!(read_uint(&b[..3], 4, false), None, "short");
        assert_eq!(read_uint(&b, 0, false), Some(0));
        assert_eq!(read_u16(&b, 7, false), Some(0x0908));
        assert_eq!(read_u16(&b, 8, false), None);
        assert_eq!(read_u32(&b, 5, true), Some(0x0607_0809));
        assert_eq!(read_u32(&b, 6, true), None);
        assert_eq!(read_u32(&b, usize::MAX, true), None);
    }

    #[test]
    fn cstr_needs_a_terminator() {
        let t = b"\0libc.so.6\0tail";
        assert_eq!(cstr(t, 1), Some(&b"libc.so.6"[..]));
        assert_eq!(cstr(t, 0), Some(&b""[..]));
        assert_eq!(cstr(t, 11), None, "no NUL after it");
        assert_eq!(cstr(t, 100), None);
        assert_eq!(cstr(t, u64::MAX), None);
    }
}

//! Unsigned bit fields in a byte string, laid out as Redis' `BITFIELD`
//! (`u{size}` at `#index`): bit 0 is the high bit of byte 0. Shared by the
//! backends that emulate bit commands.

use crate::error::{Error, Result};

/// Highest bit offset accepted, as Redis (a 512 MiB string).
const MAX_BITS: u64 = 1 << 32;

/// Checks a field size and index, returning the field's first bit offset.
pub fn field_offset(index: u64, size: u8) -> Result<u64> {
    if !(1..=63).contains(&size) {
        return Err(Error::InvalidArgument(format!(
            "bit field size {size} is out of range 1..=63"
        )));
    }
    index
        .checked_mul(size as u64)
        .filter(|offset| offset + size as u64 <= MAX_BITS)
        .ok_or_else(|| {
            Error::InvalidArgument(format!("bit field #{index} of size {size} is out of range"))
        })
}

/// The first bit offset of each field, checked ([`field_offset`]).
pub fn offsets(indexes: &[u64], size: u8) -> Result<Vec<u64>> {
    indexes.iter().map(|i| field_offset(*i, size)).collect()
}

/// Reads the field at `offset` (missing bytes read as zero).
pub fn read(data: &[u8], offset: u64, size: u8) -> u64 {
    (0..size as u64).fold(0, |acc, i| {
        let bit = offset + i;
        let byte = data.get((bit / 8) as usize).copied().unwrap_or(0);
        (acc << 1) | u64::from((byte >> (7 - bit % 8)) & 1)
    })
}

/// Writes `value` into the field at `offset`, growing `data` as needed.
pub fn write(data: &mut Vec<u8>, offset: u64, size: u8, value: u64) {
    let end = ((offset + size as u64).div_ceil(8)) as usize;
    if data.len() < end {
        data.resize(end, 0);
    }
    for i in 0..size as u64 {
        let bit = offset + i;
        let mask = 1u8 << (7 - bit % 8);
        let on = (value >> (size as u64 - 1 - i)) & 1 == 1;
        let byte = &mut data[(bit / 8) as usize];
        *byte = if on { *byte | mask } else { *byte & !mask };
    }
}

/// Adds `by` to the field, saturating at `0` and `2^size - 1`; returns the new value.
pub fn incr(data: &mut Vec<u8>, offset: u64, size: u8, by: i64) -> u64 {
    let max = (1u64 << size) - 1;
    let old = read(data, offset, size) as i128;
    let new = (old + by as i128).clamp(0, max as i128) as u64;
    write(data, offset, size, new);
    new
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_redis() {
        let mut d = Vec::new();
        // BITFIELD k INCRBY u1 #0 1 -> first byte 0b1000_0000
        incr(&mut d, field_offset(0, 1).unwrap(), 1, 1);
        assert_eq!(d, vec![0x80]);
        // u4 #1 = 5 -> bits 4..8 = 0101
        write(&mut d, field_offset(1, 4).unwrap(), 4, 5);
        assert_eq!(d, vec![0x85]);
        assert_eq!(read(&d, 4, 4), 5);
        assert_eq!(read(&d, 1000, 8), 0);
    }

    #[test]
    fn saturates() {
        let mut d = Vec::new();
        assert_eq!(incr(&mut d, 0, 3, 100), 7);
        assert_eq!(incr(&mut d, 0, 3, -100), 0);
        assert_eq!(incr(&mut d, 0, 63, i64::MAX), i64::MAX as u64);
        assert!(field_offset(0, 0).is_err());
        assert!(field_offset(0, 64).is_err());
        assert!(field_offset(u64::MAX, 8).is_err());
        assert!(field_offset(1 << 40, 1).is_err());
    }
}

//! Compressed values (`compress=gzip|zlib|zstd`, `compress_min=1KiB`).
//!
//! The envelope's flags say how a payload is stored (bits 1–2: 0 raw,
//! 1 gzip, 2 zlib, 3 zstd), so a cache reads values whatever it writes
//! with; only the codecs compiled in can be read (another one reads as a
//! miss). Decompression stops at [`DECODE_LIMIT`](super::DECODE_LIMIT): a
//! value that inflates beyond it (a zip bomb) is a miss.

use crate::error::BoxError;

/// How values are compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Compression {
    /// gzip (RFC 1952), feature `compress`.
    Gzip,
    /// zlib (RFC 1950), feature `compress`.
    Zlib,
    /// Zstandard, feature `zstd`.
    Zstd,
}

/// Values smaller than this stay raw unless told otherwise
/// (`compress_min`): compressing them costs more than it saves.
pub const DEFAULT_COMPRESS_MIN: usize = 1024;

impl Compression {
    /// The names of `compress=`.
    pub const NAMES: &'static [&'static str] = &["gzip", "zlib", "zstd"];

    /// The compression named `name`.
    pub fn from_name(name: &str) -> Option<Compression> {
        Some(match name.trim().to_ascii_lowercase().as_str() {
            "gzip" => Compression::Gzip,
            "zlib" => Compression::Zlib,
            "zstd" => Compression::Zstd,
            _ => return None,
        })
    }

    /// Its name in setup URLs.
    pub fn name(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Zlib => "zlib",
            Compression::Zstd => "zstd",
        }
    }

    /// The id in the envelope's flags.
    pub(crate) fn id(self) -> u8 {
        match self {
            Compression::Gzip => 1,
            Compression::Zlib => 2,
            Compression::Zstd => 3,
        }
    }

    /// The cargo feature that compiles it in, if it is not.
    pub fn missing_feature(self) -> Option<&'static str> {
        match self {
            Compression::Gzip | Compression::Zlib if !cfg!(feature = "compress") => {
                Some("compress")
            }
            Compression::Zstd if !cfg!(feature = "zstd") => Some("zstd"),
            _ => None,
        }
    }

    /// The compressed form of `data`.
    pub(crate) fn compress(self, data: &[u8]) -> Result<Vec<u8>, BoxError> {
        match self {
            #[cfg(feature = "compress")]
            Compression::Gzip => Ok(read_all(flate2::read::GzEncoder::new(
                data,
                flate2::Compression::fast(),
            ))?),
            #[cfg(feature = "compress")]
            Compression::Zlib => Ok(read_all(flate2::read::ZlibEncoder::new(
                data,
                flate2::Compression::fast(),
            ))?),
            #[cfg(feature = "zstd")]
            Compression::Zstd => Ok(zstd::bulk::compress(data, 3)?),
            #[allow(unreachable_patterns)]
            other => {
                let _ = data;
                Err(format!(
                    "compress={} needs the cargo feature `{}`",
                    other.name(),
                    other.missing_feature().unwrap_or("?")
                )
                .into())
            }
        }
    }
}

/// Why a payload could not be decompressed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Inflate {
    /// A compression this build cannot read (or an unknown id).
    Unknown,
    /// Broken data, or more than the limit once inflated.
    #[cfg_attr(not(any(feature = "compress", feature = "zstd")), allow(dead_code))]
    Corrupt,
}

/// Inflates a payload stored with compression `id`, at most `limit` bytes.
pub(crate) fn decompress(id: u8, data: &[u8], limit: usize) -> Result<Vec<u8>, Inflate> {
    match id {
        #[cfg(feature = "compress")]
        1 => read_bounded(flate2::read::GzDecoder::new(data), limit),
        #[cfg(feature = "compress")]
        2 => read_bounded(flate2::read::ZlibDecoder::new(data), limit),
        #[cfg(feature = "zstd")]
        3 => match zstd::stream::read::Decoder::new(data) {
            Ok(decoder) => read_bounded(decoder, limit),
            Err(_) => Err(Inflate::Corrupt),
        },
        _ => {
            let _ = (data, limit);
            Err(Inflate::Unknown)
        }
    }
}

/// Everything `reader` yields (an encoder or a decoder over a slice).
#[cfg(any(feature = "compress", feature = "zstd"))]
fn read_all(mut reader: impl std::io::Read) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    reader.read_to_end(&mut out)?;
    Ok(out)
}

/// What a decoder yields, refused past `limit` bytes.
#[cfg(any(feature = "compress", feature = "zstd"))]
fn read_bounded(reader: impl std::io::Read, limit: usize) -> Result<Vec<u8>, Inflate> {
    let out = read_all(reader.take(limit as u64 + 1)).map_err(|_| Inflate::Corrupt)?;
    if out.len() > limit {
        return Err(Inflate::Corrupt);
    }
    Ok(out)
}

#[cfg(all(test, feature = "compress"))]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_bombs() {
        let data = b"a value that repeats, a value that repeats, a value that repeats".repeat(64);
        for compression in [Compression::Gzip, Compression::Zlib] {
            let packed = compression.compress(&data).unwrap();
            assert!(packed.len() < data.len() / 10, "{compression:?}");
            assert_eq!(
                decompress(compression.id(), &packed, 1 << 20).unwrap(),
                data
            );
            // Inflating past the limit is refused, whatever the data says.
            assert_eq!(
                decompress(compression.id(), &packed, data.len() - 1),
                Err(Inflate::Corrupt)
            );
            // A million zeros in ~1 KiB: refused at a 64 KiB limit.
            let bomb = compression.compress(&vec![0u8; 1 << 20]).unwrap();
            assert!(bomb.len() < 8 * 1024, "{}", bomb.len());
            assert_eq!(
                decompress(compression.id(), &bomb, 64 << 10),
                Err(Inflate::Corrupt)
            );
            // Broken data never panics.
            for cut in 0..packed.len().min(64) {
                let _ = decompress(compression.id(), &packed[..cut], 1 << 20);
            }
        }
        assert_eq!(decompress(9, b"x", 10), Err(Inflate::Unknown));
    }
}

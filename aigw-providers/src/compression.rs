//! Incremental decoding of gzip-, deflate- and brotli-encoded upstream bodies.
//!
//! Translators that read an upstream body (to translate it or only to sniff usage)
//! must see plain bytes even when the upstream compressed its response. A
//! [`Decompressor`] takes the body chunk by chunk, in any split, and returns the plain
//! bytes available so far.
//!
//! ```
//! use aigw_providers::compression::{Decompressor, Encoding};
//! use std::io::Write;
//! let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
//! gz.write_all(b"data: hello\n\n").unwrap();
//! let packed = gz.finish().unwrap();
//! let mut d = Decompressor::new(Encoding::Gzip);
//! let mut plain = d.decompress(&packed[..5]).unwrap();
//! plain.extend(d.decompress(&packed[5..]).unwrap());
//! plain.extend(d.finish().unwrap());
//! assert_eq!(plain, b"data: hello\n\n");
//! ```

use aigw_core::Error;
use http::HeaderMap;
use std::io::Write;

/// A `content-encoding` this module can decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// No encoding.
    Identity,
    /// `gzip` / `x-gzip`.
    Gzip,
    /// `deflate` (zlib-wrapped, per RFC 9110).
    Deflate,
    /// `br`.
    Brotli,
}

impl Encoding {
    /// The encoding named by a response's `content-encoding`; unknown encodings are
    /// reported as an error naming them.
    pub fn from_headers(headers: &HeaderMap) -> Result<Self, Error> {
        let Some(v) = headers.get(http::header::CONTENT_ENCODING) else {
            return Ok(Self::Identity);
        };
        let v = v.to_str().unwrap_or("").trim().to_ascii_lowercase();
        Ok(match v.as_str() {
            "" | "identity" => Self::Identity,
            "gzip" | "x-gzip" => Self::Gzip,
            "deflate" => Self::Deflate,
            "br" => Self::Brotli,
            other => {
                return Err(Error::malformed_upstream(format!(
                    "unsupported content-encoding {other:?}"
                )));
            }
        })
    }

    /// Whether bytes need decoding.
    pub const fn is_identity(self) -> bool {
        matches!(self, Self::Identity)
    }
}

enum Inner {
    Identity,
    Gzip(Box<flate2::write::MultiGzDecoder<Vec<u8>>>),
    Deflate(Box<flate2::write::ZlibDecoder<Vec<u8>>>),
    Brotli(Box<brotli::DecompressorWriter<Vec<u8>>>),
}

/// A streaming decoder for one response body.
pub struct Decompressor {
    inner: Inner,
}

impl std::fmt::Debug for Decompressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decompressor").finish_non_exhaustive()
    }
}

fn broken(e: std::io::Error) -> Error {
    Error::malformed_upstream(format!("cannot decode compressed upstream body: {e}"))
}

impl Decompressor {
    /// A decoder for the given encoding.
    pub fn new(encoding: Encoding) -> Self {
        let inner = match encoding {
            Encoding::Identity => Inner::Identity,
            Encoding::Gzip => Inner::Gzip(Box::new(flate2::write::MultiGzDecoder::new(Vec::new()))),
            Encoding::Deflate => {
                Inner::Deflate(Box::new(flate2::write::ZlibDecoder::new(Vec::new())))
            }
            Encoding::Brotli => {
                Inner::Brotli(Box::new(brotli::DecompressorWriter::new(Vec::new(), 4096)))
            }
        };
        Self { inner }
    }

    /// Decodes a chunk; returns the plain bytes it completed.
    pub fn decompress(&mut self, chunk: &[u8]) -> Result<Vec<u8>, Error> {
        match &mut self.inner {
            Inner::Identity => Ok(chunk.to_vec()),
            Inner::Gzip(d) => {
                d.write_all(chunk).map_err(broken)?;
                d.flush().map_err(broken)?;
                Ok(std::mem::take(d.get_mut()))
            }
            Inner::Deflate(d) => {
                d.write_all(chunk).map_err(broken)?;
                d.flush().map_err(broken)?;
                Ok(std::mem::take(d.get_mut()))
            }
            Inner::Brotli(d) => {
                d.write_all(chunk).map_err(broken)?;
                d.flush().map_err(broken)?;
                Ok(std::mem::take(d.get_mut()))
            }
        }
    }

    /// Ends the body; returns any remaining plain bytes.
    pub fn finish(&mut self) -> Result<Vec<u8>, Error> {
        match &mut self.inner {
            Inner::Identity => Ok(Vec::new()),
            Inner::Gzip(d) => {
                d.try_finish().map_err(broken)?;
                Ok(std::mem::take(d.get_mut()))
            }
            Inner::Deflate(d) => {
                d.try_finish().map_err(broken)?;
                Ok(std::mem::take(d.get_mut()))
            }
            Inner::Brotli(d) => {
                d.flush().map_err(broken)?;
                Ok(std::mem::take(d.get_mut()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const PLAIN: &[u8] =
        b"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":1}}\n\ndata: [DONE]\n\n";

    fn gzip(b: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(b).unwrap();
        e.finish().unwrap()
    }

    fn br(b: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        {
            let mut w = brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
            w.write_all(b).unwrap();
        }
        out
    }

    fn run(enc: Encoding, packed: &[u8], cut: usize) -> Vec<u8> {
        let mut d = Decompressor::new(enc);
        let cut = cut.min(packed.len());
        let mut out = d.decompress(&packed[..cut]).unwrap();
        out.extend(d.decompress(&packed[cut..]).unwrap());
        out.extend(d.finish().unwrap());
        out
    }

    #[test]
    fn header_parsing() {
        let mut h = HeaderMap::new();
        assert_eq!(Encoding::from_headers(&h).unwrap(), Encoding::Identity);
        h.insert("content-encoding", "BR".parse().unwrap());
        assert_eq!(Encoding::from_headers(&h).unwrap(), Encoding::Brotli);
        h.insert("content-encoding", "zstd".parse().unwrap());
        assert!(Encoding::from_headers(&h).is_err());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut d = Decompressor::new(Encoding::Gzip);
        assert!(d.decompress(b"definitely not gzip").is_err() || d.finish().is_err());
    }

    proptest! {
        #[test]
        fn gzip_any_split(cut in 0usize..200) {
            prop_assert_eq!(run(Encoding::Gzip, &gzip(PLAIN), cut), PLAIN);
        }

        #[test]
        fn brotli_any_split(cut in 0usize..200) {
            prop_assert_eq!(run(Encoding::Brotli, &br(PLAIN), cut), PLAIN);
        }
    }
}

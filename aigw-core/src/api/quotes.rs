//! Finding the end of a JSON string, shared by the request sniff's walk
//! ([`super::request_scan`]) and the response body's scan ([`super::final_body`]).

/// Finds the next `"` or `\`. Built once per body: `memchr::memchr2` sets up its
/// searcher on every call, which cost more than most of the strings it searched.
pub(crate) enum Quotes {
    #[cfg(target_arch = "x86_64")]
    Avx2(memchr::arch::x86_64::avx2::memchr::Two),
    Any(memchr::arch::all::memchr::Two),
}

impl Quotes {
    pub(crate) fn new() -> Self {
        #[cfg(target_arch = "x86_64")]
        if let Some(two) = memchr::arch::x86_64::avx2::memchr::Two::new(b'"', b'\\') {
            return Self::Avx2(two);
        }
        Self::Any(memchr::arch::all::memchr::Two::new(b'"', b'\\'))
    }

    pub(super) fn find(&self, s: &[u8]) -> Option<usize> {
        match self {
            #[cfg(target_arch = "x86_64")]
            Self::Avx2(two) => two.find(s),
            Self::Any(two) => two.find(s),
        }
    }
}

/// Where the first `"` or `\` of the eight bytes at `s[i..]` is, when they hold one:
/// most strings of a body (keys, roles) close within a word, found so without a call.
/// `None` when they hold neither or fewer than eight bytes are left.
#[inline(always)]
pub(super) fn in_word(s: &[u8], i: usize) -> Option<usize> {
    const ONES: u64 = u64::MAX / 255;
    const HIGH: u64 = ONES << 7;
    let word = <[u8; 8]>::try_from(s.get(i..i.checked_add(8)?)?).ok()?;
    let w = u64::from_le_bytes(word);
    let q = w ^ (ONES * u64::from(b'"'));
    let b = w ^ (ONES * u64::from(b'\\'));
    // A zero byte of `q` or `b` is a match; the lowest flagged byte is exact.
    let m = ((q.wrapping_sub(ONES) & !q) | (b.wrapping_sub(ONES) & !b)) & HIGH;
    (m != 0).then(|| (m.trailing_zeros() / 8) as usize)
}

/// How far [`near`] looks before a string is left to the searcher: the keys and
/// short values of a body close within it.
const NEAR: usize = 32;

/// Where the first `"` or `\` at or after `s[i]` is, when it is within the next
/// [`NEAR`] bytes: a word at a time, which for strings this short costs less than a
/// call to the searcher. `None` when none is, or the body ends first.
#[inline(always)]
pub(super) fn near(s: &[u8], i: usize) -> Option<usize> {
    let mut at = 0;
    while at < NEAR {
        if let Some(k) = in_word(s, i.checked_add(at)?) {
            return Some(at + k);
        }
        at += 8;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_word_check_finds_the_first_quote_or_backslash() {
        assert_eq!(in_word(b"abc\"defgh", 0), Some(3));
        assert_eq!(in_word(b"x\\\"abcdefg", 0), Some(1));
        assert_eq!(in_word(b"abcdefgh\"", 0), None);
        assert_eq!(in_word(b"ab\"", 0), None, "fewer than eight bytes");
        assert_eq!(in_word(b"..abcdefg\"", 2), Some(7));
        assert_eq!(in_word(b"\xff\xfe\"\x00\x00\x00\x00\x00", 0), Some(2));
        let long = b"0123456789abcdef0123456789ab\"cdefghijklmnop\"";
        assert_eq!(near(long, 0), Some(28));
        assert_eq!(near(long, 20), Some(8));
        assert_eq!(near(long, 29), None, "the body ends within the second word");
        assert_eq!(near(long, 4), Some(24));
        assert_eq!(near(&[b'a'; 64], 0), None);
        assert_eq!(near(b"abcdefghijk\"", 0), None, "the last word is short");
        let q = Quotes::new();
        assert_eq!(q.find(b"abc\\\""), Some(3));
        assert_eq!(q.find(&[b'a'; 100]), None);
    }
}

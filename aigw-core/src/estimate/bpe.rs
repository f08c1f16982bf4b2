//! OpenAI's byte-pair encodings `o200k_base` and `cl100k_base`, for counting tokens.
//!
//! A count equals the length of tiktoken's `encode_ordinary(text)`: the text is split
//! by the encoding's pre-tokenization pattern, a piece that is itself a token counts
//! one, and any other piece is merged the way tiktoken merges it — the adjacent pair
//! whose joined bytes are the lowest-ranked token first, the leftmost on a tie — until
//! no pair joins into a token; its parts are counted.
//!
//! The tables are OpenAI's published rank files, embedded as written by
//! `scripts/tiktoken-ranks.py` (`data/*.ranks`: each token's length byte and bytes, in
//! rank order; a test checks them against the SHA-256 tiktoken pins). Built, both
//! encodings take ≈ 4 MiB of memory: the token bytes stay in the binary's read-only
//! data, an open-addressed table of ranks finds a token by its bytes, and a direct
//! table holds the two-byte tokens every merge starts from.

use regex_automata::meta::Regex;
use regex_automata::{Anchored, Input};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::OnceLock;

/// `o200k_base`'s pre-tokenization, as tiktoken writes it but with its one negative
/// look-ahead (`\s+(?!\S)`) split out: see [`Splits`].
const O200K_PATTERN: &str = concat!(
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    r"|\p{N}{1,3}",
    r"| ?[^\s\p{L}\p{N}]+[\r\n/]*",
    r"|\s*[\r\n]+",
    r"|\s+$",
);

/// `cl100k_base`'s pre-tokenization, split the same way.
const CL100K_PATTERN: &str = concat!(
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}",
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+$",
);

/// Whitespace followed by one more whitespace character, which the split drops from
/// the piece: tiktoken's `\s+(?!\S)`, whitespace not followed by a non-space.
const LOOKAHEAD_PATTERN: &str = r"\s+\s";

/// Any run of whitespace, tried last.
const WHITESPACE_PATTERN: &str = r"\s+";

/// No rank: the bytes are not a token.
const NONE: u32 = u32::MAX;

/// Pieces up to this many bytes are merged by scanning for the lowest rank (tiktoken's
/// own way, fastest for short words); longer ones with a heap, so a prompt of one long
/// run of letters costs `n log n`, not `n²`. (Text in CJK scripts, whose words are long
/// runs of three-byte characters, counted fastest with the limit between 32 and 64.)
const SCAN_LIMIT: usize = 32;

/// One encoding: its tokens, a table from bytes to rank, and its pre-tokenizer.
pub(crate) struct Encoding {
    /// The rank file: each token's length byte followed by its bytes, in rank order.
    data: &'static [u8],
    /// Where each token's bytes start in `data`, by rank; its length is the byte before.
    starts: Vec<u32>,
    /// Open-addressed slots holding rank + 1; 0 is an empty slot.
    slots: Vec<u32>,
    /// The rank of every two-byte token, by its bytes read as a big-endian `u16`
    /// ([`NONE`] if those two bytes are not one): the first pairs of every merge.
    pairs: Vec<u32>,
    /// Right shift that takes a hash to a slot index (`64 - log2(slots.len())`).
    shift: u32,
    /// The longest token, in bytes: longer byte strings are not looked up.
    max_len: usize,
    /// The pre-tokenizer: the encoding's pattern, [`LOOKAHEAD_PATTERN`], then
    /// [`WHITESPACE_PATTERN`], as three patterns of one regex.
    pre: Regex,
}

impl std::fmt::Debug for Encoding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoding")
            .field("tokens", &self.starts.len())
            .finish_non_exhaustive()
    }
}

/// `o200k_base`, built on first use; `None` only if its embedded table were corrupt.
pub(crate) fn o200k() -> Option<&'static Encoding> {
    static ENCODING: OnceLock<Option<Encoding>> = OnceLock::new();
    ENCODING
        .get_or_init(|| Encoding::new(include_bytes!("../../data/o200k_base.ranks"), O200K_PATTERN))
        .as_ref()
}

/// `cl100k_base`, built on first use.
pub(crate) fn cl100k() -> Option<&'static Encoding> {
    static ENCODING: OnceLock<Option<Encoding>> = OnceLock::new();
    ENCODING
        .get_or_init(|| {
            Encoding::new(
                include_bytes!("../../data/cl100k_base.ranks"),
                CL100K_PATTERN,
            )
        })
        .as_ref()
}

/// Reused buffers of one count.
#[derive(Default)]
struct Scratch {
    /// The scan's parts: start offset and the rank of joining with the next part.
    parts: Vec<(usize, u32)>,
    /// The heap merge's links and ranks, by a part's start offset.
    next: Vec<usize>,
    prev: Vec<usize>,
    rank: Vec<u32>,
    heap: BinaryHeap<Reverse<(u32, usize)>>,
}

impl Encoding {
    /// Builds the table from a rank file; `None` if the file is malformed or the
    /// pattern does not compile (neither happens with the embedded files, which tests
    /// check; the caller then falls back to the heuristic rather than fail).
    fn new(data: &'static [u8], pattern: &str) -> Option<Self> {
        let pre = Regex::new_many(&[pattern, LOOKAHEAD_PATTERN, WHITESPACE_PATTERN]);
        let pre = match pre {
            Ok(pre) => pre,
            Err(e) => {
                tracing::warn!(error = %e, "tokenizer pattern did not compile; estimating by bytes");
                return None;
            }
        };
        let starts = token_starts(data)?;
        let max_len = starts
            .iter()
            .map(|&s| usize::from(data[s as usize - 1]))
            .max()?;
        let bits = (starts.len() * 2).next_power_of_two().trailing_zeros();
        let mut encoding = Self {
            data,
            starts,
            slots: vec![0; 1 << bits],
            pairs: vec![NONE; 1 << 16],
            shift: 64 - bits,
            max_len,
            pre,
        };
        encoding.fill_slots()?;
        Some(encoding)
    }

    /// Puts every rank in its slot; `None` if a token appears twice.
    fn fill_slots(&mut self) -> Option<()> {
        let mask = self.slots.len() - 1;
        for rank in 0..self.starts.len() as u32 {
            let token = self.token(rank);
            let mut i = self.slot(token);
            while self.slots[i] != 0 {
                if self.token(self.slots[i] - 1) == token {
                    return None;
                }
                i = (i + 1) & mask;
            }
            self.slots[i] = rank + 1;
            if let &[a, b] = token {
                self.pairs[usize::from(u16::from_be_bytes([a, b]))] = rank;
            }
        }
        Some(())
    }

    /// The bytes of the token of `rank`.
    fn token(&self, rank: u32) -> &'static [u8] {
        let start = self.starts[rank as usize] as usize;
        let data: &'static [u8] = self.data;
        &data[start..start + usize::from(data[start - 1])]
    }

    /// The first slot to probe for `bytes`.
    fn slot(&self, bytes: &[u8]) -> usize {
        (hash(bytes) >> self.shift) as usize
    }

    /// The rank of the two bytes at `at` as one token, or [`NONE`].
    fn pair(&self, piece: &[u8], at: usize) -> u32 {
        self.pairs[usize::from(u16::from_be_bytes([piece[at], piece[at + 1]]))]
    }

    /// The rank of the token whose bytes are `bytes`, or [`NONE`].
    fn rank(&self, bytes: &[u8]) -> u32 {
        if bytes.len() > self.max_len {
            return NONE;
        }
        let mask = self.slots.len() - 1;
        let mut i = self.slot(bytes);
        loop {
            let entry = self.slots[i];
            if entry == 0 {
                return NONE;
            }
            if self.token(entry - 1) == bytes {
                return entry - 1;
            }
            i = (i + 1) & mask;
        }
    }

    /// Tokens in `text`, as tiktoken would encode it.
    pub(crate) fn count(&self, text: &str) -> u64 {
        let mut scratch = Scratch::default();
        Splits::new(&self.pre, text)
            .map(|piece| self.count_piece(piece.as_bytes(), &mut scratch) as u64)
            .sum()
    }

    /// Tokens in one pre-tokenized piece.
    fn count_piece(&self, piece: &[u8], scratch: &mut Scratch) -> usize {
        if piece.len() <= 1 {
            // Every single byte is a token in both encodings.
            return piece.len();
        }
        if self.rank(piece) != NONE {
            return 1;
        }
        if piece.len() <= SCAN_LIMIT {
            self.merge_scan(piece, &mut scratch.parts)
        } else {
            self.merge_heap(piece, scratch)
        }
    }

    /// tiktoken's merge: find the lowest-ranked pair by a scan, join it, repeat.
    fn merge_scan(&self, piece: &[u8], parts: &mut Vec<(usize, u32)>) -> usize {
        parts.clear();
        parts.extend((0..piece.len() - 1).map(|i| (i, self.pair(piece, i))));
        parts.push((piece.len() - 1, NONE));
        parts.push((piece.len(), NONE));
        // The rank of joining part `i` with part `i + 1`, read before `i + 1` is removed
        // (so the joined part ends where part `i + 3` starts).
        let joined = |parts: &[(usize, u32)], i: usize| match parts.get(i + 3) {
            Some(&(end, _)) => self.rank(&piece[parts[i].0..end]),
            None => NONE,
        };
        loop {
            let mut min = (NONE, 0);
            for (i, &(_, rank)) in parts[..parts.len() - 1].iter().enumerate() {
                if rank < min.0 {
                    min = (rank, i);
                }
            }
            if min.0 == NONE {
                return parts.len() - 1;
            }
            let i = min.1;
            if i > 0 {
                parts[i - 1].1 = joined(parts, i - 1);
            }
            parts[i].1 = joined(parts, i);
            parts.remove(i + 1);
        }
    }

    /// The same merge, in the same order, with a heap of candidate pairs keyed by
    /// (rank, start): an entry is current while its part's rank still equals it (a
    /// part's bytes only grow, and no two byte strings share a rank).
    fn merge_heap(&self, piece: &[u8], s: &mut Scratch) -> usize {
        let n = piece.len();
        s.next.clear();
        s.next.extend(1..=n);
        s.prev.clear();
        s.prev.extend((0..n).map(|i| i.wrapping_sub(1)));
        s.rank.clear();
        s.heap.clear();
        for i in 0..n {
            let rank = if i + 1 < n { self.pair(piece, i) } else { NONE };
            s.rank.push(rank);
            if rank != NONE {
                s.heap.push(Reverse((rank, i)));
            }
        }
        let mut parts = n;
        while let Some(Reverse((rank, i))) = s.heap.pop() {
            if s.rank[i] != rank {
                continue;
            }
            // Join part `i` with the next one.
            let next = s.next[i];
            let after = s.next[next];
            s.next[i] = after;
            if after < n {
                s.prev[after] = i;
            }
            s.rank[next] = NONE;
            parts -= 1;
            self.rerank(piece, s, i);
            let prev = s.prev[i];
            if prev != usize::MAX {
                self.rerank(piece, s, prev);
            }
        }
        parts
    }

    /// Recomputes the rank of joining part `i` with its next part, queueing it.
    fn rerank(&self, piece: &[u8], s: &mut Scratch, i: usize) {
        let next = s.next[i];
        let rank = match s.next.get(next) {
            Some(&end) => self.rank(&piece[i..end]),
            None => NONE,
        };
        s.rank[i] = rank;
        if rank != NONE {
            s.heap.push(Reverse((rank, i)));
        }
    }
}

/// Where each token starts in a rank file; `None` if a length runs past its end or
/// a token is empty.
fn token_starts(data: &[u8]) -> Option<Vec<u32>> {
    let mut starts = Vec::with_capacity(data.len() / 7);
    let mut at = 0usize;
    while at < data.len() {
        let len = usize::from(data[at]);
        let start = at + 1;
        if len == 0 || start + len > data.len() {
            return None;
        }
        starts.push(u32::try_from(start).ok()?);
        at = start + len;
    }
    Some(starts)
}

/// FxHash over eight-byte words: a multiply and a rotate a word, good enough spread
/// in the high bits, which pick the slot.
fn hash(bytes: &[u8]) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mix = |h: u64, w: u64| (h.rotate_left(5) ^ w).wrapping_mul(K);
    let mut h = bytes.len() as u64;
    let mut words = bytes.chunks_exact(8);
    for w in &mut words {
        let mut word = [0u8; 8];
        word.copy_from_slice(w);
        h = mix(h, u64::from_le_bytes(word));
    }
    let rest = words.remainder();
    if !rest.is_empty() {
        // Byte by byte: a copy of a variable-length tail is a call to memcpy, which
        // cost more than the hash itself for the two- to seven-byte keys most merges try.
        let word = rest
            .iter()
            .rev()
            .fold(0u64, |w, &b| (w << 8) | u64::from(b));
        h = mix(h, word);
    }
    h
}

/// The pre-tokenizer's pieces. The regex has no look-ahead, so tiktoken's
/// `\s+(?!\S)` is its second pattern, `\s+\s`, whose last character is dropped from
/// the piece: the same split, as the Rust `bpe-openai` crate first did it.
struct Splits<'a> {
    pre: &'a Regex,
    text: &'a str,
    at: usize,
}

impl<'a> Splits<'a> {
    fn new(pre: &'a Regex, text: &'a str) -> Self {
        Self { pre, text, at: 0 }
    }
}

impl<'a> Iterator for Splits<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let rest = self.text.get(self.at..)?;
        let found = self.pre.find(Input::new(rest).anchored(Anchored::Yes))?;
        let start = self.at;
        let mut end = start + found.end();
        if found.pattern().as_usize() == 1 {
            let last = rest[..found.end()]
                .chars()
                .next_back()
                .map_or(0, char::len_utf8);
            if found.end() > last {
                end -= last;
            }
        }
        if end == start {
            return None;
        }
        self.at = end;
        Some(&self.text[start..end])
    }
}

#[cfg(test)]
mod tests;

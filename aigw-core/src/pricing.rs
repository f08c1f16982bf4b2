//! The price table: what a request cost, in integer money, from its token usage.
//!
//! Prices come from a file the operator supplies (`--pricing-file`, YAML or JSON); no
//! price is built into the gateway. Each entry prices one model (optionally only on one
//! provider or one backend) in USD per million tokens, as decimal strings parsed
//! exactly (`"0.15"`, `"2.5"`, `"3"`; at most six decimals), from an optional instant
//! on (`effective_from`), so a price change applies to requests that start after it and
//! not to those before:
//!
//! ```yaml
//! prices:
//!   - model: gpt-4o-mini
//!     input: "0.15"
//!     cached_input: "0.075"
//!     output: "0.60"
//!   - model: gpt-4o-mini
//!     effective_from: "2027-01-01T00:00:00Z"
//!     input: "0.20"
//!     output: "0.80"
//! ```
//!
//! # Exactness and rounding
//! A price of `P` USD per million tokens is kept as `P × 10⁶` pico-dollars per token
//! (an integer), so a request's cost is an exact integer sum in pico-dollars
//! ([`Cost::pico`]). It is rounded **up** to whole micro-dollars once per request
//! ([`Cost::micros`]), the unit budgets and spend counters add up; a recorded spend is
//! therefore never below the price table times the usage and at most one micro-dollar
//! above it per request.
//!
//! # Which tokens cost what
//! [`TokenUsage::input`] includes cached and cache-write tokens; they are billed at
//! `cached_input` and `cache_write` (each defaulting to `input`) and the rest at
//! `input`. [`TokenUsage::output`] includes reasoning tokens, billed at `reasoning`
//! (defaulting to `output`).

use crate::Result;
use crate::reloadable::{FileBacked, Loadable, invalid};
use crate::usage::TokenUsage;
use serde::Deserialize;
use std::time::{SystemTime, UNIX_EPOCH};

/// Pico-dollars per micro-dollar.
const PICO_PER_MICRO: u128 = 1_000_000;

/// The prices of one entry, in pico-dollars per token (= micro-dollars per million
/// tokens).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Prices {
    /// Uncached input tokens.
    pub input: u64,
    /// Output tokens (reasoning excluded).
    pub output: u64,
    /// Input tokens read from the provider's prompt cache.
    pub cached_input: u64,
    /// Input tokens written to the provider's prompt cache.
    pub cache_write: u64,
    /// Reasoning tokens.
    pub reasoning: u64,
}

/// A request's cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, PartialOrd, Ord)]
pub struct Cost {
    /// Exact, in pico-dollars (USD × 10⁻¹²).
    pub pico: u128,
}

impl Cost {
    /// Rounded up to whole micro-dollars (USD × 10⁻⁶).
    pub fn micros(self) -> u64 {
        u64::try_from(self.pico.div_ceil(PICO_PER_MICRO)).unwrap_or(u64::MAX)
    }
}

impl Prices {
    /// The exact cost of `usage` at these prices.
    pub fn cost(&self, usage: &TokenUsage) -> Cost {
        let cached = u128::from(usage.cached_input.unwrap_or(0));
        let written = u128::from(usage.cache_creation_input.unwrap_or(0));
        let input = u128::from(usage.input.unwrap_or(0));
        let uncached = input.saturating_sub(cached + written);
        let output = u128::from(usage.output.unwrap_or(0));
        let reasoning = u128::from(usage.reasoning.unwrap_or(0)).min(output);
        let pico = uncached * u128::from(self.input)
            + cached * u128::from(self.cached_input)
            + written * u128::from(self.cache_write)
            + (output - reasoning) * u128::from(self.output)
            + reasoning * u128::from(self.reasoning);
        Cost { pico }
    }
}

/// One priced model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceEntry {
    /// The model name; a trailing `*` matches every name with that prefix.
    pub model: String,
    /// Only for backends of this provider (`openai`, `anthropic`, `aws.bedrock`, …).
    pub provider: Option<String>,
    /// Only for this backend (`namespace/name`).
    pub backend: Option<String>,
    /// Seconds since the Unix epoch from which the entry applies (0: always).
    pub effective_from: u64,
    /// The prices.
    pub prices: Prices,
}

impl PriceEntry {
    /// How well the entry fits: `None` when it does not apply, else a rank where
    /// higher is more specific (backend over provider over any; exact model over a
    /// longer prefix over a shorter one).
    fn rank(&self, q: &PriceQuery<'_>) -> Option<(u8, usize)> {
        if self.effective_from > q.at {
            return None;
        }
        let model = match self.model.strip_suffix('*') {
            Some(prefix) => q.model.starts_with(prefix).then_some(prefix.len())?,
            None => (self.model == q.model).then_some(usize::MAX)?,
        };
        let scope = match (&self.backend, &self.provider) {
            (Some(b), _) if q.backend != Some(b.as_str()) => return None,
            (_, Some(p)) if q.provider != Some(p.as_str()) => return None,
            (Some(_), _) => 2,
            (None, Some(_)) => 1,
            (None, None) => 0,
        };
        Some((scope, model))
    }
}

/// What a price is looked up for.
#[derive(Debug, Clone, Copy)]
pub struct PriceQuery<'a> {
    /// The model billed (the backend's model name after any override).
    pub model: &'a str,
    /// The backend's provider name.
    pub provider: Option<&'a str>,
    /// The backend (`namespace/name`).
    pub backend: Option<&'a str>,
    /// When the request started, in seconds since the Unix epoch.
    pub at: u64,
}

/// An immutable table of prices.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PriceTable {
    entries: Vec<PriceEntry>,
}

impl PriceTable {
    /// A table of these entries.
    pub fn new(entries: Vec<PriceEntry>) -> Self {
        Self { entries }
    }

    /// The entries, in file order.
    pub fn entries(&self) -> &[PriceEntry] {
        &self.entries
    }

    /// The prices in force for `q`: the most specific matching entry, and among equally
    /// specific ones the latest whose `effective_from` is not after `q.at`.
    pub fn lookup(&self, q: &PriceQuery<'_>) -> Option<&PriceEntry> {
        self.entries
            .iter()
            .filter_map(|e| e.rank(q).map(|r| (r, e.effective_from, e)))
            .max_by_key(|(r, from, _)| (*r, *from))
            .map(|(_, _, e)| e)
    }

    /// Parses a pricing file's text (YAML, or JSON which is YAML too).
    pub fn parse(text: &str, origin: &str) -> Result<Self> {
        let invalid = |m| invalid(<Self as Loadable>::KIND, origin, m);
        let file: PricingFile = serde_saphyr::from_str(text)
            .map_err(|e| invalid(format!("not a pricing file: {e}")))?;
        let mut entries = Vec::with_capacity(file.prices.len());
        for (i, raw) in file.prices.into_iter().enumerate() {
            entries.push(
                raw.compile()
                    .map_err(|m| invalid(format!("prices[{i}]: {m}")))?,
            );
        }
        Ok(Self { entries })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PricingFile {
    #[serde(default)]
    prices: Vec<RawEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    model: String,
    #[serde(default)]
    provider: Option<String>,
    #[serde(default)]
    backend: Option<String>,
    #[serde(default)]
    effective_from: Option<String>,
    input: Decimal,
    output: Decimal,
    #[serde(default)]
    cached_input: Option<Decimal>,
    #[serde(default)]
    cache_write: Option<Decimal>,
    #[serde(default)]
    reasoning: Option<Decimal>,
}

impl RawEntry {
    fn compile(self) -> std::result::Result<PriceEntry, String> {
        if self.model.is_empty() {
            return Err("model: must not be empty".into());
        }
        let effective_from = match &self.effective_from {
            Some(t) => parse_instant(t).map_err(|e| format!("effective_from: {e}"))?,
            None => 0,
        };
        let input = self.input.0;
        let output = self.output.0;
        Ok(PriceEntry {
            model: self.model,
            provider: self.provider,
            backend: self.backend,
            effective_from,
            prices: Prices {
                input,
                output,
                cached_input: self.cached_input.map_or(input, |d| d.0),
                cache_write: self.cache_write.map_or(input, |d| d.0),
                reasoning: self.reasoning.map_or(output, |d| d.0),
            },
        })
    }
}

/// A price in USD per million tokens, held as pico-dollars per token.
struct Decimal(u64);

impl<'de> Deserialize<'de> for Decimal {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Decimal;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a price in USD per million tokens as a quoted decimal, e.g. \"0.15\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> std::result::Result<Decimal, E> {
                parse_price(v).map(Decimal).map_err(E::custom)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> std::result::Result<Decimal, E> {
                v.checked_mul(1_000_000)
                    .map(Decimal)
                    .ok_or_else(|| E::custom("price too large"))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> std::result::Result<Decimal, E> {
                u64::try_from(v)
                    .map_err(|_| E::custom("a price cannot be negative"))
                    .and_then(|v| self.visit_u64(v))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> std::result::Result<Decimal, E> {
                Err(E::custom(format!(
                    "{v} is a floating-point number; quote prices (\"{v}\") so they are read exactly"
                )))
            }
        }
        d.deserialize_any(V)
    }
}

/// Parses a non-negative decimal with at most `scale` fractional digits into an
/// integer of `10^-scale` units: `"2.5"` at scale 6 is `2_500_000`.
pub fn parse_decimal(s: &str, scale: u32) -> std::result::Result<u64, String> {
    let s = s.trim();
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    if !digits(int) || !(frac.is_empty() || digits(frac)) {
        return Err(format!("{s:?} is not a non-negative decimal number"));
    }
    let frac = frac.trim_end_matches('0');
    if frac.len() > scale as usize {
        return Err(format!("{s:?} has more than {scale} decimal places"));
    }
    let too_large = || format!("{s:?} is too large");
    let mut v: u64 = int.parse().map_err(|_| too_large())?;
    v = v.checked_mul(10u64.pow(scale)).ok_or_else(too_large)?;
    if !frac.is_empty() {
        let f: u64 = frac.parse().map_err(|_| too_large())?;
        let f = f * 10u64.pow(scale - frac.len() as u32);
        v = v.checked_add(f).ok_or_else(too_large)?;
    }
    Ok(v)
}

fn parse_price(s: &str) -> std::result::Result<u64, String> {
    parse_decimal(s, 6)
}

/// Formats micro-dollars as a USD decimal with six places: `1234` is `"0.001234"`.
pub fn format_micros(micros: u64) -> String {
    format!("{}.{:06}", micros / 1_000_000, micros % 1_000_000)
}

/// Parses an RFC 3339 instant (`2026-12-06T19:00:00Z`) into seconds since the Unix
/// epoch; instants before the epoch are refused.
pub fn parse_instant(s: &str) -> std::result::Result<u64, String> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map_err(|e| format!("{s:?} is not an RFC 3339 instant: {e}"))?;
    u64::try_from(t.unix_timestamp()).map_err(|_| format!("{s:?} is before 1970"))
}

/// Formats seconds since the Unix epoch as an RFC 3339 instant in UTC.
pub fn format_instant(secs: u64) -> String {
    i64::try_from(secs)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// Seconds since the Unix epoch, now.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The price table in force, swapped whole on reload: a request holds the table it
/// started with ([`FileBacked::current`]), so a reload never mixes two tables in one
/// request.
pub type Pricing = FileBacked<PriceTable>;

impl Loadable for PriceTable {
    const KIND: &'static str = "pricing file";
    fn parse(text: &str, origin: &str) -> Result<Self> {
        Self::parse(text, origin)
    }
    fn entry_count(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
prices:
  - model: m
    input: "2.50"
    output: "10"
    cached_input: "1.25"
  - model: m
    effective_from: "2027-01-01T00:00:00Z"
    input: "3"
    output: 12
  - model: m
    provider: anthropic
    input: "0.000001"
    output: "0"
  - model: "gpt-*"
    input: "1"
    output: "2"
"#;

    fn q(model: &str, at: u64) -> PriceQuery<'_> {
        PriceQuery {
            model,
            provider: Some("openai"),
            backend: None,
            at,
        }
    }

    #[test]
    fn decimals_are_exact() {
        assert_eq!(parse_decimal("2.5", 6), Ok(2_500_000));
        assert_eq!(parse_decimal("0.000001", 6), Ok(1));
        assert_eq!(parse_decimal("15", 6), Ok(15_000_000));
        assert_eq!(parse_decimal("1.2300000", 6), Ok(1_230_000));
        assert!(parse_decimal("0.0000001", 6).is_err());
        assert!(parse_decimal("-1", 6).is_err());
        assert!(parse_decimal("1e3", 6).is_err());
        assert!(parse_decimal(".5", 6).is_err());
        assert_eq!(format_micros(1234), "0.001234");
        assert_eq!(format_micros(12_000_001), "12.000001");
    }

    #[test]
    fn effective_dating_and_specificity() {
        let t = PriceTable::parse(FILE, "test").unwrap();
        let switch = parse_instant("2027-01-01T00:00:00Z").unwrap();
        let before = t.lookup(&q("m", switch - 1)).unwrap();
        assert_eq!(before.prices.input, 2_500_000);
        assert_eq!(before.prices.cache_write, 2_500_000);
        let after = t.lookup(&q("m", switch)).unwrap();
        assert_eq!(after.prices.output, 12_000_000);
        assert_eq!(after.prices.cached_input, 3_000_000);
        let anthropic = PriceQuery {
            provider: Some("anthropic"),
            ..q("m", switch)
        };
        assert_eq!(t.lookup(&anthropic).unwrap().prices.input, 1);
        assert_eq!(t.lookup(&q("gpt-4o", 0)).unwrap().prices.output, 2_000_000);
        assert!(t.lookup(&q("other", 0)).is_none());
    }

    #[test]
    fn cost_splits_cached_and_reasoning_tokens_and_rounds_up_once() {
        let p = Prices {
            input: 2_500_000,
            output: 10_000_000,
            cached_input: 1_250_000,
            cache_write: 3_750_000,
            reasoning: 20_000_000,
        };
        let u = TokenUsage {
            input: Some(1_000),
            cached_input: Some(200),
            cache_creation_input: Some(100),
            output: Some(500),
            reasoning: Some(100),
            ..Default::default()
        };
        // 700×2.5 + 200×1.25 + 100×3.75 + 400×10 + 100×20 µ$ = 8375 µ$.
        let c = p.cost(&u);
        assert_eq!(c.pico, 8_375_000_000);
        assert_eq!(c.micros(), 8375);
        let one = p.cost(&TokenUsage {
            input: Some(1),
            ..Default::default()
        });
        assert_eq!((one.pico, one.micros()), (2_500_000, 3));
    }

    #[test]
    fn floats_and_unknown_fields_are_refused() {
        let e = PriceTable::parse("prices: [{model: m, input: 0.15, output: \"1\"}]", "f")
            .unwrap_err()
            .to_string();
        assert!(e.contains("quote prices"), "{e}");
        let e = PriceTable::parse(
            "prices: [{model: m, input: \"1\", output: \"1\", x: 1}]",
            "f",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains('x'), "{e}");
    }

    #[test]
    fn the_shipped_examples_parse() {
        let t = PriceTable::parse(
            include_str!("../../examples/pricing/prices.example.yaml"),
            "example",
        )
        .unwrap();
        let bedrock = PriceQuery {
            model: "claude-sonnet-4",
            provider: Some("aws.bedrock"),
            backend: None,
            at: 0,
        };
        assert_eq!(t.lookup(&bedrock).unwrap().prices.input, 3_300_000);
    }

    #[test]
    fn reload_swaps_the_whole_table() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.yaml");
        std::fs::write(&path, FILE).unwrap();
        let p = Pricing::from_file(&path).unwrap();
        let held = p.current();
        std::fs::write(&path, "prices: [{model: m, input: \"9\", output: \"9\"}]").unwrap();
        assert_eq!(p.reload().unwrap(), 1);
        assert_eq!(
            held.entries().len(),
            4,
            "a request keeps the table it started with"
        );
        assert_eq!(
            p.current().lookup(&q("m", 0)).unwrap().prices.input,
            9_000_000
        );
        std::fs::write(&path, "prices: [{model: m}]").unwrap();
        assert!(p.reload().is_err());
        assert_eq!(
            p.current().entries().len(),
            1,
            "a bad file leaves the table in force"
        );
    }
}

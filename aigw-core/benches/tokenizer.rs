//! Token counts of the usage estimate (`aigw_core::estimate::count_tokens`) against the
//! `bpe-openai` crate the gateway used before, on the texts an estimate counts: a chat
//! prompt, a model's answer with code, and text in other scripts.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use aigw_core::estimate::count_tokens;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

const PROSE: &str = "You are a helpful assistant. Summarise the following meeting notes \
for an engineering manager, keeping every decision and owner, and list the open \
questions at the end. The team agreed to move the nightly build to the new runners \
on Monday; Priya owns the migration and will report back on Thursday's sync. ";

const CODE: &str = "fn main() {\n    let values: Vec<u64> = (1..=10).collect();\n    \
let total: u64 = values.iter().map(|v| v * 2).sum();\n    println!(\"total = {total}\");\n}\n";

const OTHER_SCRIPTS: &str = "日本語のテキストと中文文本，还有한국어 텍스트。Émile écrivit «J'accuse…!» — \
مرحبا بالعالم — नमस्ते दुनिया 😀👍🏽 ";

fn texts() -> Vec<(&'static str, String)> {
    vec![
        (
            "prose 1 KiB",
            PROSE.repeat(1024 / PROSE.len() + 1)[..1024].to_string(),
        ),
        ("prose 16 KiB", PROSE.repeat(16 * 1024 / PROSE.len() + 1)),
        ("code 4 KiB", CODE.repeat(4 * 1024 / CODE.len() + 1)),
        (
            "other scripts 4 KiB",
            OTHER_SCRIPTS.repeat(4 * 1024 / OTHER_SCRIPTS.len() + 1),
        ),
    ]
}

fn bench(c: &mut Criterion) {
    // Tables built before timing, as the binaries' warm-up does at start.
    aigw_core::estimate::warm_up();
    let _ = bpe_openai::o200k_base().count("warm");
    let mut group = c.benchmark_group("o200k_base count");
    for (name, text) in texts() {
        let text = text.as_str();
        // Cut at a char boundary: the prose case slices bytes of ASCII text only.
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_with_input(BenchmarkId::new("aigw", name), text, |b, t| {
            b.iter(|| count_tokens("gpt-4o", black_box(t)))
        });
        group.bench_with_input(BenchmarkId::new("bpe-openai", name), text, |b, t| {
            b.iter(|| bpe_openai::o200k_base().count(black_box(t)))
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .measurement_time(std::time::Duration::from_secs(3))
        .warm_up_time(std::time::Duration::from_secs(1));
    targets = bench
}
criterion_main!(benches);

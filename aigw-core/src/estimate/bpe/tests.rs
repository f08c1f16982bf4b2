use super::*;
use base64::Engine as _;
use proptest::prelude::*;
use sha2::{Digest, Sha256};

fn o200k_base() -> &'static Encoding {
    o200k().expect("o200k_base builds")
}

fn cl100k_base() -> &'static Encoding {
    cl100k().expect("cl100k_base builds")
}

/// The reference: the `bpe-openai` crate, itself checked against tiktoken.
fn reference(encoding: &Encoding, text: &str) -> u64 {
    let tokenizer = if std::ptr::eq(encoding, o200k_base()) {
        bpe_openai::o200k_base()
    } else {
        bpe_openai::cl100k_base()
    };
    tokenizer.count(text) as u64
}

#[test]
fn rank_files_are_the_published_ones() {
    // The SHA-256 of each `.tiktoken` file as tiktoken pins it
    // (`tiktoken_ext/openai_public.py`, `expected_hash`).
    for (encoding, published) in [
        (
            o200k_base(),
            "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
        ),
        (
            cl100k_base(),
            "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
        ),
    ] {
        let mut file = Sha256::new();
        for rank in 0..encoding.starts.len() as u32 {
            let token = base64::engine::general_purpose::STANDARD.encode(encoding.token(rank));
            file.update(format!("{token} {rank}\n"));
        }
        let digest: String = file.finalize().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(digest, published);
    }
    assert_eq!(o200k_base().starts.len(), 199_998);
    assert_eq!(cl100k_base().starts.len(), 100_256);
}

#[test]
fn every_token_is_found_by_its_bytes() {
    for encoding in [o200k_base(), cl100k_base()] {
        for rank in 0..encoding.starts.len() as u32 {
            assert_eq!(encoding.rank(encoding.token(rank)), rank);
        }
        assert_eq!(encoding.rank(&[b'x'; 200]), NONE);
    }
}

#[test]
fn malformed_rank_files_are_refused() {
    assert!(
        token_starts(&[3, b'a', b'b']).is_none(),
        "length past the end"
    );
    assert!(token_starts(&[1, b'a', 0]).is_none(), "empty token");
    assert!(
        Encoding::new(&[1, b'a', 1, b'a'], WHITESPACE_PATTERN).is_none(),
        "duplicate"
    );
    assert!(Encoding::new(&[1, b'a'], "(").is_none(), "bad pattern");
}

const SAMPLES: &[&str] = &[
    "",
    "Hello world",
    "Hello, world! How's it going? I'LL be there; they'd've known.",
    "  leading and trailing spaces   ",
    "tabs\tand\nnewlines\r\n\r\nand  \n  mixed \t \n",
    "numbers 1 12 123 1234 12345 3.14159 -42 1e10 0x1F",
    "CamelCaseIdentifiers and snake_case_names and SCREAMING_CASE",
    "fn main() {\n    println!(\"{}\", x.iter().map(|v| v * 2).sum::<u64>());\n}\n",
    "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
    "日本語のテキストと中文文本，还有한국어 텍스트。",
    "Émile Zola écrivit «J'accuse…!» — naïve café, Straße, ǅungla",
    "emoji 😀👍🏽 families 👨‍👩‍👧‍👦 and flags 🇫🇷🇯🇵",
    "combining marks: e\u{301} a\u{308}\u{301} and zero\u{200b}width",
    "مرحبا بالعالم — שלום עולם — नमस्ते दुनिया",
    "/// doc comment\n// path/to/file.rs\n   /* block */",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "!!!!!!!!!!!!!!!!!!!!????????????................,,,,,,,,,,,;;;;;;;;;;;;;;;;;=====",
    "base64: QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0NTY3ODk=",
];

#[test]
fn counts_equal_tiktoken_on_samples() {
    for encoding in [o200k_base(), cl100k_base()] {
        for text in SAMPLES {
            assert_eq!(encoding.count(text), reference(encoding, text), "{text:?}");
        }
    }
    assert_eq!(o200k_base().count("Hello world"), 2);
    assert_eq!(cl100k_base().count("Hello world"), 2);
}

#[test]
fn a_long_run_of_letters_counts_in_n_log_n() {
    // One pre-tokenized piece of 256 KiB: the scan merge would take ~10^10 steps.
    let letters: String = "abcdefghijklmnopqrstuvwxyz".repeat(10_083);
    let started = std::time::Instant::now();
    for encoding in [o200k_base(), cl100k_base()] {
        assert_eq!(encoding.count(&letters), reference(encoding, &letters));
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
}

/// Text built from pieces that exercise every branch of both patterns.
fn text() -> impl Strategy<Value = String> {
    let fragment = prop_oneof![
        prop::sample::select(vec![
            " ",
            "  ",
            "\t",
            "\n",
            "\r\n",
            " \n ",
            "'s",
            "'LL",
            "'d",
            "Hello",
            "world",
            "ÉCOLE",
            "ǅ",
            "ß",
            "日本",
            "😀",
            "👍🏽",
            "e\u{301}",
            "123",
            "4567",
            "3.14",
            "/",
            "//",
            "...",
            "!?",
            "{\"a\":1}",
            "_",
            "-",
            "x",
            "Ab",
            "aB",
            "\u{a0}",
            "\u{2028}",
            "\u{200b}",
        ])
        .prop_map(String::from),
        "[a-zA-Z]{1,12}".prop_map(String::from),
        "[ \t\n]{1,4}".prop_map(String::from),
        "\\PC{1,3}".prop_map(String::from),
        any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(fragment, 0..40).prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn counts_equal_tiktoken(text in text()) {
        for encoding in [o200k_base(), cl100k_base()] {
            prop_assert_eq!(encoding.count(&text), reference(encoding, &text), "{:?}", text);
        }
    }

    #[test]
    fn heap_and_scan_merges_agree(piece in prop::collection::vec(
        prop::sample::select(b"aabbe ntsr.\xe3\x81\x82".to_vec()), 2..300,
    )) {
        for encoding in [o200k_base(), cl100k_base()] {
            let mut scratch = Scratch::default();
            let scan = encoding.merge_scan(&piece, &mut scratch.parts);
            prop_assert_eq!(encoding.merge_heap(&piece, &mut scratch), scan);
        }
    }
}

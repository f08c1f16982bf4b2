use super::*;
use proptest::prelude::*;
use serde_json::{Value, json};

const CHAT: &str = r#"{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o-2024","choices":[{"index":0,"message":{"role":"assistant","content":"a \"usage\":{\"prompt_tokens\":99} b"},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15,"prompt_tokens_details":{"cached_tokens":4}},"service_tier":"default"}"#;

type Counts = (u64, u64, u64);

/// [`usage_fast`] on a whole span.
fn usage_fast_span(span: &[u8]) -> Option<Usage> {
    let quotes = Quotes::new();
    let mut c = Cursor {
        b: span,
        i: 0,
        quotes: &quotes,
    };
    usage_fast(&mut c)
        .filter(|_| c.i == span.len())
        .map(|u| u.usage())
}

/// What [`read_tokens`] must answer: [`read`]'s usage as the gateway counts it.
fn tokens_of(b: &[u8]) -> Option<(Option<String>, Option<TokenUsage>)> {
    read(b).map(|f| (f.model, f.usage.map(|u| u.to_token_usage())))
}

fn tokens(b: &str) -> Option<(Option<String>, Option<Counts>)> {
    read(b.as_bytes()).map(|f| {
        (
            f.model,
            f.usage
                .map(|u| (u.prompt_tokens, u.completion_tokens, u.total_tokens)),
        )
    })
}

#[test]
fn reads_the_top_level_model_and_usage_only() {
    assert!(
        top_level(CHAT.as_bytes()).and_then(finish).is_some(),
        "decided by the scan"
    );
    let f = read(CHAT.as_bytes()).unwrap();
    assert_eq!(f.model.as_deref(), Some("gpt-4o-2024"));
    let u = f.usage.unwrap();
    assert_eq!((u.prompt_tokens, u.completion_tokens), (12, 3));
    assert_eq!(u.prompt_tokens_details.unwrap().cached_tokens, Some(4));
    // Nested `usage` and `model` keys are not the response's.
    let nested = r#"{"choices":[{"usage":{"prompt_tokens":7},"model":"x"}],"data":{"usage":null}}"#;
    assert_eq!(tokens(nested), Some((None, None)));
    assert_eq!(
        tokens(" {\n \"usage\" : null , \"model\" : null }\n"),
        Some((None, None))
    );
    assert_eq!(tokens("{}"), Some((None, None)));
    let usual = br#"{"prompt_tokens":140,"completion_tokens":10,"total_tokens":150,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":2,"audio_tokens":null,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}"#;
    let fast = usage_fast_span(usual).expect("the usual shape is read without serde");
    assert_eq!(Some(fast), serde_json::from_slice(usual).ok());
    assert_eq!(usage_fast_span(br#"{"prompt_tokens":1,"cost":0.5}"#), None);
}

#[test]
fn what_the_scan_is_not_sure_of_goes_to_the_full_parse() {
    for body in [
        CHAT,
        r#"{"us\u0061ge":{"prompt_tokens":1},"model":"m"}"#,
        r#"{"model":"a\/b"}"#,
        r#"{"usage":{"prompt_tokens":1},"usage":{"prompt_tokens":2}}"#,
        r#"{"model":"m","model":"n"}"#,
        r#"{"usage":[1,2,3]}"#,
        r#"{"usage":{"prompt_tokens":"1"}}"#,
        r#"{"usage":{"prompt_tokens":1,"prompt_tokens_details":[1]}}"#,
        r#"{"model":5}"#,
        r#"{"choices":{}}"#,
        r#"{"model":"m"} x"#,
        r#"{"model":"m""#,
        "[]",
        "",
        r#"{"usage":{"prompt_tokens":01}}"#,
        r#"{"usage":{"prompt_tokens":-0}}"#,
        r#"{"usage":{"prompt_tokens":1.0}}"#,
        r#"{"usage":{"prompt_tokens":1e2}}"#,
        r#"{"usage":{"prompt_tokens":18446744073709551615}}"#,
        r#"{"usage":{"prompt_tokens":18446744073709551616}}"#,
        r#"{"usage":{"prompt_tokens":null}}"#,
        r#"{"usage":{"prompt_tokens":1,"prompt_tokens":2}}"#,
        r#"{"usage":{"prompt_tokens_details":{"cached_tokens":1,"cached_tokens":1}}}"#,
        r#"{"usage":{"prompt_tokens_details":{"cached_tokens":null},"completion_tokens_details":null}}"#,
        r#"{"usage":{"prompt_tokens_details":{"cached_tokens":nul}}}"#,
        r#"{"usage":{"completion_tokens_details":{"reasoning_tokens":3,"x":[1]}}}"#,
        r#"{"usage":{"prompt_tokens":1,"cost":0.5}}"#,
    ] {
        assert_eq!(read(body.as_bytes()), parse(body.as_bytes()), "{body}");
        assert_eq!(
            read_tokens(body.as_bytes()),
            tokens_of(body.as_bytes()),
            "{body}"
        );
    }
    assert_eq!(
        tokens(r#"{"us\u0061ge":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}"#),
        Some((None, Some((1, 2, 3))))
    );
    assert_eq!(
        tokens(r#"{"model":"a\/b"}"#),
        Some((Some("a/b".into()), None))
    );
    assert_eq!(
        tokens(r#"{"usage":{"prompt_tokens":1},"usage":null}"#),
        None
    );
}

/// Raw JSON string tokens for keys, some of them look-alikes of the keys the scan keeps.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => Just(r#""model""#.to_owned()),
        4 => Just(r#""usage""#.to_owned()),
        2 => Just(r#""choices""#.to_owned()),
        1 => Just(r#""us\u0061ge""#.to_owned()),
        1 => Just(r#""mod\u0065l""#.to_owned()),
        1 => Just(r#""usage ""#.to_owned()),
        1 => Just(r#""\"usage\"""#.to_owned()),
        1 => Just(r#""usage\\""#.to_owned()),
        1 => Just(r#""a\"usage""#.to_owned()),
        2 => text().prop_map(|s| Value::String(s).to_string()),
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("usage".to_owned()),
        Just(r#""usage":{"prompt_tokens":1}}"#.to_owned()),
        Just(r#"\"#.to_owned()),
        Just(r#"\""#.to_owned()),
        Just("}]{[,:".to_owned()),
        Just("é ☃ \u{1F600}\n\t\u{1}".to_owned()),
        "[a-z\"\\\\{}\\[\\]:, ]{0,12}",
        // Past the first eight bytes: the searcher's strings, escapes across a word.
        "[a-z\"\\\\{}\\[\\]:, ]{7,40}",
    ]
}

fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<u64>().prop_map(Value::from),
        (0u64..1000).prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-1.0e6f64..1.0e6).prop_map(Value::from),
    ]
}

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number(),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((text(), inner), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

fn counter() -> impl Strategy<Value = Value> {
    prop_oneof![
        6 => (0u64..100_000).prop_map(Value::from),
        1 => json(),
    ]
}

fn details() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => prop::collection::vec(
            (
                prop_oneof![
                    Just("cached_tokens".to_owned()),
                    Just("audio_tokens".to_owned()),
                    Just("reasoning_tokens".to_owned()),
                    Just("cache_creation_tokens".to_owned()),
                    Just("text_tokens".to_owned()),
                ],
                counter()
            ),
            0..4
        )
        .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        1 => json(),
    ]
}

fn usage() -> impl Strategy<Value = Value> {
    prop_oneof![
        6 => (counter(), counter(), counter(), details(), details(), json(), any::<u8>()).prop_map(
            |(p, c, t, pd, cd, x, keep)| {
                let mut u = json!({
                    "prompt_tokens": p, "completion_tokens": c, "total_tokens": t,
                    "prompt_tokens_details": pd, "completion_tokens_details": cd, "x": x,
                });
                // Leave keys out (the unknown `x` most often) to reach both readers.
                if let Some(m) = u.as_object_mut() {
                    let keys: Vec<String> = m.keys().cloned().collect();
                    for (i, k) in keys.iter().enumerate() {
                        if keep & (1 << i) == 0 || (k == "x" && keep & 0x80 == 0) {
                            m.remove(k);
                        }
                    }
                }
                u
            }
        ),
        1 => Just(json!({"prompt_tokens": 8, "total_tokens": 8})),
        1 => json(),
    ]
}

fn value_for(key: &str) -> BoxedStrategy<Value> {
    match key {
        r#""usage""# => usage().boxed(),
        r#""model""# => prop_oneof![
            4 => text().prop_map(Value::String),
            1 => json(),
        ]
        .boxed(),
        r#""choices""# => prop_oneof![
            4 => prop::collection::vec(json(), 0..3).prop_map(Value::Array),
            1 => json(),
        ]
        .boxed(),
        _ => json().boxed(),
    }
}

/// A body as text: members may repeat, whitespace varies.
fn body() -> impl Strategy<Value = String> {
    let ws = prop_oneof![Just(""), Just(" "), Just("\n  "), Just("\t\r\n")];
    let member = key().prop_flat_map(move |k| {
        let v = value_for(&k);
        (Just(k), v, any::<bool>())
    });
    (prop::collection::vec(member, 0..6), ws).prop_map(|(members, ws)| {
        let parts: Vec<String> = members
            .into_iter()
            .map(|(k, v, pretty)| {
                let v = if pretty {
                    serde_json::to_string_pretty(&v)
                } else {
                    serde_json::to_string(&v)
                };
                format!("{ws}{k}{ws}:{ws}{}", v.unwrap_or_default())
            })
            .collect();
        format!("{ws}{{{}{ws}}}{ws}", parts.join(","))
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn the_scan_agrees_with_the_full_parse(b in body()) {
        prop_assert_eq!(read(b.as_bytes()), parse(b.as_bytes()), "{}", b);
        prop_assert_eq!(read_tokens(b.as_bytes()), tokens_of(b.as_bytes()), "{}", b);
    }

    /// Damaged bodies: whenever the full parse still accepts one, the scan agrees.
    #[test]
    fn the_scan_agrees_wherever_the_full_parse_accepts(
        b in body(), at in any::<prop::sample::Index>(), cut in 0usize..3, byte in any::<u8>()
    ) {
        let mut b = b.into_bytes();
        let i = at.index(b.len() + 1);
        let end = (i + cut).min(b.len());
        b.splice(i..end, [byte]);
        if let Some(full) = parse(&b) {
            prop_assert_eq!(read(&b), Some(full), "{}", String::from_utf8_lossy(&b));
        }
        prop_assert_eq!(read_tokens(&b), tokens_of(&b), "{}", String::from_utf8_lossy(&b));
    }
}

/// A count as OpenAI writes it, now and then one that does not fit a `u64`.
fn openai_count() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => (0u64..100_000).prop_map(|n| n.to_string()),
        1 => any::<u64>().prop_map(|n| n.to_string()),
        1 => Just("18446744073709551616".to_owned()),
        1 => Just("007".to_owned()),
    ]
}

/// A usage object as OpenAI writes it, each details object present or not.
fn openai_usage() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(openai_count(), 9),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(n, pd, cd)| {
            let mut s = format!(
                r#"{{"prompt_tokens":{},"completion_tokens":{},"total_tokens":{}"#,
                n[0], n[1], n[2]
            );
            if pd {
                s += &format!(
                    r#","prompt_tokens_details":{{"cached_tokens":{},"audio_tokens":{}}}"#,
                    n[3], n[4]
                );
            }
            if cd {
                s += &format!(
                    r#","completion_tokens_details":{{"reasoning_tokens":{},"audio_tokens":{},"accepted_prediction_tokens":{},"rejected_prediction_tokens":{}}}"#,
                    n[5], n[6], n[7], n[8]
                );
            }
            s.push('}');
            s
        })
}

/// A usage as read, and where the cursor stopped.
type ReadAt = Option<(Usage, usize)>;

/// [`usage_compact`] and [`usage_fast`] from the start of `b`: the usage and where the
/// cursor stopped.
fn compact_and_fast(b: &[u8]) -> (ReadAt, ReadAt) {
    let quotes = Quotes::new();
    let mut c = Cursor {
        b,
        i: 0,
        quotes: &quotes,
    };
    let compact = usage_compact(&mut c).map(|u| (u.usage(), c.i));
    let mut f = Cursor {
        b,
        i: 0,
        quotes: &quotes,
    };
    let fast = usage_fast(&mut f).map(|u| (u.usage(), f.i));
    (compact, fast)
}

#[test]
fn openai_usage_is_read_compactly() {
    let u = br#"{"prompt_tokens":140,"completion_tokens":10,"total_tokens":150,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}"#;
    let (compact, fast) = compact_and_fast(u);
    assert!(compact.is_some());
    assert_eq!(compact, fast);
    for other in [
        &br#"{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}"#[..],
        br#"{"prompt_tokens":1,"total_tokens":3,"completion_tokens":2}"#,
        br#"{"prompt_tokens":1, "completion_tokens":2,"total_tokens":3}"#,
        br#"{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3,"prompt_tokens_details":null}"#,
    ] {
        let (compact, fast) = compact_and_fast(other);
        if compact.is_some() {
            assert_eq!(compact, fast);
        }
    }
    assert!(
        compact_and_fast(br#"{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}"#)
            .0
            .is_some()
    );
    assert!(
        compact_and_fast(br#"{"prompt_tokens":1,"total_tokens":3,"completion_tokens":2}"#)
            .0
            .is_none()
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    /// OpenAI's usage objects, whole and with one byte replaced: whatever the compact
    /// reader reads, the general one reads the same, and a body carrying it is read
    /// as the full parse reads it.
    #[test]
    fn the_compact_usage_reader_agrees(
        u in openai_usage(), at in any::<prop::sample::Index>(), byte in any::<u8>(), damage in any::<bool>()
    ) {
        let mut b = u.into_bytes();
        if damage {
            let i = at.index(b.len());
            b[i] = byte;
        }
        let (compact, fast) = compact_and_fast(&b);
        if compact.is_some() {
            prop_assert_eq!(&compact, &fast, "{}", String::from_utf8_lossy(&b));
        }
        let mut body = br#"{"id":"chatcmpl-1","model":"m","choices":[],"usage":"#.to_vec();
        body.extend_from_slice(&b);
        body.extend_from_slice(br#","service_tier":"default"}"#);
        let full = parse(&body).map(|f| (f.model, f.usage.map(|u| u.to_token_usage())));
        if full.is_some() || compact.is_some() {
            prop_assert_eq!(read_tokens(&body), full, "{}", String::from_utf8_lossy(&body));
        }
    }
}

/// The digit loop [`Cursor::uint`] replaced: every digit read, then the leading zero
/// and the delimiter checked.
fn uint_by_digits(b: &[u8]) -> Option<u64> {
    let mut i = 0;
    let mut n = 0u64;
    while let Some(d) = b.get(i).filter(|c| c.is_ascii_digit()) {
        n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
        i += 1;
    }
    let digits = &b[..i];
    let delimited = matches!(
        b.get(i),
        Some(b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')
    );
    (delimited && !digits.is_empty() && (digits == b"0" || digits[0] != b'0')).then_some(n)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    /// Numbers of every length (past `u64` too), leading zeros, signs, fractions and
    /// exponents, followed by each delimiter or by other bytes.
    #[test]
    fn uint_reads_what_the_digit_loop_read(
        s in "[-+]?[0-9]{0,24}([.eE][0-9]{0,3})?[,}\\] \t\n\rx0\"]?"
    ) {
        let quotes = Quotes::new();
        let mut c = Cursor::new(s.as_bytes(), &quotes);
        prop_assert_eq!(c.uint(), uint_by_digits(s.as_bytes()), "{:?}", s);
    }
}

/// The two passes [`Cursor::skip_scalar`] replaced: the bytes up to a delimiter, then
/// their shape.
fn skip_scalar_by_token(b: &[u8]) -> Option<usize> {
    let end = b
        .iter()
        .position(|c| matches!(c, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'))
        .unwrap_or(b.len());
    let t = &b[..end];
    let number = t.first().is_some_and(|c| *c == b'-' || c.is_ascii_digit())
        && t.iter()
            .all(|c| c.is_ascii_digit() || matches!(c, b'-' | b'+' | b'.' | b'e' | b'E'));
    (matches!(t, b"true" | b"false" | b"null") || number).then_some(end)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    /// Literals, their prefixes and look-alikes, numbers of any shape the charset
    /// allows, and what follows them: a delimiter, the end or another byte.
    #[test]
    fn skip_scalar_accepts_what_the_two_passes_accepted(
        s in "(null|true|false|nul|tru|fals|nulll|truex|n|t|f|[-+.eE0-9]{0,12}|[a-z\"{\\[]{0,2})[,}\\] \t\n\rx0\"]{0,2}"
    ) {
        let quotes = Quotes::new();
        let mut c = Cursor::new(s.as_bytes(), &quotes);
        let got = c.skip_scalar().map(|()| c.pos());
        prop_assert_eq!(got, skip_scalar_by_token(s.as_bytes()), "{:?}", s);
    }
}

/// The simulator's chat completion, as the benchmarks' upstream answers.
const SIMULATED: &str = r#"{"id":"chatcmpl-sim1a7ed1cb9e5a71ae","object":"chat.completion","created":1700000000,"model":"bench-openai","choices":[{"index":0,"message":{"role":"assistant","content":"Hello from the aigw simulator. Model bench-openai received 3 words.","refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":140,"completion_tokens":10,"total_tokens":150,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},"service_tier":"default","system_fingerprint":null}"#;

/// [`past_choices`] from the `choices` array of `body` (its first `[`): where it left
/// the cursor, or `None`.
fn jump_in(body: &str) -> Option<usize> {
    let quotes = Quotes::new();
    let mut c = Cursor::new(body.as_bytes(), &quotes);
    c.seek(body.find(r#""choices":"#)? + r#""choices":"#.len());
    let mut seen = Seen {
        choices: true,
        ..Seen::default()
    };
    past_choices(&mut seen, &mut c).map(|()| c.pos())
}

#[test]
fn the_choices_are_jumped_when_usage_follows_them() {
    for body in [SIMULATED, CHAT] {
        assert_eq!(jump_in(body), Some(body.len() - 1), "{body}");
        assert_eq!(read(body.as_bytes()), parse(body.as_bytes()), "{body}");
    }
    let (model, usage) = read_tokens(SIMULATED.as_bytes()).unwrap();
    assert_eq!(model.as_deref(), Some("bench-openai"));
    let usage = usage.unwrap();
    assert_eq!(
        (usage.input, usage.output, usage.total),
        (Some(140), Some(10), Some(150))
    );
    // Where the jump is not sure, the array is walked and the answer is the full parse's.
    for body in [
        // A nested `"usage"` first.
        r#"{"choices":[{"usage":{"prompt_tokens":7}}],"usage":{"prompt_tokens":1}}"#,
        r#"{"choices":[{"x":"usage"}],"usage":{"prompt_tokens":1}}"#,
        // A key that ends in an escaped quote and `usage`.
        r#"{"choices":[],"a\"usage":{"prompt_tokens":1}}"#,
        // Members repeated between the array and `usage`, written out or escaped.
        r#"{"choices":[],"model":"m","usage":{"prompt_tokens":1}}"#,
        r#"{"model":"m","choices":[],"model":"n","usage":{"prompt_tokens":1}}"#,
        r#"{"choices":[],"choices":[],"usage":{"prompt_tokens":1}}"#,
        r#"{"choices":[],"mod\u0065l":"n","usage":{"prompt_tokens":1}}"#,
        r#"{"choices":["\u00e9"],"usage":{"prompt_tokens":1}}"#,
        // Repeated after it, or something after the object.
        r#"{"choices":[],"usage":{"prompt_tokens":1},"usage":null}"#,
        r#"{"choices":[],"usage":{"prompt_tokens":1},"choices":null}"#,
        r#"{"choices":[],"usage":{"prompt_tokens":1}} x"#,
        r#"{"choices":[{"a":[1]}],"usage":null}]}"#,
    ] {
        assert_eq!(jump_in(body), None, "{body}");
        assert_eq!(read(body.as_bytes()), parse(body.as_bytes()), "{body}");
        assert_eq!(
            read_tokens(body.as_bytes()),
            tokens_of(body.as_bytes()),
            "{body}"
        );
    }
    // What the skipped bytes hold is not checked: the model before the array, the
    // usage after it, as the walk reads values it skips.
    let loose = r#"{"model":"m","choices":[{]],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}"#;
    assert_eq!(jump_in(loose), Some(loose.len() - 1));
}

#[test]
fn a_compact_opening_is_read_by_its_keys() {
    let quotes = Quotes::new();
    let mut c = Cursor::new(SIMULATED.as_bytes(), &quotes);
    let model = compact_head(&mut c).expect("the simulator's opening");
    assert_eq!(model, Some(&br#""bench-openai""#[..]));
    assert_eq!(c.peek(), Some(b'['));
    for body in [
        r#"{"id":"a\"b","object":"o","created":1,"model":null,"choices":[],"usage":null}"#,
        r#"{"id":"a","object":"o","created":1,"model":"m","choices":null,"model":"n"}"#,
        r#"{"id":"a","object":"o","created":1,"model":"m","choices":[]}"#,
        r#"{"id":"a","object":"o","created":1,"model":"m","choices":[],"choices":[]}"#,
        r#"{"id":"a","object":"o","created":1,"model":5,"choices":[]}"#,
        r#"{"id":"a","object":"o","created":x,"model":"m","choices":[]}"#,
        r#"{"id":"a","object":"o","created":1,"model":"m","choices":{}}"#,
        r#"{"id":"a","object":"o","created":1,"model":"m","choices":[] x"#,
        r#"{"id":"a","object":"o","created":1,"model":"m","choices":[]} x"#,
        r#"{"id":"a","object":"o","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":1}}"#,
    ] {
        assert_eq!(read(body.as_bytes()), parse(body.as_bytes()), "{body}");
        assert_eq!(
            read_tokens(body.as_bytes()),
            tokens_of(body.as_bytes()),
            "{body}"
        );
    }
}

/// A body shaped as a chat completion: members before the `choices` array, then
/// members (look-alike keys among them) before and after `usage`.
fn chat_body() -> impl Strategy<Value = String> {
    let member = || {
        prop::collection::vec(
            key().prop_flat_map(|k| {
                let v = value_for(&k);
                (Just(k), v)
            }),
            0..3,
        )
    };
    let choice = prop_oneof![
        3 => json(),
        1 => text().prop_map(Value::String),
        1 => Just(json!({"message": {"content": "\"usage\":{\"prompt_tokens\":9}"}})),
    ];
    (
        member(),
        prop::collection::vec(choice, 0..3),
        member(),
        usage(),
        member(),
        prop_oneof![Just(""), Just(" "), Just("\n  ")],
    )
        .prop_map(|(before, choices, between, usage, after, ws)| {
            let join = |m: Vec<(String, Value)>| -> String {
                m.into_iter()
                    .map(|(k, v)| format!("{k}:{v},{ws}"))
                    .collect()
            };
            // With nothing before it, the compact opening (when `ws` is empty).
            let before = if before.is_empty() {
                r#""id":"c\"1","object":"chat.completion","created":17,"#.to_owned()
            } else {
                join(before)
            };
            format!(
                r#"{{{}"model":"m",{ws}"choices":{},{ws}{}"usage":{},{ws}{}"service_tier":"default"}}{ws}"#,
                before,
                Value::Array(choices),
                join(between),
                usage,
                join(after)
            )
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    /// Chat completions whole and damaged: whenever the full parse accepts one, the
    /// scan (with the jump past the choices) agrees, and the two readers agree always.
    #[test]
    fn the_jump_past_the_choices_agrees_with_the_full_parse(
        b in chat_body(), at in any::<prop::sample::Index>(), byte in any::<u8>(), damage in any::<bool>()
    ) {
        let mut b = b.into_bytes();
        if damage {
            let i = at.index(b.len());
            b[i] = byte;
        }
        if let Some(full) = parse(&b) {
            prop_assert_eq!(read(&b), Some(full), "{}", String::from_utf8_lossy(&b));
        }
        prop_assert_eq!(read_tokens(&b), tokens_of(&b), "{}", String::from_utf8_lossy(&b));
    }
}

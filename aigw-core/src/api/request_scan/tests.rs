use super::super::{Endpoint, SniffFields, sniff, sniff_serde};
use super::*;
use proptest::prelude::*;

/// The property: whenever the scan answers, serde accepts the body and reads the same.
fn agrees(body: &[u8]) -> Result<(), TestCaseError> {
    if let Some(f) = scan(body) {
        let full = sniff_serde(body);
        prop_assert!(
            full.is_ok(),
            "scan accepted what serde refuses: {:?}",
            String::from_utf8_lossy(body)
        );
        prop_assert_eq!(Ok(SniffFields::from(f)), full.map_err(|e| e.to_string()));
    }
    // And the public answer, errors included, is the serde one.
    let fast = sniff(Endpoint::ChatCompletions, body).map_err(|e| e.to_string());
    let full = sniff_serde(body)
        .and_then(|s| super::super::info(Endpoint::ChatCompletions, s))
        .map_err(|e| e.to_string());
    prop_assert_eq!(fast, full);
    Ok(())
}

const CHAT: &str = r#"{"model":"gpt-4o","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"say \"model\":\"x\" and \\ and \u00e9 \ud83d\ude00"}],"stream":true,"stream_options":{"include_usage":true},"max_tokens":64,"temperature":0.2,"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{"model":{"type":"string"}}}}}],"n":1,"logit_bias":{"50256":-100},"stop":null,"top_p":1e-1}"#;

#[test]
fn usual_messages_are_read_by_their_shape() {
    for (m, whole) in [
        (&br#"{"role":"user","content":"hi \"x\" \u00e9"}"#[..], true),
        (br#"{"role":"assistant","content":""}"#, true),
        (br#"{"role": "user","content":"hi"}"#, false),
        (br#"{"content":"hi","role":"user"}"#, false),
        (br#"{"role":"user","content":"hi","name":"x"}"#, false),
    ] {
        let mut w = Walk {
            b: m,
            i: 0,
            clean: true,
            quotes: Quotes::new(),
        };
        assert_eq!(
            w.message().is_some() && w.i == m.len(),
            whole,
            "{}",
            String::from_utf8_lossy(m)
        );
    }
}

#[test]
fn reads_the_usual_body_itself() {
    let f = scan(CHAT.as_bytes()).expect("decided by the scan");
    assert_eq!(f.model, Some("gpt-4o"));
    assert_eq!(f.stream, Some(true));
    assert_eq!(f.include_usage, Some(true));
    assert_eq!(f.max_tokens, Some(64));
    let pretty =
        serde_json::to_string_pretty(&serde_json::from_str::<serde_json::Value>(CHAT).unwrap())
            .unwrap();
    assert!(scan(pretty.as_bytes()).is_some(), "whitespace and newlines");
    let utf8 = r#"{"model":"m","messages":[{"role":"user","content":"héllo 世界"}]}"#;
    assert_eq!(scan(utf8.as_bytes()).unwrap().model, Some("m"));
    let newline = format!("{CHAT}\n");
    assert!(scan(newline.as_bytes()).is_some(), "a trailing newline");
    for body in [CHAT, pretty.as_str(), utf8, newline.as_str()] {
        agrees(body.as_bytes()).unwrap();
    }
}

#[test]
fn what_the_scan_is_not_sure_of_goes_to_serde() {
    for body in [
        // Escaped, duplicated or oddly typed fields.
        r#"{"mod\u0065l":"m"}"#,
        r#"{"model":"a\/b"}"#,
        r#"{"model":"m","model":"n"}"#,
        r#"{"model":"m","stream":true,"stream":false}"#,
        r#"{"model":"m","stream_options":{"include_usage":true,"include_usage":true}}"#,
        r#"{"model":"m","stream_options":{"include_us\u0061ge":true}}"#,
        r#"{"model":"m","stream_options":[true]}"#,
        r#"["m",true]"#,
        r#"{"model":5}"#,
        r#"{"model":"m","stream":"yes"}"#,
        r#"{"model":"m","max_tokens":"9"}"#,
        r#"{"model":"m","max_tokens":1.5}"#,
        r#"{"model":"m","max_tokens":-3}"#,
        r#"{"model":"m","max_tokens":18446744073709551616}"#,
        r#"{"model":"m","max_tokens":1e400}"#,
        r#"{"model":"m","max_tokens":[1]}"#,
        // Not JSON.
        "",
        "{",
        r#"{"model":"m"} x"#,
        r#"{"model":"m",}"#,
        r#"{"model":"m" "x":1}"#,
        r#"{"model":"m","x":01}"#,
        r#"{"model":"m","x":1.}"#,
        r#"{"model":"m","x":-}"#,
        r#"{"model":"m","x":tru}"#,
        r#"{"model":"m","x":"\x"}"#,
        r#"{"model":"m","x":"\u12g4"}"#,
        "{\"model\":\"m\",\"x\":\"a\tb\"}",
        "{\"model\":\"m\",\"x\":\"a\u{1}b\"}",
        r#"{"model":"m","x":[1,2}"#,
        r#"{"model":"m","x":{"a"}}"#,
        r#"{"model":"m","x":{1:2}}"#,
        // Form feeds are not JSON whitespace, in or around the body.
        "{\"model\":\"m\"}\u{c}",
        "\u{c}{\"model\":\"m\"}",
        "{\"model\":\"m\",\"x\":\"\u{c}\"}",
        "{\"model\":\"m\",\"x\":\"a\n",
        // Valid, for serde, in ways the scan does not follow.
        r#"{"model":"m","x":"\ud800"}"#,
    ] {
        agrees(body.as_bytes()).unwrap();
    }
    let deep = format!(
        r#"{{"model":"m","x":{}{}}}"#,
        "[".repeat(200),
        "]".repeat(200)
    );
    assert!(scan(deep.as_bytes()).is_none());
    agrees(deep.as_bytes()).unwrap();
    let mut bad_utf8 = br#"{"model":"m","x":"#.to_vec();
    bad_utf8.extend_from_slice(b"\"\xff\"}");
    assert!(scan(&bad_utf8).is_none());
    agrees(&bad_utf8).unwrap();
}

#[test]
fn quote_search_and_printable_check_match_byte_loops() {
    let s = br#"0123456789abcdef"0123\456789"0123456789abcdef0123456789abcdef0123456789""#;
    let q = Quotes::new();
    for start in 0..s.len() {
        let want = s[start..].iter().position(|&c| c == b'"' || c == b'\\');
        assert_eq!(q.find(&s[start..]), want, "{start}");
        let any = Quotes::Any(memchr::arch::all::memchr::Two::new(b'"', b'\\'));
        assert_eq!(any.find(&s[start..]), want, "{start}");
    }
    // Every length and position around the one-word fast path.
    for len in 0..20 {
        for special in [None, Some(b'\\'), Some(b'\t'), Some(0xc3)] {
            let mut content = vec![b'x'; len];
            if let (Some(c), Some(slot)) = (special, content.get_mut(len / 2)) {
                *slot = c;
                if c == b'\\' {
                    content.insert(len / 2 + 1, b'n');
                } else if c == 0xc3 {
                    content.insert(len / 2 + 1, 0xa9);
                }
            }
            let mut body = br#"{"model":"m","k":""#.to_vec();
            body.extend_from_slice(&content);
            body.extend_from_slice(br#"","z":1}"#);
            agrees(&body).unwrap();
        }
    }
    for b in 0..=255u8 {
        let body = [b'a', b, b'z'];
        assert_eq!(printable_ascii(&body), (0x20..0x80).contains(&b), "{b}");
    }
    assert!(printable_ascii(b""));
}

fn ws() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["", "", "", " ", "\n", "\t ", "\r\n  ", "\u{c}"])
}

fn string_token() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            r#""gpt-4o""#,
            r#""""#,
            r#""a\"b""#,
            r#""\u00e9\ud83d\ude00""#,
            r#""é 世界""#,
            r#""model""#,
            r#""\"model\":\"x\",\"stream\":true""#,
            r#""\ud800""#,
            r#""a\/b\\""#,
            r#""}{][,:""#,
            "\"tab\there\"",
            r#""\x""#,
            r#""\u12g4""#,
            r#""unterminated"#,
        ])
        .prop_map(str::to_owned),
        any::<String>().prop_map(|s| serde_json::to_string(&s).unwrap()),
    ]
}

fn number_token() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "0",
            "64",
            "-3",
            "1.5",
            "1e2",
            "2E-3",
            "-0",
            "01",
            "18446744073709551615",
            "18446744073709551616",
            "1e400",
            "1.",
            "-",
            ".5",
        ])
        .prop_map(str::to_owned),
        any::<u64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|n| n.to_string()),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec![
            "model",
            "stream",
            "stream_options",
            "include_usage",
            "max_tokens",
            "max_completion_tokens",
            "max_output_tokens",
            "messages",
            "mod\\u0065l",
            "stream\\n",
        ])
        .prop_map(|k| format!("\"{k}\"")),
        1 => string_token(),
    ]
}

fn value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        string_token(),
        number_token(),
        prop::sample::select(vec!["true", "false", "null", "nul", "tru"]).prop_map(str::to_owned),
    ];
    leaf.prop_recursive(4, 32, 5, |inner| {
        prop_oneof![
            prop::collection::vec((ws(), inner.clone(), ws()), 0..5).prop_map(|items| {
                let items: Vec<String> = items
                    .into_iter()
                    .map(|(a, v, b)| format!("{a}{v}{b}"))
                    .collect();
                format!("[{}]", items.join(","))
            }),
            prop::collection::vec((key(), ws(), inner), 0..5).prop_map(|members| {
                let members: Vec<String> = members
                    .into_iter()
                    .map(|(k, w, v)| format!("{k}{w}:{w}{v}"))
                    .collect();
                format!("{{{}}}", members.join(","))
            }),
        ]
    })
}

/// A chat message: mostly `{"role":…,"content":…}` as clients write it, with string
/// tokens of every kind (escapes, control characters, unterminated), whitespace, other
/// values, the keys swapped or doubled, or another member.
fn message() -> impl Strategy<Value = String> {
    let content = prop_oneof![4 => string_token(), 1 => value()];
    let role = prop_oneof![
        4 => prop::sample::select(vec![r#""user""#, r#""assistant""#, r#""system""#])
            .prop_map(str::to_owned),
        1 => string_token(),
    ];
    let keys = prop::sample::select(vec![
        ("role", "content"),
        ("role", "content"),
        ("role", "content"),
        ("content", "role"),
        ("role", "role"),
        ("rol\\u0065", "content"),
    ]);
    (role, content, keys, ws(), ws(), value(), any::<u8>()).prop_map(
        |(r, c, (k1, k2), w1, w2, extra, odd)| match odd % 8 {
            0 => format!(r#"{{"{k1}"{w1}:{r},"{k2}":{w2}{c},"name":{extra}}}"#),
            1 => format!(r#"{w1}{{"{k1}":{r},{w2}"{k2}":{c}}}"#),
            _ => format!(r#"{{"{k1}":{r},"{k2}":{c}{w1}}}"#),
        },
    )
}

/// A request body: a top-level object of mostly the sniffed keys, with look-alikes.
fn body() -> impl Strategy<Value = String> {
    let member = prop_oneof![
        prop::collection::vec((message(), ws()), 0..4).prop_map(|ms| {
            let ms: Vec<String> = ms.into_iter().map(|(m, w)| format!("{m}{w}")).collect();
            format!("\"messages\":[{}]", ms.join(","))
        }),
        (key(), ws(), value()).prop_map(|(k, w, v)| format!("{k}{w}:{w}{v}")),
        string_token().prop_map(|m| format!("\"model\":{m}")),
        prop::sample::select(vec!["true", "false", "null"]).prop_map(|b| format!("\"stream\":{b}")),
        (
            prop::sample::select(vec!["true", "false", "null", "1"]),
            value()
        )
            .prop_map(|(b, v)| {
                format!("\"stream_options\":{{\"x\":{v},\"include_usage\":{b}}}")
            }),
    ];
    (ws(), prop::collection::vec((member, ws()), 0..7), ws()).prop_map(|(a, members, b)| {
        let members: Vec<String> = members
            .into_iter()
            .map(|(m, w)| format!("{m}{w}"))
            .collect();
        format!("{a}{{{}}}{b}", members.join(","))
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn generated_bodies_agree_with_serde(body in body()) {
        agrees(body.as_bytes())?;
    }

    #[test]
    fn damaged_bodies_agree_with_serde(
        body in body(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), 0u8..3, any::<u8>()), 1..4),
    ) {
        let mut b = body.into_bytes();
        for (at, op, byte) in edits {
            if b.is_empty() {
                break;
            }
            let i = at.index(b.len());
            let byte = *b"{}[]\",:\\ 0-eE.tn\n"
                .get(usize::from(byte) % 20)
                .unwrap_or(&byte);
            match op {
                0 => { b.remove(i); }
                1 => b.insert(i, byte),
                _ => b[i] = byte,
            }
        }
        agrees(&b)?;
    }

    #[test]
    fn arbitrary_bytes_agree_with_serde(b in prop::collection::vec(any::<u8>(), 0..64)) {
        agrees(&b)?;
    }

    #[test]
    fn typical_bodies_are_read_by_the_scan(
        model in "[a-z0-9.:/-]{1,24}",
        stream in any::<Option<bool>>(),
        max in any::<Option<u32>>(),
        text in any::<String>(),
    ) {
        let mut v = serde_json::json!({
            "model": model,
            "messages": [{"role": "user", "content": text}],
        });
        if let Some(s) = stream {
            v["stream"] = s.into();
            v["stream_options"] = serde_json::json!({"include_usage": s});
        }
        if let Some(m) = max {
            v["max_tokens"] = m.into();
        }
        let body = serde_json::to_vec(&v).unwrap();
        prop_assert!(scan(&body).is_some(), "{}", String::from_utf8_lossy(&body));
        agrees(&body)?;
    }
}

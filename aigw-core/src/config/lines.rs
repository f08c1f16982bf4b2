//! Where each node of a YAML document is: a tree of line numbers shaped like the
//! document, so an issue's field path (`spec.rules[0].backendRefs[1].weight`) can be
//! turned into `file:line`.
//!
//! The tree is built from the parser's own spans (`serde_saphyr::Spanned`), so
//! anchors, aliases and merge keys resolve as they do for the values themselves.

use super::meta::Source;
use crate::error::ConfigIssue;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;
use std::collections::HashMap;
use std::fmt;

/// The line of one node and of its children.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LineTree {
    line: usize,
    children: Children,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
enum Children {
    #[default]
    Leaf,
    /// Entries with the line of their key (the key is what a user looks for).
    Map(Vec<(String, usize, LineTree)>),
    Seq(Vec<LineTree>),
}

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Segment {
    Key(String),
    Index(usize),
}

impl LineTree {
    /// The line of the node at `path`, or of its nearest ancestor that exists.
    pub(crate) fn lookup(&self, path: &str) -> usize {
        self.lookup_segments(&split_path(path))
    }

    /// As [`LineTree::lookup`], with the path already split.
    pub(crate) fn lookup_segments(&self, path: &[Segment]) -> usize {
        let mut node = self;
        let mut line = self.line;
        for seg in path {
            let next = match (&node.children, seg) {
                (Children::Map(entries), Segment::Key(k)) => entries
                    .iter()
                    .find(|(name, _, _)| name == k)
                    .map(|(_, key_line, child)| (*key_line, child)),
                (Children::Seq(items), Segment::Index(i)) => items.get(*i).map(|c| (c.line, c)),
                // A map key that looks like a number (`"200": …`).
                (Children::Map(entries), Segment::Index(i)) => {
                    let k = i.to_string();
                    entries
                        .iter()
                        .find(|(name, _, _)| *name == k)
                        .map(|(_, key_line, child)| (*key_line, child))
                }
                _ => None,
            };
            match next {
                Some((l, child)) => {
                    if l > 0 {
                        line = l;
                    }
                    node = child;
                }
                None => break,
            }
        }
        line
    }
}

/// Splits `spec.rules[0].backendRefs[1].weight` or
/// `metadata.annotations[example.com/key]` into segments. A bracketed part that is all
/// digits is an index; any other bracketed part is a key (which may contain dots).
pub(crate) fn split_path(path: &str) -> Vec<Segment> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = path.chars();
    while let Some(c) = chars.next() {
        match c {
            '.' => {
                if !cur.is_empty() {
                    out.push(Segment::Key(std::mem::take(&mut cur)));
                }
            }
            '[' => {
                if !cur.is_empty() {
                    out.push(Segment::Key(std::mem::take(&mut cur)));
                }
                let mut inner = String::new();
                for c in chars.by_ref() {
                    if c == ']' {
                        break;
                    }
                    inner.push(c);
                }
                match inner.parse::<usize>() {
                    Ok(i) if inner.bytes().all(|b| b.is_ascii_digit()) => {
                        out.push(Segment::Index(i))
                    }
                    _ => out.push(Segment::Key(inner)),
                }
            }
            _ => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(Segment::Key(cur));
    }
    out
}

/// Line trees of every document of one file, in document order (empty documents
/// included, so indexes match the values'). `None` when the text does not parse.
pub(crate) fn document_lines(text: &str) -> Option<Vec<LineTree>> {
    let docs: Vec<Spanned<Body>> = serde_saphyr::from_multiple(text).ok()?;
    Some(docs.into_iter().map(tree).collect())
}

fn tree(s: Spanned<Body>) -> LineTree {
    LineTree {
        line: s.referenced.line() as usize,
        children: match s.value {
            Body::Leaf => Children::Leaf,
            Body::Map(entries) => Children::Map(
                entries
                    .into_iter()
                    .map(|(k, v)| (k.value.0, k.referenced.line() as usize, tree(v)))
                    .collect(),
            ),
            Body::Seq(items) => Children::Seq(items.into_iter().map(tree).collect()),
        },
    }
}

/// A node as the span-aware deserializer sees it.
enum Body {
    Leaf,
    Map(Vec<(Spanned<Key>, Spanned<Body>)>),
    Seq(Vec<Spanned<Body>>),
}

/// A mapping key as text (YAML allows numbers and booleans as keys).
struct Key(String);

impl<'de> Deserialize<'de> for Body {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(BodyVisitor)
    }
}

struct BodyVisitor;

macro_rules! leaf {
    ($($name:ident: $t:ty),*) => {$(
        fn $name<E: de::Error>(self, _: $t) -> Result<Body, E> {
            Ok(Body::Leaf)
        }
    )*};
}

impl<'de> Visitor<'de> for BodyVisitor {
    type Value = Body;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML node")
    }

    leaf!(visit_bool: bool, visit_i64: i64, visit_u64: u64, visit_i128: i128, visit_u128: u128,
          visit_f64: f64, visit_str: &str, visit_bytes: &[u8]);

    fn visit_unit<E: de::Error>(self) -> Result<Body, E> {
        Ok(Body::Leaf)
    }

    fn visit_none<E: de::Error>(self) -> Result<Body, E> {
        Ok(Body::Leaf)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Body, D::Error> {
        Body::deserialize(d)
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Body, D::Error> {
        Body::deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Body, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Body>>()? {
            items.push(item);
        }
        Ok(Body::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Body, A::Error> {
        let mut entries = Vec::new();
        while let Some(k) = map.next_key::<Spanned<Key>>()? {
            let v = map.next_value::<Spanned<Body>>()?;
            entries.push((k, v));
        }
        Ok(Body::Map(entries))
    }
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        macro_rules! text {
            ($($name:ident: $t:ty),*) => {$(
                fn $name<E: de::Error>(self, v: $t) -> Result<Key, E> {
                    Ok(Key(v.to_string()))
                }
            )*};
        }
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping key")
            }

            text!(visit_bool: bool, visit_i64: i64, visit_u64: u64, visit_f64: f64, visit_str: &str);

            fn visit_unit<E: de::Error>(self) -> Result<Key, E> {
                Ok(Key(String::new()))
            }
        }
        d.deserialize_any(KeyVisitor)
    }
}

/// Line trees of every loaded document, to give issues their `file:line`.
#[derive(Debug, Default)]
pub(crate) struct Lines {
    docs: HashMap<(String, usize), LineTree>,
    /// `(file, Kind/namespace/name)` → the first document with that label.
    labels: HashMap<(String, String), usize>,
}

impl Lines {
    /// Records one document's tree.
    pub(crate) fn insert(&mut self, source: &Source, label: &str, tree: LineTree) {
        self.labels
            .entry((source.file.clone(), label.to_string()))
            .or_insert(source.index);
        self.docs.insert((source.file.clone(), source.index), tree);
    }

    /// The line of `field` in the document read from `source`.
    pub(crate) fn line_at(&self, source: &Source, field: &str) -> Option<usize> {
        self.docs
            .get(&(source.file.clone(), source.index))
            .map(|t| t.lookup(field))
            .filter(|l| *l > 0)
    }

    /// Gives an issue without a line the line of its field, found through its file
    /// and document label.
    pub(crate) fn fill(&self, issue: &mut ConfigIssue) {
        if issue.line.is_some() {
            return;
        }
        let Some(index) = self
            .labels
            .get(&(issue.file.clone(), issue.document.clone()))
        else {
            return;
        };
        let source = Source {
            file: issue.file.clone(),
            index: *index,
        };
        issue.line = self.line_at(&source, &issue.field);
    }
}

/// Context for issues of one document.
pub(crate) struct DocCtx<'a> {
    pub file: &'a str,
    pub document: String,
    /// Where the document's nodes are, when known.
    pub lines: Option<&'a LineTree>,
}

impl DocCtx<'_> {
    /// An issue at `field`, with the line of that field (or of its nearest ancestor).
    pub(crate) fn issue(
        &self,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> ConfigIssue {
        let field = field.into();
        ConfigIssue {
            file: self.file.to_string(),
            line: self.lines.map(|t| t.lookup(&field)).filter(|l| *l > 0),
            document: self.document.clone(),
            field,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = "a: 1
---
# comment
apiVersion: v1
kind: Thing
spec:
  rules:
    - name: one
      backendRefs:
        - name: x
        - name: y
          weight: 3
  annotations:
    example.com/key: v
  base: &b
    port: 80
  copy:
    <<: *b
";

    #[test]
    fn nested_paths_resolve_to_their_key_lines() {
        let docs = document_lines(YAML).unwrap();
        assert_eq!(docs.len(), 2);
        let d = &docs[1];
        assert_eq!(d.lookup(""), 4);
        assert_eq!(d.lookup("spec"), 6);
        assert_eq!(d.lookup("spec.rules[0]"), 8);
        assert_eq!(d.lookup("spec.rules[0].backendRefs[1]"), 11);
        assert_eq!(d.lookup("spec.rules[0].backendRefs[1].weight"), 12);
        assert_eq!(d.lookup("spec.annotations[example.com/key]"), 14);
    }

    #[test]
    fn missing_paths_fall_back_to_the_nearest_ancestor() {
        let docs = document_lines(YAML).unwrap();
        let d = &docs[1];
        assert_eq!(d.lookup("spec.rules[0].backendRefs[7].weight"), 9);
        assert_eq!(d.lookup("spec.nothing.deeper"), 6);
        assert_eq!(d.lookup(""), 4);
    }

    #[test]
    fn split_path_handles_indexes_and_bracketed_keys() {
        assert_eq!(
            split_path("a.b[2][x.y].c"),
            vec![
                Segment::Key("a".into()),
                Segment::Key("b".into()),
                Segment::Index(2),
                Segment::Key("x.y".into()),
                Segment::Key("c".into()),
            ]
        );
    }
}

//! A YAML node tree with line:column marks, built from yaml-rust2's event
//! parser. Scalars keep their raw text and whether they were plain (unquoted),
//! so that YAML 1.1 booleans and octal numbers are interpreted by us, the way
//! cloud-init does, rather than by a YAML 1.2 core schema.

use std::collections::HashMap;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    Scalar { text: String, plain: bool },
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub kind: Kind,
    pub line: usize,
    pub col: usize,
}

impl Node {
    /// A plain scalar that is YAML's null (`~`, `null`, empty).
    pub fn is_null(&self) -> bool {
        matches!(&self.kind, Kind::Scalar { text, plain: true } if matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }

    /// YAML 1.1 boolean (yes/no/on/off/true/false/y/n in their usual cases).
    pub fn as_bool(&self) -> Option<bool> {
        let Kind::Scalar { text, plain: true } = &self.kind else {
            return None;
        };
        match text.as_str() {
            "true" | "True" | "TRUE" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" | "y" | "Y" => {
                Some(true)
            }
            "false" | "False" | "FALSE" | "no" | "No" | "NO" | "off" | "Off" | "OFF" | "n"
            | "N" => Some(false),
            _ => None,
        }
    }

    /// Any scalar's text (numbers and booleans included, as written).
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    pub fn kind_name(&self) -> &'static str {
        match &self.kind {
            Kind::Scalar { .. } if self.is_null() => "null",
            Kind::Scalar { .. } => "scalar",
            Kind::Seq(_) => "list",
            Kind::Map(_) => "mapping",
        }
    }
}

/// A YAML syntax error with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    pub line: usize,
    pub col: usize,
    pub message: String,
}

/// Parse one YAML document into a node tree. An empty document is a null scalar.
pub fn parse(text: &str) -> Result<Node, YamlError> {
    let mut b = Builder::default();
    let mut parser = Parser::new_from_str(text);
    parser.load(&mut b, false).map_err(|e| YamlError {
        line: e.marker().line(),
        col: e.marker().col() + 1,
        message: e.info().to_string(),
    })?;
    if let Some(e) = b.error {
        return Err(e);
    }
    Ok(b.root.unwrap_or(Node {
        kind: Kind::Scalar {
            text: String::new(),
            plain: true,
        },
        line: 1,
        col: 1,
    }))
}

enum Frame {
    Seq(Node, usize),
    Map(Node, Option<Node>, usize),
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    root: Option<Node>,
    anchors: HashMap<usize, Node>,
    error: Option<YamlError>,
}

impl Builder {
    fn push_node(&mut self, n: Node, anchor: usize) {
        if anchor != 0 {
            self.anchors.insert(anchor, n.clone());
        }
        match self.stack.last_mut() {
            None => {
                if self.root.is_none() {
                    self.root = Some(n);
                }
            }
            Some(Frame::Seq(s, _)) => {
                if let Kind::Seq(v) = &mut s.kind {
                    v.push(n);
                }
            }
            Some(Frame::Map(m, key, _)) => match key.take() {
                None => *key = Some(n),
                Some(k) => {
                    if let Kind::Map(v) = &mut m.kind {
                        v.push((k, n));
                    }
                }
            },
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let (line, col) = (mark.line(), mark.col() + 1);
        match ev {
            Event::Scalar(text, style, anchor, _tag) => {
                let plain = style == TScalarStyle::Plain;
                self.push_node(
                    Node {
                        kind: Kind::Scalar { text, plain },
                        line,
                        col,
                    },
                    anchor,
                );
            }
            Event::SequenceStart(anchor, _) => self.stack.push(Frame::Seq(
                Node {
                    kind: Kind::Seq(Vec::new()),
                    line,
                    col,
                },
                anchor,
            )),
            Event::MappingStart(anchor, _) => self.stack.push(Frame::Map(
                Node {
                    kind: Kind::Map(Vec::new()),
                    line,
                    col,
                },
                None,
                anchor,
            )),
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some(f) = self.stack.pop() {
                    let (n, a) = match f {
                        Frame::Seq(n, a) => (n, a),
                        Frame::Map(n, _, a) => (n, a),
                    };
                    self.push_node(n, a);
                }
            }
            Event::Alias(id) => match self.anchors.get(&id).cloned() {
                Some(n) => self.push_node(n, 0),
                None => {
                    self.error.get_or_insert(YamlError {
                        line,
                        col,
                        message: "alias to an unknown anchor".into(),
                    });
                }
            },
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_and_booleans() {
        let n = parse("a: yes\nb:\n  - 'on'\n  - &x 7\nc: *x\n").unwrap();
        let Kind::Map(m) = &n.kind else { panic!() };
        assert_eq!(m[0].0.as_str(), Some("a"));
        assert_eq!(m[0].1.as_bool(), Some(true));
        assert_eq!((m[1].0.line, m[1].0.col), (2, 1));
        let Kind::Seq(s) = &m[1].1.kind else { panic!() };
        assert_eq!(s[0].as_bool(), None, "quoted 'on' is a string");
        assert_eq!((s[0].line, s[0].col), (3, 5));
        assert_eq!(m[2].1.as_str(), Some("7"));
    }

    #[test]
    fn syntax_error_has_position() {
        let e = parse("a: [1, 2\nb: c\n").unwrap_err();
        assert!(e.line >= 1, "{e:?}");
    }
}

//! Config diagnostics that point at the offending key: `file:line:col: key: reason`.
//!
//! Semantic checks work on the typed config, which has forgotten where each
//! value came from. They report a [`KeyPath`]; [`SourceMap`] finds that path in
//! the spanned TOML tree again, so every message names a line and column.

use std::fmt;
use std::ops::Range;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// One step into the config tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathSeg {
    Key(String),
    Index(usize),
}

/// A dotted key path such as `approaches.north.stop_line[1]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyPath(pub Vec<PathSeg>);

impl KeyPath {
    pub fn root() -> Self {
        Self(Vec::new())
    }

    /// This path extended by a key.
    pub fn key(&self, key: &str) -> Self {
        let mut segs = self.0.clone();
        segs.push(PathSeg::Key(key.to_owned()));
        Self(segs)
    }

    /// This path extended by an array index.
    pub fn index(&self, index: usize) -> Self {
        let mut segs = self.0.clone();
        segs.push(PathSeg::Index(index));
        Self(segs)
    }

    /// Builds a path from dotted keys, e.g. `KeyPath::of(&["detector", "model"])`.
    pub fn of(keys: &[&str]) -> Self {
        Self(keys.iter().map(|k| PathSeg::Key((*k).to_owned())).collect())
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                PathSeg::Key(k) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    let bare = !k.is_empty()
                        && k.chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                    if bare {
                        f.write_str(k)?;
                    } else {
                        write!(f, "{k:?}")?;
                    }
                }
                PathSeg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// A problem found in a config, already placed in its source text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Where the text came from, usually the file path.
    pub origin: String,
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    /// Empty for problems that belong to no key (syntax errors).
    pub path: String,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.origin, self.line, self.column)?;
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

/// The spanned TOML tree of a config, for turning key paths into positions.
pub struct SourceMap<'i> {
    text: &'i str,
    root: Option<Spanned<DeTable<'i>>>,
}

impl<'i> SourceMap<'i> {
    /// Parses `text`; a syntax error leaves a map that places everything at 1:1.
    pub fn new(text: &'i str) -> Self {
        Self {
            text,
            root: DeTable::parse(text).ok(),
        }
    }

    /// Line and column of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = self.text.get(..offset).unwrap_or(self.text);
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
        (line, column)
    }

    /// Byte range of the deepest item along `path` that exists in the text:
    /// the value itself when present, else its nearest ancestor's key.
    pub fn span(&self, path: &KeyPath) -> Range<usize> {
        let Some(root) = &self.root else {
            return 0..0;
        };
        let mut best = 0..0;
        let mut table: Option<&DeTable<'i>> = Some(root.get_ref());
        let mut array: Option<&[Spanned<DeValue<'i>>]> = None;
        for seg in &path.0 {
            let found = match (seg, table, array) {
                (PathSeg::Key(k), Some(t), _) => t
                    .iter()
                    .find(|(key, _)| key.get_ref().as_ref() == k.as_str())
                    .map(|(key, value)| (key.span(), value)),
                (PathSeg::Index(i), _, Some(a)) => a.get(*i).map(|v| (v.span(), v)),
                _ => None,
            };
            let Some((key_span, value)) = found else {
                break;
            };
            // A `[table]` header's value span covers its whole body; its key is
            // the better place to point at.
            best = match value.get_ref() {
                DeValue::Table(_) => key_span,
                _ => value.span(),
            };
            table = value.get_ref().as_table();
            array = value.get_ref().as_array().map(|a| a.as_ref());
        }
        best
    }

    pub fn diagnostic(&self, origin: &str, path: &KeyPath, message: String) -> Diagnostic {
        let (line, column) = self.line_col(self.span(path).start);
        Diagnostic {
            origin: origin.to_owned(),
            line,
            column,
            path: path.to_string(),
            message,
        }
    }
}

//! A small JSON reader that keeps source positions and refuses duplicate object keys.
//!
//! Why not `serde_json::Value`: IAM refuses a document whose object repeats a key ("Individual
//! elements must not contain multiple instances of the same key", `UG:reference_policies_grammar.md`),
//! which `serde_json::Value` silently collapses, and the broker reports the line and column of each
//! matched statement, which `serde_json` does not expose. String unescaping is delegated to
//! `serde_json` so escape handling stays exactly RFC 8259.

use super::error::PolicyError;

/// Maximum nesting depth; a policy never needs more than about six levels.
const MAX_DEPTH: usize = 32;

/// A JSON value with the byte offsets of its first and one-past-last character.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub value: Json,
    pub start: usize,
    pub end: usize,
}

/// JSON data. Numbers keep their source text so decimals are never rounded.
#[derive(Debug, Clone)]
pub(crate) enum Json {
    Null,
    Bool(bool),
    Number(String),
    Str(String),
    Array(Vec<Node>),
    Object(Vec<(String, Node)>),
}

impl Json {
    pub fn type_name(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "a boolean",
            Json::Number(_) => "a number",
            Json::Str(_) => "a string",
            Json::Array(_) => "an array",
            Json::Object(_) => "an object",
        }
    }
}

/// Maps byte offsets to 1-based (line, column-in-characters).
pub(crate) struct LineIndex<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    pub fn new(text: &'a str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { text, starts }
    }

    pub fn position(&self, offset: usize) -> (u32, u32) {
        let line = match self.starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        };
        let start = self.starts.get(line).copied().unwrap_or(0);
        let column = self
            .text
            .get(start..offset)
            .map_or(0, |s| s.chars().count());
        (to_u32(line + 1), to_u32(column + 1))
    }
}

/// Characters IAM accepts in a policy document.
pub(crate) fn is_allowed_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | ' '..='\u{FF}')
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Parses `text` as one JSON value (surrounding whitespace allowed).
pub(crate) fn parse(text: &str) -> Result<Node, PolicyError> {
    let mut p = Reader {
        text,
        bytes: text.as_bytes(),
        pos: 0,
    };
    p.skip_ws();
    let node = p.value(0)?;
    p.skip_ws();
    if p.pos != p.bytes.len() {
        return Err(p.error("trailing characters after the JSON value"));
    }
    Ok(node)
}

struct Reader<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn error(&self, message: &str) -> PolicyError {
        self.error_at(self.pos, message)
    }

    fn error_at(&self, offset: usize, message: &str) -> PolicyError {
        let (line, column) = LineIndex::new(self.text).position(offset);
        PolicyError::Json {
            message: message.to_owned(),
            line,
            column,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    fn expect_byte(&mut self, b: u8, what: &str) -> Result<(), PolicyError> {
        if self.peek() == Some(b) {
            self.pos += 1;
            Ok(())
        } else if self.peek().is_none() {
            Err(self.error(&format!("unexpected end of input, expected {what}")))
        } else {
            Err(self.error(&format!("expected {what}")))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Node, PolicyError> {
        if depth > MAX_DEPTH {
            return Err(self.error("nesting too deep"));
        }
        let start = self.pos;
        let value = match self.peek() {
            None => return Err(self.error("unexpected end of input, expected a value")),
            Some(b'{') => self.object(depth)?,
            Some(b'[') => self.array(depth)?,
            Some(b'"') => Json::Str(self.string()?),
            Some(b't') => self.keyword("true", Json::Bool(true))?,
            Some(b'f') => self.keyword("false", Json::Bool(false))?,
            Some(b'n') => self.keyword("null", Json::Null)?,
            Some(b'-' | b'0'..=b'9') => self.number()?,
            Some(_) => return Err(self.error("expected a value")),
        };
        Ok(Node {
            value,
            start,
            end: self.pos,
        })
    }

    fn keyword(&mut self, word: &str, value: Json) -> Result<Json, PolicyError> {
        if self.bytes.get(self.pos..self.pos + word.len()) == Some(word.as_bytes()) {
            self.pos += word.len();
            Ok(value)
        } else {
            Err(self.error("expected a value"))
        }
    }

    fn number(&mut self) -> Result<Json, PolicyError> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(self.error("invalid number")),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.error("invalid number"));
            }
            self.digits();
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.error("invalid number"));
            }
            self.digits();
        }
        let raw = self.text.get(start..self.pos).unwrap_or_default();
        Ok(Json::Number(raw.to_owned()))
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
    }

    fn string(&mut self) -> Result<String, PolicyError> {
        let start = self.pos;
        self.pos += 1; // opening quote
        let mut escaped = false;
        loop {
            match self.peek() {
                None => return Err(self.error_at(start, "unterminated string")),
                Some(b'"') => {
                    self.pos += 1;
                    break;
                }
                Some(b'\\') => {
                    escaped = true;
                    self.pos += 2;
                }
                Some(b) if b < 0x20 => {
                    return Err(self.error("control character inside a string"));
                }
                Some(_) => self.pos += 1,
            }
        }
        let raw = self
            .text
            .get(start..self.pos)
            .ok_or_else(|| self.error_at(start, "unterminated string"))?;
        if !escaped {
            // INVARIANT: `raw` starts and ends with `"` (ASCII), so the inner slice is on char
            // boundaries.
            return Ok(raw.get(1..raw.len() - 1).unwrap_or_default().to_owned());
        }
        let s = serde_json::from_str::<String>(raw)
            .map_err(|e| self.error_at(start, &format!("invalid string: {e}")))?;
        // SECURITY: the character rule of `UG:reference_iam-quotas.md` also applies to escaped
        // characters, which keeps private-use markers used by the glob compiler out of values.
        if let Some(c) = s.chars().find(|c| !is_allowed_char(*c)) {
            return Err(self.error_at(
                start,
                &format!(
                    "escaped character U+{:04X} is not allowed in a policy",
                    u32::from(c)
                ),
            ));
        }
        Ok(s)
    }

    /// The elements of an array or the members of an object, the parser at its opening bracket:
    /// `element` reads each one (white space around it already skipped), until `close`.
    fn elements(
        &mut self,
        close: u8,
        mut element: impl FnMut(&mut Self) -> Result<(), PolicyError>,
    ) -> Result<(), PolicyError> {
        self.pos += 1;
        self.skip_ws();
        if self.peek() == Some(close) {
            self.pos += 1;
            return Ok(());
        }
        loop {
            self.skip_ws();
            element(self)?;
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(c) if c == close => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(self.error(&format!("expected `,` or `{}`", char::from(close)))),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<Json, PolicyError> {
        let mut items = Vec::new();
        self.elements(b']', |p| {
            items.push(p.value(depth + 1)?);
            Ok(())
        })?;
        Ok(Json::Array(items))
    }

    fn object(&mut self, depth: usize) -> Result<Json, PolicyError> {
        let mut members: Vec<(String, Node)> = Vec::new();
        self.elements(b'}', |p| {
            let key_start = p.pos;
            if p.peek() != Some(b'"') {
                return Err(p.error("expected a string key"));
            }
            let key = p.string()?;
            if members.iter().any(|(k, _)| *k == key) {
                return Err(p.error_at(
                    key_start,
                    &format!("duplicate key `{key}` in the same object"),
                ));
            }
            p.skip_ws();
            p.expect_byte(b':', "`:`")?;
            p.skip_ws();
            let value = p.value(depth + 1)?;
            members.push((key, value));
            Ok(())
        })?;
        Ok(Json::Object(members))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_nested_values_with_positions() {
        let text = "{\n  \"a\": [1, \"x\\n\", true, null],\n  \"b\": {\"c\": -2.5e3}\n}";
        let node = parse(text).unwrap();
        let Json::Object(members) = node.value else {
            panic!("not an object")
        };
        assert_eq!(members.len(), 2);
        let (_, b) = &members[1];
        let idx = LineIndex::new(text);
        assert_eq!(idx.position(b.start), (3, 8));
        let Json::Array(items) = &members[0].1.value else {
            panic!("not an array")
        };
        assert!(matches!(&items[1].value, Json::Str(s) if s == "x\n"));
        assert!(matches!(&items[0].value, Json::Number(n) if n == "1"));
    }

    #[test]
    fn refuses_duplicates_and_garbage() {
        let err = parse("{\"a\": 1, \"a\": 2}").unwrap_err().to_string();
        assert!(err.contains("duplicate key `a`"), "{err}");
        assert!(parse("{\"a\": 1,}").is_err());
        assert!(parse("[1 2]").is_err());
        assert!(parse("\"abc").is_err());
        assert!(parse("{} x").is_err());
        assert!(parse("01").is_err());
        let deep = "[".repeat(100) + &"]".repeat(100);
        assert!(parse(&deep).unwrap_err().to_string().contains("nesting"));
    }
}

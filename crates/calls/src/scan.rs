//! A fast, validating JSON scanner for calls.
//!
//! Reading a call is mostly skipping over its nested objects: they are kept as
//! text, so all that is needed is to check that they are valid JSON and find where
//! they end. This scanner does that in one pass over the bytes without building
//! anything. It accepts only valid JSON (RFC 8259) and gives up (`None`) on anything
//! it does not handle itself, leaving the call to the serde_json path, which then
//! produces the same call or a precise error.

use std::borrow::Cow;

/// Nesting deeper than this is left to serde_json (which has the same limit).
const MAX_DEPTH: usize = 127;

/// Bytes that end a fast run inside a string: `"`, `\` and control bytes.
const fn string_stops() -> [bool; 256] {
    let mut table = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        table[i] = true;
        i += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table
}
static STRING_STOP: [bool; 256] = string_stops();

/// A cursor over valid UTF-8 text holding JSON.
pub(crate) struct Scanner<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pub(crate) at: usize,
}

impl<'a> Scanner<'a> {
    pub(crate) fn new(text: &'a str) -> Scanner<'a> {
        Scanner { text, bytes: text.as_bytes(), at: 0 }
    }

    pub(crate) fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    pub(crate) fn at_end(&self) -> bool {
        self.at == self.bytes.len()
    }

    /// Skips white space; true if there was any.
    pub(crate) fn ws(&mut self) -> bool {
        let start = self.at;
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.at += 1;
        }
        self.at > start
    }

    /// Consumes `byte` or fails.
    pub(crate) fn eat(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.at += 1)
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.at + word.len();
        (self.bytes.get(self.at..end)? == word).then(|| self.at = end)
    }

    /// At an opening quote: the string's raw content (between the quotes) and
    /// whether it holds escapes. Checks escapes and rejects raw control bytes.
    pub(crate) fn string(&mut self) -> Option<(&'a str, bool)> {
        let start = self.at + 1;
        let escaped = self.skip_string()?;
        Some((&self.text[start..self.at - 1], escaped))
    }

    /// At an opening quote: moves past the closing quote, checking escapes and
    /// rejecting raw control bytes. Returns whether the string holds escapes.
    #[inline]
    fn skip_string(&mut self) -> Option<bool> {
        self.eat(b'"')?;
        let mut escaped = false;
        loop {
            self.skip_plain_string_bytes();
            match self.peek()? {
                b'"' => {
                    self.at += 1;
                    return Some(escaped);
                }
                b'\\' => {
                    escaped = true;
                    self.at += 1;
                    match self.peek()? {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.at += 1,
                        b'u' => {
                            let hex = self.bytes.get(self.at + 1..self.at + 5)?;
                            if !hex.iter().all(u8::is_ascii_hexdigit) {
                                return None;
                            }
                            self.at += 5;
                        }
                        _ => return None,
                    }
                }
                _ => return None, // a raw control byte
            }
        }
    }

    /// Advances over string bytes that need no attention (not `"`, `\\` or a control
    /// byte), eight at a time where possible.
    #[inline]
    fn skip_plain_string_bytes(&mut self) {
        const ONES: u64 = 0x0101_0101_0101_0101;
        const HIGHS: u64 = 0x8080_8080_8080_8080;
        // Exact tests for "some byte is zero" and "some byte is below n" (n <= 128).
        let has_zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGHS;
        let has_less = |v: u64, n: u64| v.wrapping_sub(ONES * n) & !v & HIGHS;
        while let Some(word) = self.bytes.get(self.at..self.at + 8) {
            let v = u64::from_le_bytes(word.try_into().expect("eight bytes"));
            let stops = has_less(v, 0x20)
                | has_zero(v ^ (ONES * u64::from(b'"')))
                | has_zero(v ^ (ONES * u64::from(b'\\')));
            if stops != 0 {
                // The lowest flagged byte is exact (false positives only appear above
                // a true one), so it is the first byte that needs attention.
                self.at += (stops.trailing_zeros() / 8) as usize;
                return;
            }
            self.at += 8;
        }
        while self.at < self.bytes.len() && !STRING_STOP[usize::from(self.bytes[self.at])] {
            self.at += 1;
        }
    }

    fn digits(&mut self) -> Option<()> {
        let start = self.at;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.at += 1;
        }
        (self.at > start).then_some(())
    }

    fn number(&mut self) -> Option<()> {
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        match self.peek()? {
            b'0' => self.at += 1,
            b'1'..=b'9' => self.digits()?,
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            self.digits()?;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.at += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.at += 1;
            }
            self.digits()?;
        }
        Some(())
    }

    /// Skips one value of any kind; true if it held insignificant white space.
    fn value(&mut self, depth: usize) -> Option<bool> {
        match self.peek()? {
            b'"' => self.skip_string().map(|_| false),
            b'{' => self.container(depth, b'}', true),
            b'[' => self.container(depth, b']', false),
            b't' => self.literal(b"true").map(|()| false),
            b'f' => self.literal(b"false").map(|()| false),
            b'n' => self.literal(b"null").map(|()| false),
            b'-' | b'0'..=b'9' => self.number().map(|()| false),
            _ => None,
        }
    }

    fn container(&mut self, depth: usize, close: u8, object: bool) -> Option<bool> {
        if depth >= MAX_DEPTH {
            return None;
        }
        self.at += 1;
        let mut spaced = self.ws();
        if self.peek()? == close {
            self.at += 1;
            return Some(spaced);
        }
        loop {
            if object {
                self.skip_string()?;
                spaced |= self.ws();
                self.eat(b':')?;
                spaced |= self.ws();
            }
            spaced |= self.value(depth + 1)?;
            spaced |= self.ws();
            match self.peek()? {
                b',' => {
                    self.at += 1;
                    spaced |= self.ws();
                }
                b if b == close => {
                    self.at += 1;
                    return Some(spaced);
                }
                _ => return None,
            }
        }
    }

    /// Skips one value and returns its compact text.
    pub(crate) fn raw(&mut self) -> Option<Cow<'a, str>> {
        let start = self.at;
        let spaced = self.value(0)?;
        let text = &self.text[start..self.at];
        Some(if spaced {
            Cow::Owned(crate::json::compact(text).unwrap_or_else(|| text.to_owned()))
        } else {
            Cow::Borrowed(text)
        })
    }
}

/// Decodes the escapes of a string's raw content; `None` for a lone surrogate.
pub(crate) fn unescape(content: &str) -> Option<String> {
    let bytes = content.as_bytes();
    let mut out = String::with_capacity(content.len());
    let mut i = 0;
    let hex = |at: usize| -> Option<u32> { u32::from_str_radix(content.get(at..at + 4)?, 16).ok() };
    while i < bytes.len() {
        let next = memchr::memchr(b'\\', &bytes[i..]).map_or(bytes.len(), |off| i + off);
        out.push_str(&content[i..next]);
        i = next;
        if i == bytes.len() {
            break;
        }
        let c = match bytes.get(i + 1)? {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let first = hex(i + 2)?;
                i += 4;
                let code = match first {
                    0xD800..=0xDBFF => {
                        if bytes.get(i + 2..i + 4)? != b"\\u" {
                            return None;
                        }
                        let second = hex(i + 4)?;
                        if !(0xDC00..=0xDFFF).contains(&second) {
                            return None;
                        }
                        i += 6;
                        0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
                    }
                    0xDC00..=0xDFFF => return None,
                    code => code,
                };
                char::from_u32(code)?
            }
            _ => return None,
        };
        out.push(c);
        i += 2;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn skims(text: &str) -> bool {
        let mut s = Scanner::new(text);
        s.ws();
        s.value(0).is_some() && {
            s.ws();
            s.at_end()
        }
    }

    #[test]
    fn accepts_exactly_what_serde_json_accepts() {
        let cases = [
            "{}",
            "[]",
            "{\"a\":1}",
            " { \"a\" : [ 1 , 2.5e-3 , -0 , true , false , null ] } ",
            "\"\\u00e9\\n\"",
            "{\"a\":{\"b\":{\"c\":[[[]]]}}}",
            "-12.5E+10",
            "0.0",
            "{\"a\":1,}",
            "[1,]",
            "{\"a\" 1}",
            "01",
            "1.",
            "-",
            "1e",
            "+1",
            "\"\\x\"",
            "\"\\u12g4\"",
            "\"a\u{1}b\"",
            "tru",
            "nul",
            "[1 2]",
            "{1:2}",
            "{\"a\":1}}",
            "",
            "   ",
            "[",
            "\"",
            "{\"a\":\"b\"",
            "NaN",
            "[1,[2,[3]],{\"x\":\"y\\\"z\"}]",
        ];
        for text in cases {
            let serde_ok = serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok();
            assert_eq!(skims(text), serde_ok, "{text:?}");
        }
    }

    #[test]
    fn unescapes_like_serde_json() {
        for text in
            [r#""plain""#, r#""a\"b\\c\/d\b\f\n\r\t""#, r#""\u00e9\u20ac\ud83c\udf89""#, r#""\u0000""#]
        {
            let content = &text[1..text.len() - 1];
            assert_eq!(
                unescape(content).as_deref(),
                Some(serde_json::from_str::<String>(text).unwrap().as_str())
            );
        }
        assert_eq!(unescape(r"\ud83c"), None, "lone high surrogate");
        assert_eq!(unescape(r"\udf89"), None, "lone low surrogate");
    }

    #[test]
    fn deep_nesting_is_left_to_serde_json() {
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert!(!skims(&deep));
        let ok = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert!(skims(&ok));
    }

    proptest::proptest! {
        #[test]
        fn never_accepts_invalid_json(text in "[\\[\\]{}\":,0-9a-z\\\\ .eE+-]{0,24}") {
            if skims(&text) {
                proptest::prop_assert!(serde_json::from_str::<serde::de::IgnoredAny>(&text).is_ok(), "{:?}", text);
            }
        }
    }
}

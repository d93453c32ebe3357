//! A strict RFC 8259 validator for one JSON text, fast and allocation-free per line.
//!
//! The `jsonl` probe only needs to know whether a line is JSON, and it must agree with the
//! grammar of RFC 8259 exactly: `ws value ws`, objects, arrays, strings (no raw control
//! characters, only the escapes `\" \\ \/ \b \f \n \r \t \uXXXX`), numbers
//! (`-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`, any magnitude), `true`, `false`,
//! `null`; whitespace is space, tab, `\n`, `\r`. What the grammar allows, this allows too:
//! duplicate keys, numbers too large for a float, nesting of any depth (the depth stack is
//! bounded by the line length, itself bounded by `max_line_bytes`), and `\u` escapes of lone
//! surrogates. A byte order mark is not JSON text (RFC 8259 §8.1: "MUST NOT add"), so it is
//! malformed here.
//!
//! The input must already be valid UTF-8 (the probe checks that first, and counts it apart);
//! this walks bytes and never decodes, so only ASCII bytes matter to it.
//!
//! No recursion: a stack of open containers (one byte each) replaces it, so a line of a
//! million `[` cannot overflow the thread's stack.

/// Why a line is not JSON, and where (1-based byte column).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// What was wrong.
    pub message: &'static str,
    /// 1-based byte offset in the line.
    pub column: usize,
}

impl std::fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at column {}", self.message, self.column)
    }
}

/// A reusable validator: its stack is kept between lines so a scan allocates once.
#[derive(Debug, Default)]
pub struct Validator {
    /// Open containers: `b'{'` or `b'['`.
    stack: Vec<u8>,
}

/// Bytes that end the fast path through a string: `"`, `\` and control characters.
const fn string_stops() -> [bool; 256] {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
}
static STRING_STOP: [bool; 256] = string_stops();

impl Validator {
    /// A new validator.
    #[must_use]
    pub fn new() -> Self {
        Validator::default()
    }

    /// Check that `text` is exactly one JSON text.
    ///
    /// # Errors
    /// The first place where the grammar does not hold.
    pub fn validate(&mut self, text: &[u8]) -> Result<(), SyntaxError> {
        self.check(text).map(|_| ())
    }

    /// Like [`Validator::validate`], and say whether the text is all ASCII (`Ok(true)`): then
    /// it is valid UTF-8 without looking again. (Outside strings, a byte over 0x7F is a
    /// syntax error anyway; inside them the fast path notes any.)
    ///
    /// # Errors
    /// The first place where the grammar does not hold.
    pub fn check(&mut self, text: &[u8]) -> Result<bool, SyntaxError> {
        self.stack.clear();
        let mut p = Parser {
            b: text,
            i: 0,
            high: 0,
        };
        if text.starts_with(b"\xEF\xBB\xBF") {
            return Err(p.err("byte order mark"));
        }
        p.ws();
        'value: loop {
            // Expecting a value.
            match p.peek() {
                Some(b'{') => {
                    p.i += 1;
                    p.ws();
                    if p.peek() == Some(b'}') {
                        p.i += 1;
                    } else {
                        self.stack.push(b'{');
                        p.key()?;
                        continue 'value;
                    }
                }
                Some(b'[') => {
                    p.i += 1;
                    p.ws();
                    if p.peek() == Some(b']') {
                        p.i += 1;
                    } else {
                        self.stack.push(b'[');
                        continue 'value;
                    }
                }
                Some(b'"') => p.string()?,
                Some(b't') => p.literal(b"true")?,
                Some(b'f') => p.literal(b"false")?,
                Some(b'n') => p.literal(b"null")?,
                Some(b'-' | b'0'..=b'9') => p.number()?,
                Some(_) => return Err(p.err("expected a value")),
                None => return Err(p.err("unexpected end, expected a value")),
            }
            // After a value: close containers, or a comma and the next value.
            loop {
                p.ws();
                match (self.stack.last(), p.peek()) {
                    (None, None) => return Ok(p.high & HIGHS == 0),
                    (None, Some(_)) => return Err(p.err("trailing characters")),
                    (Some(_), None) => return Err(p.err("unexpected end, unclosed container")),
                    (Some(b'{'), Some(b',')) => {
                        p.i += 1;
                        p.ws();
                        p.key()?;
                        continue 'value;
                    }
                    (Some(b'['), Some(b',')) => {
                        p.i += 1;
                        p.ws();
                        continue 'value;
                    }
                    (Some(b'{'), Some(b'}')) | (Some(b'['), Some(b']')) => {
                        p.i += 1;
                        self.stack.pop();
                    }
                    (Some(b'{'), Some(_)) => return Err(p.err("expected `,` or `}`")),
                    (Some(_), Some(_)) => return Err(p.err("expected `,` or `]`")),
                }
            }
        }
    }
}

/// A cursor over the bytes of one line.
struct Parser<'a> {
    b: &'a [u8],
    i: usize,
    /// Every string byte seen, OR-ed: a high bit set means a non-ASCII byte.
    high: u64,
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The high bit of each byte of `x` that is `"`, `\\` or below 0x20 — exact for the lowest such
/// byte (the usual has-zero-byte trick; a borrow can only mark bytes above a true one).
#[inline]
fn stop_bytes(x: u64) -> u64 {
    let quote = x ^ (ONES * u64::from(b'"'));
    let slash = x ^ (ONES * u64::from(b'\\'));
    let zq = quote.wrapping_sub(ONES) & !quote;
    let zs = slash.wrapping_sub(ONES) & !slash;
    let ctl = x.wrapping_sub(ONES * 0x20) & !x;
    (zq | zs | ctl) & HIGHS
}

impl Parser<'_> {
    fn err(&self, message: &'static str) -> SyntaxError {
        SyntaxError {
            message,
            column: self.i + 1,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    /// An object key, the colon after it, and the whitespace before the value.
    fn key(&mut self) -> Result<(), SyntaxError> {
        if self.peek() != Some(b'"') {
            return Err(self.err(if self.peek().is_none() {
                "unexpected end, expected a key"
            } else {
                "expected a string key"
            }));
        }
        self.string()?;
        self.ws();
        if self.peek() != Some(b':') {
            return Err(self.err("expected `:`"));
        }
        self.i += 1;
        self.ws();
        Ok(())
    }

    /// A string; `self.i` is at its opening quote.
    fn string(&mut self) -> Result<(), SyntaxError> {
        self.i += 1;
        loop {
            // Fast path: skip ordinary bytes (UTF-8 continuation bytes included), eight at a
            // time, then one at a time to the stop.
            while let Some(w) = self
                .b
                .get(self.i..self.i + 8)
                .and_then(|w| <[u8; 8]>::try_from(w).ok())
            {
                let x = u64::from_le_bytes(w);
                // The window may reach past the string's end: a high byte there is either in
                // another string of the line or a syntax error, so noting it is harmless.
                self.high |= x;
                let stops = stop_bytes(x);
                if stops != 0 {
                    self.i += (stops.trailing_zeros() / 8) as usize;
                    break;
                }
                self.i += 8;
            }
            while let Some(&c) = self.b.get(self.i) {
                if STRING_STOP[c as usize] {
                    break;
                }
                self.high |= u64::from(c);
                self.i += 1;
            }
            match self.peek() {
                Some(b'"') => {
                    self.i += 1;
                    return Ok(());
                }
                Some(b'\\') => {
                    self.i += 1;
                    match self.peek() {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                            self.i += 1;
                        }
                        Some(b'u') => {
                            self.i += 1;
                            for _ in 0..4 {
                                if !self.peek().is_some_and(|c| c.is_ascii_hexdigit()) {
                                    return Err(self.err("invalid \\u escape"));
                                }
                                self.i += 1;
                            }
                        }
                        None => return Err(self.err("unexpected end in a string")),
                        Some(_) => return Err(self.err("invalid escape")),
                    }
                }
                Some(_) => return Err(self.err("control character in a string")),
                None => return Err(self.err("unexpected end in a string")),
            }
        }
    }

    fn literal(&mut self, word: &'static [u8]) -> Result<(), SyntaxError> {
        if self.b[self.i..].starts_with(word) {
            self.i += word.len();
            Ok(())
        } else {
            Err(self.err("invalid literal"))
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
        self.i - start
    }

    fn number(&mut self) -> Result<(), SyntaxError> {
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek() {
            Some(b'0') => {
                self.i += 1;
                if self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    return Err(self.err("leading zero in a number"));
                }
            }
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(self.err("expected a digit")),
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            if self.digits() == 0 {
                return Err(self.err("expected a digit after `.`"));
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            if self.digits() == 0 {
                return Err(self.err("expected a digit in the exponent"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> bool {
        Validator::new().validate(s.as_bytes()).is_ok()
    }

    #[test]
    fn accepts_what_the_grammar_allows() {
        for s in [
            "0",
            "-0",
            "-0.0e+0",
            "1E400",
            "123456789012345678901234567890",
            "true",
            " null ",
            "\"\"",
            "\"\\u0000\\ud800 \\/\\b\\f\\n\\r\\t\\\"\\\\\"",
            "\"é漢字🙂\"",
            "[]",
            "{}",
            "[1,[2,[3,{}]],{\"a\":{\"b\":[]}}]",
            "{\"a\":1,\"a\":2}",
            "\t{ \"k\" : [ 1 , 2 ] }\r\n",
        ] {
            assert!(ok(s), "{s:?} should be valid");
        }
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(ok(&deep));
    }

    #[test]
    fn rejects_what_it_does_not() {
        for (s, msg) in [
            ("", "unexpected end, expected a value"),
            ("   ", "unexpected end, expected a value"),
            ("01", "leading zero in a number"),
            ("-", "expected a digit"),
            ("1.", "expected a digit after `.`"),
            (".5", "expected a value"),
            ("1e", "expected a digit in the exponent"),
            ("+1", "expected a value"),
            ("NaN", "expected a value"),
            ("Infinity", "expected a value"),
            ("tru", "invalid literal"),
            ("nulls", "trailing characters"),
            ("{} {}", "trailing characters"),
            ("[1,]", "expected a value"),
            ("{\"a\":1,}", "expected a string key"),
            ("{'a':1}", "expected a string key"),
            ("{\"a\" 1}", "expected `:`"),
            ("{\"a\":1", "unexpected end, unclosed container"),
            ("[1 2]", "expected `,` or `]`"),
            ("{\"a\":1]", "expected `,` or `}`"),
            ("[1}", "expected `,` or `]`"),
            ("\"abc", "unexpected end in a string"),
            ("\"a\tb\"", "control character in a string"),
            ("\"a\\x\"", "invalid escape"),
            ("\"\\u12g4\"", "invalid \\u escape"),
            ("\u{feff}{}", "byte order mark"),
            ("\0", "expected a value"),
            (
                "{\"ts\": 1, \"broken\": ",
                "unexpected end, expected a value",
            ),
        ] {
            let e = Validator::new().validate(s.as_bytes()).unwrap_err();
            assert_eq!(e.message, msg, "{s:?}");
        }
        let e = Validator::new().validate(b"[1, x]").unwrap_err();
        assert_eq!(e.column, 5);
        assert_eq!(e.to_string(), "expected a value at column 5");
    }

    #[test]
    fn agrees_with_serde_json_where_serde_json_is_strict() {
        // serde_json is strict except for depth (128), huge numbers and lone surrogates;
        // on everything else the two must agree.
        let mut v = Validator::new();
        let corpus = [
            "{\"a\":[1,2.5,-3e2,true,false,null,\"x\"]}",
            "[1,2",
            "{\"a\":}",
            "[\"\\u00e9\"]",
            "[1e5, 0.1, -0]",
            "[01]",
            "\"\\q\"",
            "{\"a\":1}x",
            "[[[]]]",
            "{\"\":\"\"}",
        ];
        for s in corpus {
            let ours = v.validate(s.as_bytes()).is_ok();
            let theirs = serde_json::from_str::<serde::de::IgnoredAny>(s).is_ok();
            assert_eq!(ours, theirs, "{s:?}");
        }
    }
}

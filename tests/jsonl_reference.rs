//! The `jsonl` probe's verdicts against a strict reference: Python's `json.loads`, made
//! strict (bytes decoded as UTF-8 strictly, `NaN`/`Infinity` rejected through
//! `parse_constant`, the recursion limit raised and run on a thread with a large stack so
//! 100000-deep nesting parses, big integers allowed), one trailing `\r` stripped, an empty
//! line counted apart, a line over `max_line_bytes` oversized and not parsed.
//!
//! The corpus is built here: damaged lines (CRLF, BOM, NUL, invalid UTF-8, deep nesting, huge
//! numbers, duplicate keys, trailing garbage, control characters, bad escapes, lone
//! surrogates, NaN/Infinity, leading zeros, empty and blank lines, oversized lines), seeded
//! random mutations of valid texts, and enough valid lines (over 8 MiB) that the probe splits
//! the scan among workers. Each line's verdict must agree with Python's, and the probe's
//! totals with the reference's counts.
//!
//! Needs `python3` (standard library only).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use runbook::probes::json_strict::Validator;
use serde_json::Value;

/// `max_line_bytes` for the corpus (the probe's default).
const MAX: usize = 1 << 20;

/// The reference: prints one verdict per line of the file (`ok`, `malformed`, `empty`,
/// `oversized`, `invalid_utf8`). Errors other than a JSON syntax error (a `RecursionError`,
/// say) stop it with status 3 instead of passing for a verdict.
const REFERENCE: &str = r#"
import json, sys, threading, traceback

sys.setrecursionlimit(1_000_000)
if hasattr(sys, "set_int_max_str_digits"):
    sys.set_int_max_str_digits(0)
threading.stack_size(512 * 1024 * 1024)

class Constant(ValueError):
    pass

def reject(name):
    raise Constant(name)

def verdict(raw, max_len):
    if len(raw) > max_len:
        return "oversized"
    if raw.endswith(b"\r"):
        raw = raw[:-1]
    if not raw:
        return "empty"
    try:
        text = raw.decode("utf-8", errors="strict")
    except UnicodeDecodeError:
        return "invalid_utf8"
    try:
        json.loads(text, parse_constant=reject)
    except (json.JSONDecodeError, Constant):
        return "malformed"
    return "ok"

failure = []

def main():
    try:
        path, max_len = sys.argv[1], int(sys.argv[2])
        with open(path, "rb") as f:
            lines = f.read().split(b"\n")
        if lines[-1] == b"":
            lines.pop()
        sys.stdout.write("".join(verdict(l, max_len) + "\n" for l in lines))
    except BaseException:
        failure.append(traceback.format_exc())

t = threading.Thread(target=main)
t.start()
t.join()
if failure:
    sys.stderr.write(failure[0])
    sys.exit(3)
"#;

/// xorshift64*: a seeded, reproducible corpus.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
}

/// Hand-picked lines, each with a label for failure messages.
const FIXED: &[(&str, &[u8])] = &[
    // Valid texts and whitespace around them.
    ("valid", b"{\"a\":1}"),
    ("valid", b"[]"),
    ("valid", b"{}"),
    ("valid", b"\"x\""),
    ("valid", b"0"),
    ("valid", b"-0"),
    ("valid", b"-0.5e+10"),
    ("valid", b"1.5E-3"),
    ("valid", b"0e5"),
    ("valid", b"true"),
    ("valid", b"false"),
    ("valid", b"null"),
    ("valid", b" {\"a\" : [1, 2, {\"b\": null}]} "),
    ("valid", b"\t1\t"),
    ("valid", b"\"\\/\\b\\f\\n\\r\\t\\\"\\\\\""),
    ("valid", b"\"\\u0000\\u001f\\u00e9\""),
    ("valid", b"\"\xe2\x80\xa8 \xc3\xa9 \xf0\x9f\x98\x80\""),
    ("valid", b"\"\x7f\""),
    ("valid", b"\"\xef\xbb\xbf\""),
    // CRLF and carriage returns.
    ("crlf", b"{\"a\":1}\r"),
    ("cr only", b"\r"),
    ("two cr", b"\r\r"),
    ("crlf after cr", b"{\"a\":1}\r\r"),
    ("cr inside", b"{\"a\":\r1}"),
    ("cr in string", b"\"a\rb\""),
    // Byte order marks.
    ("bom", b"\xef\xbb\xbf{\"a\":1}"),
    ("bom only", b"\xef\xbb\xbf"),
    ("bom after ws", b" \xef\xbb\xbf1"),
    ("bom crlf", b"\xef\xbb\xbf[]\r"),
    // NUL bytes.
    ("nul", b"\x00"),
    ("nul after", b"{\"a\":1}\x00"),
    ("nul before", b"\x00{\"a\":1}"),
    ("nul in string", b"\"a\x00b\""),
    // Invalid UTF-8, inside and outside strings.
    ("ff", b"\xff"),
    ("bad 2-byte", b"\"\xc3\x28\""),
    ("overlong", b"\"\xc0\xaf\""),
    ("utf-8 surrogate", b"\"\xed\xa0\x80\""),
    ("truncated seq", b"\"\xe2\x82\""),
    ("truncated at end", b"\"abc\xe2\x82"),
    ("above 10ffff", b"\"\xf4\x90\x80\x80\""),
    ("5-byte", b"\"\xf8\x88\x80\x80\x80\""),
    ("lone continuation", b"\"\x80\""),
    ("latin-1", b"{\"name\":\"Jos\xe9\"}"),
    ("invalid after value", b"{\"a\":1}\xff"),
    ("invalid key", b"{\"\xfe\":1}"),
    // Huge numbers (400-digit ones are generated).
    ("1e400", b"1e400"),
    ("-1e400", b"[-1e400]"),
    ("1E+400", b"{\"x\":1E+400}"),
    ("huge exponent", b"1e99999999999999999999"),
    ("tiny", b"1e-400"),
    // Duplicate keys.
    ("duplicate keys", b"{\"a\":1,\"a\":2}"),
    ("duplicate nested", b"{\"a\":{\"b\":1,\"b\":[]},\"a\":null}"),
    // Trailing garbage.
    ("trailing garbage", b"{\"a\":1}x"),
    ("trailing garbage", b"{\"a\":1} }"),
    ("trailing garbage", b"[1]]"),
    ("trailing garbage", b"1 2"),
    ("trailing garbage", b"\"a\" \"b\""),
    ("trailing garbage", b"{}{}"),
    ("trailing garbage", b"{\"a\":1},"),
    ("trailing garbage", b"truex"),
    ("trailing garbage", b"nullnull"),
    ("trailing garbage", b"[] //"),
    ("trailing garbage", b"1\xe2\x80\xa8"),
    ("trailing garbage", b"1\x0c"),
    ("trailing garbage", b"1\x0b"),
    ("trailing garbage", b"{\"a\":1}\xc2\xa0"),
    // Control characters in strings.
    ("control char", b"\"a\x01b\""),
    ("control char", b"\"a\x08b\""),
    ("control char", b"\"a\tb\""),
    ("control char", b"\"a\x0bb\""),
    ("control char", b"\"a\x0cb\""),
    ("control char", b"\"a\x1bb\""),
    ("control char", b"\"a\x1fb\""),
    // Escapes, bad and good.
    ("escape", b"\"\\x41\""),
    ("escape", b"\"\\u12\""),
    ("escape", b"\"\\u12G4\""),
    ("escape", b"\"\\U0041\""),
    ("escape", b"\"\\'\""),
    ("escape", b"\"\\a\""),
    ("escape", b"\"\\0\""),
    ("escape", b"\"\\"),
    ("escape", b"\"\\\""),
    ("escape", b"\"\\u\""),
    ("escape", b"\"\\u00e\""),
    ("escape", b"\"\\ u0041\""),
    ("escape", b"\"\\\xc3\xa9\""),
    ("escape", b"\"\\u00E9\\u00e9\""),
    // Lone and paired surrogate escapes.
    ("surrogate escape", b"\"\\ud800\""),
    ("surrogate escape", b"\"\\udc00\""),
    ("surrogate escape", b"\"\\ud800\\u0041\""),
    ("surrogate escape", b"\"\\udbff\\udfff\""),
    ("surrogate escape", b"\"\\udc00\\ud800\""),
    ("surrogate escape", b"{\"\\ud800\":\"\\udfff\"}"),
    // NaN and Infinity.
    ("nan/infinity", b"NaN"),
    ("nan/infinity", b"Infinity"),
    ("nan/infinity", b"-Infinity"),
    ("nan/infinity", b"[NaN]"),
    ("nan/infinity", b"{\"a\":Infinity}"),
    ("nan/infinity", b"nan"),
    ("nan/infinity", b"inf"),
    ("nan/infinity", b"-NaN"),
    // Numbers: leading zeros and other shapes.
    ("number", b"01"),
    ("number", b"-01"),
    ("number", b"00"),
    ("number", b"[01]"),
    ("number", b"0.1"),
    ("number", b"-0.0"),
    ("number", b"1."),
    ("number", b".5"),
    ("number", b"+1"),
    ("number", b"1e"),
    ("number", b"1e+"),
    ("number", b"0x10"),
    ("number", b"1_000"),
    ("number", b"-"),
    ("number", b"--1"),
    ("number", b"1.e5"),
    ("number", b"1e5.5"),
    ("number", b"\xd9\xa1"),
    // Empty and blank lines.
    ("empty", b""),
    ("blank", b" "),
    ("blank", b"\t"),
    ("blank", b"  \t "),
    ("blank", b" \r"),
    ("blank", b"\x0c"),
    ("blank", b"\xc2\xa0"),
    ("blank", b"\x0b"),
    // Structure.
    ("structure", b"tru"),
    ("structure", b"True"),
    ("structure", b"[1,]"),
    ("structure", b"{\"a\":1,}"),
    ("structure", b"{,}"),
    ("structure", b"[,1]"),
    ("structure", b"{\"a\"}"),
    ("structure", b"{\"a\" 1}"),
    ("structure", b"{1:2}"),
    ("structure", b"{'a':1}"),
    ("structure", b"\"unterminated"),
    ("structure", b"["),
    ("structure", b"{"),
    ("structure", b"]"),
    ("structure", b"}"),
    ("structure", b":"),
    ("structure", b","),
    ("structure", b"[1:2]"),
    ("structure", b"{\"a\":1:2}"),
    ("structure", b"[\"a\",]"),
];

/// Lines too long to write out: huge numbers, deep nesting, lines around `max_line_bytes`.
fn generated() -> Vec<(String, Vec<u8>)> {
    let mut cases: Vec<(String, Vec<u8>)> = Vec::new();
    let mut add = |label: &str, text: Vec<u8>| cases.push((label.to_owned(), text));
    let digits = "7".repeat(400);
    add("400 digits", digits.clone().into_bytes());
    add("-400 digits", format!("-{digits}").into_bytes());
    add(
        "400.400e-400",
        format!("{digits}.{digits}e-400").into_bytes(),
    );
    add(
        "400 digits in array",
        format!("[{digits},{digits}]").into_bytes(),
    );
    add("400 digits leading zero", format!("0{digits}").into_bytes());
    for depth in [1000, 100_000] {
        let (open, close) = ("[".repeat(depth), "]".repeat(depth));
        add("deep arrays", format!("{open}{close}").into_bytes());
        let objects = format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth));
        add("deep objects", objects.into_bytes());
        let mixed = format!("{}0{}", "[{\"k\":".repeat(depth), "}]".repeat(depth));
        add("deep mixed", mixed.into_bytes());
        add("deep unclosed", open.clone().into_bytes());
        add(
            "deep mismatched",
            format!("{open}{}}}", &close[1..]).into_bytes(),
        );
        add("deep extra close", format!("{open}{close}]").into_bytes());
    }
    // The limit counts a trailing `\r`, not the `\n`.
    let string_of = |len: usize| format!("\"{}\"", "x".repeat(len - 2)).into_bytes();
    add("exactly max", string_of(MAX));
    let mut max_with_cr = string_of(MAX - 1);
    max_with_cr.push(b'\r');
    add("max with cr", max_with_cr);
    let mut over_by_cr = string_of(MAX);
    over_by_cr.push(b'\r');
    add("over by its cr", over_by_cr);
    add("one over max", string_of(MAX + 1));
    add("oversized valid", string_of(MAX + MAX / 2));
    let mut oversized_bad = vec![b'\xff'; MAX + 10];
    oversized_bad[0] = b'[';
    add("oversized invalid utf-8", oversized_bad);
    cases
}

/// A valid event line, like the Aurora logs.
fn event(rng: &mut Rng, n: u64) -> String {
    let reasons = [
        "risk_limit",
        "stale_quote",
        "halted",
        "caf\u{e9}",
        "a \\\"q\\\" b",
    ];
    let mut s = format!(
        "{{\"ts\":\"2026-11-23T18:{:02}:{:02}.{:03}Z\",\"seq\":{n},\"event\":\"order_denied\"",
        rng.below(60),
        rng.below(60),
        rng.below(1000)
    );
    write!(
        s,
        ",\"reason\":\"{}\",\"decision_ms\":{}.{},\"qty\":-{}",
        rng.pick(&reasons),
        rng.below(500),
        rng.below(1000),
        rng.below(100)
    )
    .unwrap();
    if rng.below(3) == 0 {
        s.push_str(",\"tags\":[\"a\",\"\\u00e9\",null,true,false,1e-3,{\"k\":[]}]");
    }
    s.push('}');
    s
}

/// Valid texts to damage at random.
const TEMPLATES: &[&str] = &[
    r#"{"a":[1,2.5e-3,-0,true,false,null],"b":{"c":"d\"e\\f\u00e9"}}"#,
    r#"[{"k":"v"},[],{},"",0,-1.0E+2]"#,
    r#"{"ts":"2026-11-23T18:00:00Z","decision_ms":12.5,"reason":"x"}"#,
    r#""\ud83d\ude00 \u2028 \/ \b\f\n\r\t""#,
    r#"  [ 1 , { "x" : [ null ] } ]  "#,
];

/// Bytes a mutation inserts or writes over.
const ALPHABET: &[u8] =
    b"{}[]\",:\\ 0123456789eE+-.tfnrulsa/\r\t\x00\x01\x1f\x7f\x0b\x0c\xc3\xa9\xff\xef\xbb\xbf\xed\xa0";

fn mutate(rng: &mut Rng, template: &str) -> Vec<u8> {
    let mut b = template.as_bytes().to_vec();
    for _ in 0..=rng.below(3) {
        let at = rng.below(b.len() + 1);
        let byte = *rng.pick(ALPHABET);
        match rng.below(3) {
            0 => b.insert(at, byte),
            1 if at < b.len() => b[at] = byte,
            _ if at < b.len() => {
                b.remove(at);
            }
            _ => b.push(byte),
        }
    }
    b
}

/// The corpus: valid events, the damaged lines and mutations in the middle (the oversized
/// lines near where a two-worker scan splits), more events, and a last line without `\n`.
fn corpus() -> Vec<(String, Vec<u8>)> {
    let mut rng = Rng(0x5eed_1e55_c0ff_ee01);
    let mut lines: Vec<(String, Vec<u8>)> = Vec::new();
    let mut n = 0;
    let mut events = |rng: &mut Rng, lines: &mut Vec<(String, Vec<u8>)>, bytes: usize| {
        let mut total = 0;
        while total < bytes {
            let e = event(rng, n);
            n += 1;
            total += e.len() + 1;
            lines.push(("event".into(), e.into_bytes()));
        }
    };
    events(&mut rng, &mut lines, 5 << 20);
    for _ in 0..20_000 {
        let t = *rng.pick(TEMPLATES);
        lines.push((format!("mutation of {t}"), mutate(&mut rng, t)));
    }
    lines.extend(FIXED.iter().map(|&(l, b)| (l.to_owned(), b.to_vec())));
    lines.extend(generated());
    events(&mut rng, &mut lines, 5 << 20);
    lines.push(("last, no newline".into(), b"{\"end\":true}".to_vec()));
    for (label, bytes) in &lines {
        assert!(!bytes.contains(&b'\n'), "{label} has a newline");
    }
    lines
}

fn write_corpus(path: &Path, lines: &[(String, Vec<u8>)]) {
    let mut out = Vec::new();
    for (i, (_, bytes)) in lines.iter().enumerate() {
        out.extend_from_slice(bytes);
        if i + 1 < lines.len() {
            out.push(b'\n');
        }
    }
    std::fs::write(path, out).unwrap();
}

/// The reference's verdicts, one per line.
fn reference(dir: &Path, corpus: &Path) -> Vec<String> {
    let script = dir.join("reference.py");
    std::fs::write(&script, REFERENCE).unwrap();
    let out = Command::new("python3")
        .arg(&script)
        .arg(corpus)
        .arg(MAX.to_string())
        .output()
        .expect("`python3` must be installed");
    assert!(
        out.status.success(),
        "the reference failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Our verdict on one line, as the probe's scanner decides it.
fn ours(validator: &mut Validator, raw: &[u8]) -> &'static str {
    if raw.len() > MAX {
        return "oversized";
    }
    let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
    if raw.is_empty() {
        return "empty";
    }
    if std::str::from_utf8(raw).is_err() {
        return "invalid_utf8";
    }
    match validator.validate(raw) {
        Ok(()) => "ok",
        Err(_) => "malformed",
    }
}

/// Labels whose every line must have this verdict (from both sides, as they agree).
const PINNED: &[(&str, &str)] = &[
    ("valid", "ok"),
    ("crlf", "ok"),
    ("cr only", "empty"),
    ("two cr", "malformed"),
    ("crlf after cr", "ok"),
    ("bom", "malformed"),
    ("bom only", "malformed"),
    ("bom crlf", "malformed"),
    ("nul", "malformed"),
    ("nul in string", "malformed"),
    ("utf-8 surrogate", "invalid_utf8"),
    ("latin-1", "invalid_utf8"),
    ("1e400", "ok"),
    ("huge exponent", "ok"),
    ("400 digits", "ok"),
    ("400.400e-400", "ok"),
    ("400 digits leading zero", "malformed"),
    ("duplicate keys", "ok"),
    ("duplicate nested", "ok"),
    ("trailing garbage", "malformed"),
    ("control char", "malformed"),
    ("surrogate escape", "ok"),
    ("nan/infinity", "malformed"),
    ("empty", "empty"),
    ("blank", "malformed"),
    ("structure", "malformed"),
    ("deep arrays", "ok"),
    ("deep objects", "ok"),
    ("deep mixed", "ok"),
    ("deep unclosed", "malformed"),
    ("deep mismatched", "malformed"),
    ("deep extra close", "malformed"),
    ("exactly max", "ok"),
    ("max with cr", "ok"),
    ("over by its cr", "oversized"),
    ("one over max", "oversized"),
    ("oversized valid", "oversized"),
    ("oversized invalid utf-8", "oversized"),
    ("last, no newline", "ok"),
];

/// A line for a failure message: escaped, and cut if long.
fn show(raw: &[u8]) -> String {
    let cut = &raw[..raw.len().min(60)];
    let more = if raw.len() > 60 {
        format!("... ({} bytes)", raw.len())
    } else {
        String::new()
    };
    format!("b\"{}\"{more}", cut.escape_ascii())
}

#[test]
fn the_probe_agrees_with_strict_python_on_every_line_and_in_total() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("corpus.jsonl");
    let lines = corpus();
    write_corpus(&path, &lines);
    let size = std::fs::metadata(&path).unwrap().len();
    assert!(size > 10 << 20, "big enough to be split among workers");

    let verdicts = reference(dir.path(), &path);
    assert_eq!(verdicts.len(), lines.len(), "the reference saw other lines");

    // (a) Line by line.
    let mut validator = Validator::new();
    let mut disagreements = Vec::new();
    let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
    let mut damaged_kinds: BTreeMap<&str, u64> = BTreeMap::new();
    for (i, ((label, raw), want)) in lines.iter().zip(&verdicts).enumerate() {
        let got = ours(&mut validator, raw);
        *counts.entry(want.as_str()).or_default() += 1;
        if label != "event" && !label.starts_with("mutation") {
            *damaged_kinds.entry(want.as_str()).or_default() += 1;
        }
        if got != want {
            disagreements.push(format!(
                "line {}: {label}: python `{want}`, ours `{got}`: {}",
                i + 1,
                show(raw)
            ));
        }
    }
    assert!(
        disagreements.is_empty(),
        "{} disagreements:\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
    // What the module docs promise, so that a lenient reference cannot pass unnoticed.
    for (label, want) in PINNED {
        let got: Vec<&str> = lines
            .iter()
            .zip(&verdicts)
            .filter(|((l, _), _)| l == label)
            .map(|(_, v)| v.as_str())
            .collect();
        assert!(!got.is_empty(), "no `{label}` line");
        assert!(
            got.iter().all(|v| v == want),
            "{label}: {got:?}, want {want}"
        );
    }
    // The corpus holds each kind of verdict, the mutations many of each.
    for kind in ["ok", "malformed", "empty", "oversized", "invalid_utf8"] {
        assert!(
            damaged_kinds.get(kind).copied().unwrap_or(0) > 0,
            "no `{kind}` line"
        );
    }
    assert!(
        counts["malformed"] > 5000 && counts["ok"] > 50_000,
        "{counts:?}"
    );

    // (b) The probe's totals, split among workers (a plain count) and in one (with `last`).
    let count = |k: &str| counts.get(k).copied().unwrap_or(0);
    let expected = serde_json::json!({
        "lines": lines.len(),
        "empty": count("empty"),
        "malformed": count("malformed") + count("invalid_utf8"),
        "oversized": count("oversized"),
        "invalid_utf8": count("invalid_utf8"),
    });
    for extra in [&[][..], &["--with", "last=1"][..]] {
        let out = Command::new(env!("CARGO_BIN_EXE_runbook"))
            .arg("--db")
            .arg(dir.path().join("audit.db"))
            .args(["probe", "jsonl", "--with"])
            .arg(format!("path={}", path.display()))
            .arg("--with")
            .arg(format!("max_line_bytes={MAX}"))
            .args(extra)
            .env_remove("RUNBOOK_DB")
            .env_remove("RUNBOOK_DIR")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        let r = &v["result"];
        let got = serde_json::json!({
            "lines": r["lines"],
            "empty": r["empty"],
            "malformed": r["malformed"],
            "oversized": r["oversized"],
            "invalid_utf8": r["invalid_utf8"],
        });
        assert_eq!(got, expected, "probe totals with {extra:?}");
    }
}

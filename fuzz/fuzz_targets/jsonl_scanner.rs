//! `cargo fuzz run jsonl_scanner`: see `runbook::fuzz::jsonl_scanner`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = runbook::fuzz::jsonl_scanner(data);
});

//! `cargo fuzz run prometheus_text`: see `runbook::fuzz::prometheus_text`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = runbook::fuzz::prometheus_text(data);
});

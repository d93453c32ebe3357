//! `cargo fuzz run template`: see `runbook::fuzz::template`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = runbook::fuzz::template(data);
});

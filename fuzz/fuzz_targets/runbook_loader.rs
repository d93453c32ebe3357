//! `cargo fuzz run runbook_loader`: see `runbook::fuzz::runbook_loader`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = runbook::fuzz::runbook_loader(data);
});

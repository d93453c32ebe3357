//! `cargo fuzz run alert_payload`: see `runbook::fuzz::alert_payload`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = runbook::fuzz::alert_payload(data);
});

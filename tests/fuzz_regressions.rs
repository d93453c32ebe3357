//! The fuzz targets' seed corpora and every crash the fuzzer found, replayed on the stable
//! toolchain: each file of `fixtures/fuzz/<target>/` and `fixtures/fuzz/regressions/<target>/`
//! goes through the same `runbook::fuzz` function the `cargo fuzz` target calls. A panic fails
//! the test. A seed named `ok-*` must be accepted by its target (a runbook that compiles, a body
//! that parses, ...) and one named `bad-*` refused, so a target that stopped reaching its code
//! path fails here too.

mod record;

use std::path::{Path, PathBuf};

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
}

/// Replay every seed and regression of `target`; return how many `ok-` and `bad-` seeds held,
/// and how many inputs there were.
fn replay(target: &str) -> (usize, usize, usize) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/fuzz");
    let seeds = files(&root.join(target));
    assert!(!seeds.is_empty(), "no seeds in fixtures/fuzz/{target}/");
    let regressions = files(&root.join("regressions").join(target));
    let (mut ok, mut bad) = (0, 0);
    for path in seeds.iter().chain(&regressions) {
        let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let accepted = runbook::fuzz::run(target, &data)
            .unwrap_or_else(|| panic!("`{target}` is not a fuzz target"));
        if name.starts_with("ok-") {
            // A seed copied from `runbooks/` or `fixtures/` goes stale when the format
            // changes: copy it again.
            assert!(accepted, "{}: a good seed was refused", path.display());
            ok += 1;
        } else if name.starts_with("bad-") {
            assert!(!accepted, "{}: a bad seed was accepted", path.display());
            bad += 1;
        }
    }
    (ok, bad, seeds.len() + regressions.len())
}

/// Every target has a seed directory, a fuzz target file and a dictionary.
#[test]
fn every_target_has_seeds_a_target_file_and_a_dictionary() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for target in runbook::fuzz::TARGETS {
        assert!(
            root.join(format!("fuzz/fuzz_targets/{target}.rs"))
                .is_file(),
            "fuzz/fuzz_targets/{target}.rs is missing"
        );
        assert!(
            root.join(format!("fixtures/fuzz/{target}.dict")).is_file(),
            "fixtures/fuzz/{target}.dict is missing"
        );
        assert!(!files(&root.join(format!("fixtures/fuzz/{target}"))).is_empty());
    }
    assert_eq!(runbook::fuzz::run("no_such_target", b""), None);
}

/// Every seed and regression input of every target, through the same entry points the fuzzer
/// drives: none panics, every `ok-` seed is accepted and every `bad-` one refused.
#[test]
fn every_seed_and_regression_replays_through_its_target() {
    let (mut inputs, mut oks, mut bads) = (0, 0, 0);
    for target in runbook::fuzz::TARGETS {
        let (ok, bad, all) = replay(target);
        assert!(ok > 0, "no `ok-` seed for {target}");
        assert!(bad > 0, "no `bad-` seed for {target}");
        (inputs, oks, bads) = (inputs + all, oks + ok, bads + bad);
    }
    record::row(
        file!(),
        "every_seed_and_regression_replays_through_its_target",
        "every fuzz seed and saved crash input through the fuzz targets' entry points (loader and compiler, templates and expressions, JSON-lines scanner, Prometheus text, alert payloads), on the stable toolchain",
        &format!(
            "{inputs} inputs over {} targets ({oks} must be accepted, {bads} refused)",
            runbook::fuzz::TARGETS.len()
        ),
        "no panic; every good seed accepted, every bad one refused",
    );
}

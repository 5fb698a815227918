//! Property tests of `Version` against the real `dpkg`, with a fixed seed so runs
//! are reproducible. Skipped (loudly) when dpkg is not installed.

use std::cmp::Ordering;
use std::process::Command;

use basalt_debian::Version;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

fn dpkg_available() -> bool {
    let ok = Command::new("dpkg")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        // Written straight to stderr so the test harness does not capture it.
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "!!! SKIPPED dpkg_oracle: dpkg is not installed (apt-get install dpkg) !!!"
        );
    }
    ok
}

fn dpkg_relation(a: &str, op: &str, b: &str) -> bool {
    let out = Command::new("dpkg")
        .args(["--compare-versions", a, op, b])
        .output()
        .expect("running dpkg --compare-versions");
    match out.status.code() {
        Some(0) => true,
        Some(1) => false,
        other => panic!(
            "dpkg --compare-versions {a:?} {op} {b:?} failed ({other:?}): {}",
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

fn dpkg_cmp(a: &str, b: &str) -> Ordering {
    if dpkg_relation(a, "lt", b) {
        Ordering::Less
    } else if dpkg_relation(a, "eq", b) {
        Ordering::Equal
    } else {
        Ordering::Greater
    }
}

fn re(pattern: &str) -> proptest::string::RegexGeneratorStrategy<String> {
    proptest::string::string_regex(pattern).expect("valid test regex")
}

fn runner(cases: u32) -> TestRunner {
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    let seed = *b"basalt-debian dpkg oracle seed!!";
    TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed))
}

/// One upstream token; `:` and `-` are filtered out later when not allowed.
fn token() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => re("[0-9]{1,3}"),
        1 => "0{0,3}[0-9]{15,30}",
        3 => re("[a-zA-Z]{1,3}"),
        3 => Just(".".to_string()),
        2 => Just("+".to_string()),
        3 => Just("~".to_string()),
        1 => Just("~~".to_string()),
        1 => Just("-".to_string()),
        1 => Just(":".to_string()),
    ]
}

fn rev_token() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => re("[0-9]{1,3}"),
        2 => re("[a-z]{1,4}"),
        2 => Just(".".to_string()),
        2 => Just("+".to_string()),
        2 => Just("~".to_string()),
    ]
}

fn assemble(
    epoch: &Option<u32>,
    first: &str,
    tokens: &[String],
    revision: &Option<String>,
) -> String {
    let mut upstream = first.to_string();
    for t in tokens {
        let forbidden = (t == ":" && epoch.is_none()) || (t == "-" && revision.is_none());
        if !forbidden {
            upstream.push_str(t);
        }
    }
    let mut s = String::new();
    if let Some(e) = epoch {
        s.push_str(&format!("{e}:"));
    }
    s.push_str(&upstream);
    if let Some(r) = revision {
        s.push('-');
        s.push_str(r);
    }
    s
}

/// Rewrites `v` into a spelling dpkg considers equal: a leading zero on every
/// digit run, an explicit `0:` epoch and a `-0` revision where absent.
fn equivalent(v: &str) -> String {
    let mut out = String::new();
    let mut prev_digit = false;
    for c in v.chars() {
        if c.is_ascii_digit() && !prev_digit {
            out.push('0');
        }
        prev_digit = c.is_ascii_digit();
        out.push(c);
    }
    if !v.contains(':') {
        out.insert_str(0, "0:");
    }
    if !v.contains('-') {
        out.push_str("-0");
    }
    out
}

/// Pairs of versions sharing a prefix, with epochs and revisions from small sets so
/// that equal and near-equal pairs are common.
fn version_pair() -> impl Strategy<Value = (String, String)> {
    fn epoch() -> impl Strategy<Value = Option<u32>> {
        prop_oneof![
            4 => Just(None),
            1 => Just(Some(0u32)),
            2 => (1u32..3).prop_map(Some),
            1 => Just(Some(12345)),
        ]
    }
    fn revision() -> impl Strategy<Value = Option<String>> {
        prop_oneof![
            3 => Just(None),
            3 => prop::collection::vec(rev_token(), 1..4).prop_map(|t| Some(t.concat())),
            1 => Just(Some("0".to_string())),
        ]
    }
    fn tail() -> impl Strategy<Value = Vec<String>> {
        prop::collection::vec(token(), 0..4)
    }
    let first = prop_oneof![9 => re("[0-9]{1,3}"), 1 => re("[a-z]{1,2}")];
    let common = prop::collection::vec(token(), 0..5);
    (
        (epoch(), epoch()),
        first,
        common,
        (tail(), tail()),
        (revision(), revision()),
        0u8..4,
    )
        .prop_map(|((ea, eb), first, common, (ta, tb), (ra, rb), mode)| {
            let a: Vec<String> = common.iter().chain(&ta).cloned().collect();
            let b: Vec<String> = common.iter().chain(&tb).cloned().collect();
            let a = assemble(&ea, &first, &a, &ra);
            if mode == 0 {
                // An equivalent spelling: dpkg must call these equal.
                let b = equivalent(&a);
                (a, b)
            } else {
                (a, assemble(&eb, &first, &b, &rb))
            }
        })
}

#[test]
fn ordering_matches_dpkg_compare_versions() {
    if !dpkg_available() {
        return;
    }
    let equal = std::cell::Cell::new(0u32);
    let mut runner = runner(300);
    let result = runner.run(&version_pair(), |(a, b)| {
        let va = Version::parse(&a).map_err(|e| TestCaseError::fail(format!("{a}: {e}")))?;
        let vb = Version::parse(&b).map_err(|e| TestCaseError::fail(format!("{b}: {e}")))?;
        let ours = va.cmp(&vb);
        let theirs = dpkg_cmp(&a, &b);
        prop_assert_eq!(ours, theirs, "{} vs {}", a, b);
        prop_assert_eq!(Version::parse(&va.to_string()).ok(), Some(va.clone()));
        if ours == Ordering::Equal {
            equal.set(equal.get() + 1);
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    eprintln!(
        "dpkg oracle: 300 pairs agreed ({} equal pairs)",
        equal.get()
    );
}

#[test]
fn parse_acceptance_matches_dpkg_validate_version() {
    if !dpkg_available() {
        return;
    }
    let mut runner = runner(150);
    let result = runner.run(&re("[0-9a-zA-Z.:+~_ -]{0,8}"), |text| {
        let out = Command::new("dpkg")
            .args(["--validate-version", &text])
            .output()
            .expect("running dpkg --validate-version");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let dpkg_clean = out.status.success();
        let dpkg_only_digit_warning =
            out.status.code() == Some(1) && stderr.contains("does not start with digit");
        match Version::parse(&text) {
            Ok(v) => prop_assert!(
                dpkg_clean || (dpkg_only_digit_warning && v.warning().is_some()),
                "we accept {:?} but dpkg says: {}",
                text,
                stderr
            ),
            Err(e) => prop_assert!(
                !dpkg_clean,
                "we reject {:?} ({}) but dpkg accepts it",
                text,
                e
            ),
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

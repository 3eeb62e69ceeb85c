//! Decode fixtures: the committed bytes of every stored record type, so that a change
//! which would leave existing data directories unreadable fails here.
//!
//! `tests/fixtures/<record>_v<version>[_<case>].bin` holds one record as stored (the
//! schema version byte, then the bincode payload), built from the fixed values in
//! [`values`]; every optional field is set in at least one fixture, and every enum
//! is met at its first and its last variant. For each fixture:
//!
//! - the bytes decode to the expected value (under the current struct, through
//!   `Record::upgrade` for an older version);
//! - if the fixture is of the version this build writes, encoding the expected value
//!   gives exactly the committed bytes.
//!
//! So adding, removing, reordering or retyping a field, reordering an enum's variants,
//! or bumping a version without a decoder for the old one fails this test. To change a
//! record: add a new struct version, keep the old fixtures (they must still decode),
//! and add fixtures of the new version.
//!
//! Writing fixtures is deliberate and never happens in CI: the ignored test
//! [`write_fixtures`] writes the fixtures named in `PERMETRIX_WRITE_FIXTURES`
//! (comma-separated names without `.bin`, or `all`), and only those of the version
//! this build writes:
//!
//! ```text
//! PERMETRIX_WRITE_FIXTURES=lease_v2 cargo test -p permetrix-storage \
//!     --test record_fixtures -- --ignored write_fixtures
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]
use std::fmt::Debug;
use std::path::PathBuf;

use permetrix_storage::codec::{self, Record};

mod values;
mod webhook_values;

/// One fixture: its file name (without `.bin`) and the value it holds.
struct Fixture {
    name: &'static str,
    expected: Box<dyn Expected>,
}

/// A record value of some type, checked against stored bytes.
trait Expected {
    /// Decodes `bytes` as this value's type and compares.
    fn check_decode(&self, bytes: &[u8]) -> Result<(), String>;
    /// The bytes this build stores for the value.
    fn encode(&self) -> Vec<u8>;
    /// The schema version this build writes for the value's type.
    fn current_version(&self) -> u8;
}

impl<R: Record + PartialEq + Debug> Expected for R {
    fn check_decode(&self, bytes: &[u8]) -> Result<(), String> {
        match codec::decode::<R>(bytes) {
            Ok(decoded) if decoded == *self => Ok(()),
            Ok(decoded) => Err(format!(
                "decoded {decoded:#?}\nexpected {self:#?}\n(a field was added, removed, \
                 reordered or retyped, or an enum's variants were reordered)"
            )),
            Err(e) => Err(format!("does not decode: {e}")),
        }
    }

    fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    fn current_version(&self) -> u8 {
        R::VERSION
    }
}

/// A fixture of `expected` named `name`.
fn fixture<R: Record + PartialEq + Debug + 'static>(name: &'static str, expected: R) -> Fixture {
    Fixture {
        name,
        expected: Box::new(expected),
    }
}

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn path(name: &str) -> PathBuf {
    dir().join(format!("{name}.bin"))
}

/// The version a fixture's name claims (`…_v<N>…`).
fn named_version(name: &str) -> u8 {
    name.split('_')
        .find_map(|part| part.strip_prefix('v')?.parse().ok())
        .unwrap_or_else(|| panic!("fixture name {name} does not say its version (_v<N>)"))
}

#[test]
fn every_fixture_decodes_and_current_versions_encode_the_same_bytes() {
    let mut failures = Vec::new();
    for f in values::all() {
        let path = path(f.name);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) => {
                failures.push(format!("{}: cannot read {}: {e}", f.name, path.display()));
                continue;
            }
        };
        let version = bytes.first().copied();
        if version != Some(named_version(f.name)) {
            failures.push(format!(
                "{}: the file's version byte is {version:?}, its name says {}",
                f.name,
                named_version(f.name)
            ));
        }
        if let Err(e) = f.expected.check_decode(&bytes) {
            failures.push(format!("{}: {e}", f.name));
        }
        if version == Some(f.expected.current_version()) && f.expected.encode() != bytes {
            failures.push(format!(
                "{}: this build encodes the record differently than the committed bytes",
                f.name
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn every_committed_fixture_is_checked() {
    let names: Vec<&str> = values::all().iter().map(|f| f.name).collect();
    let mut unchecked = Vec::new();
    for entry in std::fs::read_dir(dir()).expect("tests/fixtures is readable") {
        let file = entry.expect("directory entry").file_name();
        let file = file.to_string_lossy();
        let name = file.strip_suffix(".bin").unwrap_or(&file);
        if !names.contains(&name) {
            unchecked.push(file.into_owned());
        }
    }
    assert!(
        unchecked.is_empty(),
        "fixtures without an expected value in values.rs: {unchecked:?}"
    );
}

/// Writes the fixtures named in `PERMETRIX_WRITE_FIXTURES` (see the module docs).
#[test]
#[ignore = "writes fixtures; run by hand with PERMETRIX_WRITE_FIXTURES set"]
fn write_fixtures() {
    let wanted = std::env::var("PERMETRIX_WRITE_FIXTURES").unwrap_or_else(|_| {
        panic!("set PERMETRIX_WRITE_FIXTURES to the fixture names to write, or to `all`")
    });
    let wanted: Vec<&str> = wanted.split(',').map(str::trim).collect();
    let all = wanted == ["all"];
    let fixtures = values::all();
    for name in &wanted {
        assert!(
            all || fixtures.iter().any(|f| f.name == *name),
            "no fixture named {name} in values.rs"
        );
    }
    std::fs::create_dir_all(dir()).expect("tests/fixtures can be created");
    for f in fixtures.iter().filter(|f| all || wanted.contains(&f.name)) {
        if named_version(f.name) != f.expected.current_version() {
            // An older version's bytes came from an older build: never rewritten.
            assert!(
                all,
                "{} is of an older version; it is never rewritten",
                f.name
            );
            continue;
        }
        std::fs::write(path(f.name), f.expected.encode()).expect("fixture written");
        eprintln!("wrote {}", path(f.name).display());
    }
}

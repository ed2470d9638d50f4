//! The architecture invariants of docs/architecture.md, checked on the sources and
//! manifests rather than only written down.

use std::fs;
use std::path::{Path, PathBuf};

use crate::support::root;

/// The crates of the pure layers (L0–L2): no async runtime, no sockets, no TLS, no clock.
const PURE: &[&str] = &[
    "presence-model",
    "presence-map",
    "presence-config",
    "presence-sip",
    "presence-mspres",
    "presence-pull",
    "presence-push",
    "presence-transport",
    "presence-tlib",
];

/// Dependencies that mean I/O or a runtime.
const IMPURE: &[&str] = &[
    "tokio",
    "tokio-rustls",
    "rustls",
    "axum",
    "reqwest",
    "hyper",
    "mio",
    "socket2",
    "tokio-tungstenite",
];

/// The concrete adapters only the binary may name (and only in `transports.rs`).
const ADAPTERS: &[&str] = &["SfbTransport", "GraphTransport", "SimpleTransport"];

fn crates() -> Vec<(String, PathBuf, toml::Table)> {
    let mut out = Vec::new();
    for entry in fs::read_dir(root().join("crates")).expect("crates/ is readable") {
        let dir = entry.expect("a directory entry").path();
        let manifest = dir.join("Cargo.toml");
        let Ok(text) = fs::read_to_string(&manifest) else {
            continue;
        };
        let table: toml::Table = text
            .parse()
            .unwrap_or_else(|e| panic!("{}: {e}", manifest.display()));
        let name = table["package"]["name"]
            .as_str()
            .expect("a package name")
            .to_owned();
        out.push((name, dir, table));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(out.len() >= 10, "found the crates");
    out
}

fn dependencies<'t>(table: &'t toml::Table, section: &str) -> Vec<(&'t str, &'t toml::Value)> {
    table
        .get(section)
        .and_then(toml::Value::as_table)
        .map(|deps| deps.iter().map(|(k, v)| (k.as_str(), v)).collect())
        .unwrap_or_default()
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out
}

#[test]
fn every_crate_takes_the_workspace_lints_and_versions() {
    for (name, _, table) in crates() {
        assert_eq!(
            table
                .get("lints")
                .and_then(|l| l.get("workspace"))
                .and_then(toml::Value::as_bool),
            Some(true),
            "{name}: [lints] workspace = true"
        );
        for section in ["dependencies", "dev-dependencies", "build-dependencies"] {
            for (dep, value) in dependencies(&table, section) {
                let from_workspace = value
                    .get("workspace")
                    .and_then(toml::Value::as_bool)
                    .unwrap_or(false);
                let own_path = value.get("path").is_some() && value.get("version").is_none();
                assert!(
                    from_workspace || own_path,
                    "{name}: [{section}] {dep} must take its version from [workspace.dependencies]"
                );
            }
        }
    }
}

#[test]
fn the_pure_layers_use_no_runtime_and_no_io() {
    let all = crates();
    for pure in PURE {
        let (_, dir, table) = all
            .iter()
            .find(|(name, _, _)| name == pure)
            .unwrap_or_else(|| panic!("crate {pure} exists"));
        for (dep, _) in dependencies(table, "dependencies") {
            assert!(
                !IMPURE.contains(&dep),
                "{pure} (a pure layer) depends on {dep}"
            );
        }
        for file in rust_files(&dir.join("src")) {
            let text = fs::read_to_string(&file).unwrap();
            for forbidden in [
                "std::net::TcpStream",
                "std::fs::",
                "SystemTime::now",
                "Instant::now",
                "std::env::var",
            ] {
                // Tests inside the crate may use a clock; the library may not (comments
                // may mention what a caller does).
                let library = text.split("#[cfg(test)]").next().unwrap_or("");
                let code = library
                    .lines()
                    .filter(|l| !l.trim_start().starts_with("//"))
                    .any(|l| l.contains(forbidden));
                assert!(!code, "{} (a pure layer) uses {forbidden}", file.display());
            }
        }
    }
}

#[test]
fn library_crates_document_everything() {
    for (name, dir, table) in crates() {
        let lib = dir.join("src/lib.rs");
        if table.get("lib").is_none() && !lib.exists() {
            continue; // a command only
        }
        if name == "presence-bridge" {
            continue;
        }
        let text = fs::read_to_string(&lib).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            text.contains("#![deny(missing_docs)]"),
            "{name}: src/lib.rs must #![deny(missing_docs)]"
        );
    }
}

#[test]
fn the_engine_names_no_concrete_transport_or_link() {
    let all = crates();
    let (_, dir, table) = all
        .iter()
        .find(|(name, _, _)| name == "presence-engine")
        .expect("the engine");
    for (dep, _) in dependencies(table, "dependencies") {
        assert!(
            !["presence-sfb", "presence-graph", "presence-cti"].contains(&dep),
            "the engine depends on the concrete adapter {dep}"
        );
    }
    for file in rust_files(&dir.join("src")) {
        let text = fs::read_to_string(&file).unwrap();
        for adapter in ADAPTERS {
            assert!(
                !text.contains(adapter),
                "{} names {adapter}",
                file.display()
            );
        }
    }
}

#[test]
fn only_transports_rs_picks_concrete_transports() {
    let src = root().join("crates/presence-bridge/src");
    for file in rust_files(&src) {
        if file.ends_with("transports.rs") {
            continue;
        }
        let text = fs::read_to_string(&file).unwrap();
        for adapter in ADAPTERS {
            assert!(
                !text.contains(adapter),
                "{} names {adapter}: concrete transports are picked in transports.rs only",
                file.display()
            );
        }
    }
}

#[test]
fn one_bearer_token_check_serves_every_listener() {
    let shared = "presence_cti::auth::bearer_authorized";
    let admin = fs::read_to_string(root().join("crates/presence-bridge/src/admin.rs")).unwrap();
    assert!(admin.contains(shared), "the admin API uses {shared}");
    for dir in ["crates/presence-bridge/src", "crates/presence-cti/src"] {
        for file in rust_files(&root().join(dir)) {
            if file.ends_with("auth.rs") {
                continue;
            }
            let text = fs::read_to_string(&file).unwrap();
            assert!(
                !text.contains("strip_prefix(\"Bearer")
                    && !text.contains("eq_ignore_ascii_case(\"bearer\")"),
                "{} parses bearer tokens itself: use {shared}",
                file.display()
            );
        }
    }
}

/// The sans-IO cores above the pure layers: protocol state machines and simulators' worlds
/// that take time and bytes as arguments. Like the pure layers, their library code names no
/// runtime, socket, file, environment or clock (their tests may).
const CORES: &[&str] = &[
    "crates/presence-sfb/src/endpoint",
    "crates/presence-simple/src/endpoint",
    "crates/presence-simple/src/pidf",
    "crates/presence-simple/src/mapping.rs",
    "crates/presence-simple/src/digest.rs",
    "crates/presence-graph/src/core",
    "crates/presence-graph/src/wire.rs",
    "crates/presence-graph/src/mapping.rs",
    "crates/presence-graph/src/rate.rs",
    "crates/presence-sfb-sim/src/simulator",
    "crates/presence-graph-sim/src/world",
];

/// What the pure layers and the sans-IO cores never name in library code.
const IO_AND_CLOCK: &[&str] = &[
    "tokio",
    "std::net",
    "std::fs",
    "std::env",
    "Instant::now",
    "SystemTime::now",
];

/// The code lines of a library source file: no comment lines, nothing from the first
/// `#[cfg(test)]` on; a file named tests.rs has none.
fn library_code(file: &Path) -> Vec<(usize, String)> {
    if file.file_name().is_some_and(|n| n == "tests.rs") {
        return Vec::new();
    }
    let text = fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let library = text.split("#[cfg(test)]").next().unwrap_or("");
    library
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim_start().starts_with("//"))
        .map(|(i, l)| (i + 1, l.to_owned()))
        .collect()
}

#[test]
fn the_sans_io_cores_do_no_io_and_read_no_clock() {
    let mut found = Vec::new();
    for core in CORES {
        let path = root().join(core);
        assert!(
            path.exists(),
            "{core} is listed as a sans-IO core but does not exist"
        );
        let files = if path.is_dir() {
            rust_files(&path)
        } else {
            vec![path]
        };
        for file in files {
            for (n, line) in library_code(&file) {
                for forbidden in IO_AND_CLOCK {
                    if line.contains(forbidden) {
                        found.push(format!("{}:{n}: {forbidden}", file.display()));
                    }
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "a sans-IO core does I/O or reads the clock:\n{}",
        found.join("\n")
    );
}

/// Each workspace crate's layer, read from the layer table of docs/architecture.md (the
/// code block whose lines start `L0` ... `L5`), so that the document and this test agree.
fn documented_layers() -> std::collections::BTreeMap<String, u8> {
    let doc =
        fs::read_to_string(root().join("docs/architecture.md")).expect("docs/architecture.md");
    let mut layers = std::collections::BTreeMap::new();
    let mut layer = None;
    let mut in_table = false;
    for line in doc.lines() {
        if line.starts_with("```") {
            if in_table {
                break;
            }
            in_table = true;
            continue;
        }
        if !in_table {
            continue;
        }
        if let Some(rest) = line.strip_prefix('L')
            && let Some(n) = rest.chars().next().and_then(|c| c.to_digit(10))
        {
            layer = Some(u8::try_from(n).expect("one digit"));
        }
        let Some(name) = line
            .split_whitespace()
            .find(|w| w.starts_with("presence-") || *w == "xtask")
        else {
            continue;
        };
        let layer = layer
            .unwrap_or_else(|| panic!("`{name}` comes before any layer in docs/architecture.md"));
        layers.insert(name.to_owned(), layer);
    }
    assert!(
        layers.len() >= 10,
        "the layer table of docs/architecture.md was read: {layers:?}"
    );
    layers
}

#[test]
fn crates_depend_only_on_their_layer_or_below() {
    let layers = documented_layers();
    let out = std::process::Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(root())
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let metadata: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("cargo metadata's JSON");
    let mut wrong = Vec::new();
    for package in metadata["packages"].as_array().expect("packages") {
        let name = package["name"].as_str().expect("a name");
        let Some(&own) = layers.get(name) else {
            wrong.push(format!(
                "{name} is not in the layer table of docs/architecture.md"
            ));
            continue;
        };
        for dep in package["dependencies"].as_array().expect("dependencies") {
            // Normal dependencies only: tests and build scripts may use anything.
            if !dep["kind"].is_null() {
                continue;
            }
            let dep_name = dep["name"].as_str().expect("a dependency name");
            let Some(&theirs) = layers.get(dep_name) else {
                continue; // not a crate of this workspace
            };
            if theirs > own {
                wrong.push(format!("{name} (L{own}) depends on {dep_name} (L{theirs})"));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The documentation stands on its own: the docs and the crates' documentation state their
/// facts instead of citing the project's internal working notes (`SPEC §n`, `SPEC.md`,
/// `PROTOCOLS.md`), which do not ship.
#[test]
fn documentation_cites_no_internal_notes() {
    let mut files: Vec<PathBuf> = vec![root().join("README.md")];
    for entry in fs::read_dir(root().join("docs")).expect("docs/ is readable") {
        let path = entry.expect("a directory entry").path();
        if path.extension().is_some_and(|e| e == "md") {
            files.push(path);
        }
    }
    for (_, dir, _) in crates() {
        files.extend(rust_files(&dir.join("src")));
        files.extend(
            ["README.md", "Cargo.toml"]
                .iter()
                .map(|name| dir.join(name))
                .filter(|path| path.exists()),
        );
    }
    let mut citations = Vec::new();
    for file in files {
        let text = fs::read_to_string(&file).unwrap();
        for (i, line) in text.lines().enumerate() {
            if ["SPEC §", "SPEC.md", "PROTOCOLS.md"]
                .iter()
                .any(|needle| line.contains(needle))
            {
                citations.push(format!("{}:{}: {line}", file.display(), i + 1));
            }
        }
    }
    assert!(
        citations.is_empty(),
        "restate the fact instead of citing internal notes:\n{}",
        citations.join("\n")
    );
}

/// TLS failures are explained once, in `presence-tls`: the transports describe their peer
/// and call it, and match no rustls certificate or alert error of their own.
#[test]
fn tls_failures_are_explained_in_one_place() {
    let mut found = Vec::new();
    for krate in ["presence-sfb", "presence-simple", "presence-graph"] {
        let dir = root().join("crates").join(krate);
        let manifest = fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        assert!(
            manifest.contains("presence-tls.workspace = true"),
            "{krate} explains its TLS failures with presence-tls"
        );
        for file in rust_files(&dir.join("src")) {
            for (n, line) in library_code(&file) {
                for code in [
                    "UnknownIssuer",
                    "NotValidForName",
                    "CaUsedAsEndEntity",
                    "CertificateRequired",
                    "CertificateError::",
                    "AlertDescription::",
                ] {
                    if line.contains(code) {
                        found.push(format!("{}:{n}: {code}", file.display()));
                    }
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "explain TLS failures in presence-tls:\n{}",
        found.join("\n")
    );
}

/// Every HTTP listener of the bridge (the contact-centre link, the admin API) is served by
/// `presence_cti::listener`, whose handshake timeout and connection count `axum::serve`
/// does not have.
#[test]
fn every_listener_of_the_bridge_is_the_counted_one() {
    let mut found = Vec::new();
    for dir in ["crates/presence-bridge/src", "crates/presence-cti/src"] {
        for file in rust_files(&root().join(dir)) {
            for (n, line) in library_code(&file) {
                if line.contains("axum::serve")
                    || line.contains("hyper::server::conn") && !file.ends_with("listener.rs")
                {
                    found.push(format!("{}:{n}", file.display()));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "an HTTP listener not served by presence_cti::listener:\n{}",
        found.join("\n")
    );
}

/// Both listeners read the `Authorization` header only through `presence_cti::auth`: the
/// contact-centre link's upgrade calls `bearer_authorized`, and no other library source of
/// the link or the binary names the header (so no route can grow a check of its own).
#[test]
fn only_the_shared_check_reads_the_authorization_header() {
    let server = fs::read_to_string(root().join("crates/presence-cti/src/server.rs")).unwrap();
    assert!(
        server.contains("auth::bearer_authorized("),
        "the contact-centre link's upgrade checks its token with auth::bearer_authorized"
    );
    let mut found = Vec::new();
    for dir in ["crates/presence-bridge/src", "crates/presence-cti/src"] {
        for file in rust_files(&root().join(dir)) {
            if file.ends_with("auth.rs") {
                continue;
            }
            for (n, line) in library_code(&file) {
                let lower = line.to_ascii_lowercase();
                if line.contains("AUTHORIZATION") || lower.contains("\"authorization\"") {
                    found.push(format!("{}:{n}", file.display()));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "the Authorization header is read outside presence_cti::auth:\n{}",
        found.join("\n")
    );
}

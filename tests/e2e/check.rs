//! `check` and `explain` on the examples and on broken configurations.

use serde_json::Value;

use crate::support::{Scratch, example, run, stderr, stdout};

#[test]
fn check_the_examples_config() {
    let config = example("bridge.toml");
    let out = run(&["check", "--config", config.to_str().unwrap()]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}\n{}", stderr(&out));
    assert!(text.contains("Profile PushProfile — mode push"), "{text}");
    assert!(text.contains("Profile PullProfile — mode pull"), "{text}");
    assert!(text.contains("3000-5999 (Online, IdleOnline)"), "{text}");
    // All 15 rows of the seed table.
    for (index, id) in [
        (1, "IDLE_OUT"),
        (2, "IDLE_READY"),
        (7, "INCALL"),
        (15, "OOS"),
    ] {
        assert!(
            text.lines()
                .any(|l| l.trim_start().starts_with(&format!("{index} ")) && l.contains(id)),
            "row {index} {id} missing:\n{text}"
        );
    }
    assert!(text.contains("Работа с клиентом, не беспокоить"), "{text}");
    assert!(
        text.contains("5001") && text.contains("sip:agent1@contoso.com"),
        "{text}"
    );
}

#[test]
fn check_json_has_the_documented_fields() {
    let config = example("bridge.toml");
    let out = run(&["check", "--config", config.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(json["valid"], true);
    assert_eq!(json["application_profile"], "PullProfile");
    let push = json["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "PushProfile")
        .unwrap();
    assert_eq!(push["mode"], "push");
    let rows = push["push"]["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 15);
    assert_eq!(rows[5]["index"], 6);
    assert_eq!(rows[5]["aggregated_state"], "INCALL");
    assert_eq!(rows[5]["availability"], 7001);
    assert_eq!(
        rows[5]["activities"]["3082"],
        "Estoy trabajando con los clientes, no molestar"
    );
    let dns = json["dns"].as_array().unwrap();
    let d = dns.iter().find(|d| d["dn"] == "6001").unwrap();
    assert_eq!(
        (
            d["profile"].as_str(),
            d["source"].as_str(),
            d["mode"].as_str()
        ),
        (Some("PullProfile"), Some("application"), Some("pull"))
    );
}

#[test]
fn check_an_invalid_config_names_file_and_line() {
    let dir = Scratch::new("check-invalid");
    dir.write("map.xml", r#"<agentStates xmlns="http://schemas.genesys.com/09/2014/mslyncserver/agentStates"><agentState ID="A" availability="3500"/></agentStates>"#);
    let config = dir.write(
        "bridge.toml",
        "[dn.P]\ntype = \"VoIPService\"\nannex.TServer = { service-type = \"presence-profile\", agent-presence-map = \"map.xml\", aggregated-states = \"1=A, 2=B\" }\n",
    );
    let out = run(&["check", "--config", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains("bridge.toml:3:") && text.contains("`B`") && text.contains("INVALID"),
        "{text}"
    );
    let out = run(&["check", "--config", config.to_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["valid"], false);
    assert_eq!(json["errors"][0]["line"], 3);
    assert_eq!(json["errors"][0]["dn"], "P");
    assert_eq!(json["errors"][0]["option"], "aggregated-states");
}

#[test]
fn check_a_missing_file() {
    let out = run(&["check", "--config", "/nonexistent/bridge.toml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("cannot read the configuration `/nonexistent/bridge.toml`"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn explain_push_and_pull_as_json() {
    let config = example("bridge.toml");
    let c = config.to_str().unwrap();
    let out = run(&[
        "explain",
        "--config",
        c,
        "--dn",
        "5001",
        "--agent-state",
        "acw",
        "--device-state",
        "Idle",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["dn"], "5001");
    assert_eq!(json["profile"], "PushProfile");
    assert_eq!(json["mode"], "push");
    assert_eq!(json["index"], 4);
    assert_eq!(json["aggregated_state"], "IDLE_ACW");
    assert_eq!(json["availability"], 6001);
    assert_eq!(
        json["activities"]["1033"],
        "I am in After Call Work, do not disturb me"
    );

    for (availability, dnd) in [
        ("3500", "off"),
        ("6500", "on"),
        ("18500", "on"),
        ("0", "unchanged"),
    ] {
        let out = run(&[
            "explain",
            "--config",
            c,
            "--dn",
            "6001",
            "--availability",
            availability,
            "--json",
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        let json: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(json["mode"], "pull");
        assert_eq!(json["dnd"], dnd, "{availability}");
        assert_eq!(json["availability"].to_string(), availability);
    }
}

#[test]
fn explain_refuses_a_question_that_does_not_fit_the_mode() {
    let config = example("bridge.toml");
    let out = run(&[
        "explain",
        "--config",
        config.to_str().unwrap(),
        "--dn",
        "5001",
        "--availability",
        "3500",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--agent-state"), "{}", stderr(&out));
    let out = run(&[
        "explain",
        "--config",
        config.to_str().unwrap(),
        "--dn",
        "5001",
        "--agent-state",
        "Lunch",
        "--device-state",
        "Idle",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("Walk_Away"), "{}", stderr(&out));
}

#[test]
fn check_summarises_many_dns_unless_asked_for_all() {
    let dir = Scratch::new("check-many");
    let mut text = String::from(
        "[options.TServer]\npresence-profile = \"P\"\n[dn.P]\ntype = \"VoIPService\"\nannex.TServer = { service-type = \"presence-profile\", map-presence-to-dnd = \"true\" }\n",
    );
    for i in 0..60 {
        text.push_str(&format!(
            "[dn.\"{}\"]\ntype = \"Extension\"\nuri = \"sip:u{i}@x.com\"\n",
            7000 + i
        ));
    }
    let config = dir.write("bridge.toml", &text);
    let out = run(&["check", "--config", config.to_str().unwrap()]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("60 DNs on P (from application), mode pull") && text.contains("--all-dns"),
        "{text}"
    );
    assert!(!text.contains("sip:u59@x.com"), "{text}");
    let out = run(&["check", "--config", config.to_str().unwrap(), "--all-dns"]);
    assert!(stdout(&out).contains("sip:u59@x.com"));
}

#[test]
fn explain_refuses_a_dn_that_is_not_in_the_configuration() {
    let config = example("bridge.toml");
    let out = run(&[
        "explain",
        "--config",
        config.to_str().unwrap(),
        "--dn",
        "abc",
        "--availability",
        "3500",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stdout(&out).is_empty(), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("DN `abc` is not an Extension DN"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_reader_that_closes_the_pipe_early_is_not_a_crash() {
    use std::process::{Command, Stdio};
    let config = example("bridge.toml");
    for args in [
        vec!["check", "--config", config.to_str().unwrap(), "--all-dns"],
        vec![
            "explain",
            "--config",
            config.to_str().unwrap(),
            "--dn",
            "5001",
            "--agent-state",
            "Ready",
            "--device-state",
            "Idle",
            "--json",
        ],
    ] {
        // The reader is gone before the command writes: `... | true`.
        let mut child = Command::new(env!("CARGO_BIN_EXE_presence-bridge"))
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        assert_ne!(out.status.code(), Some(101), "{args:?} panicked");
        assert!(
            !stderr(&out).contains("panicked"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
}

/// One typo in a profile is one error: the DNs that name the profile are listed once, in a
/// note, instead of each getting a "not a presence profile" error of its own.
#[test]
fn check_reports_a_broken_profile_once_and_names_its_dns_in_a_note() {
    let dir = Scratch::new("check-broken-profile");
    let example_text = std::fs::read_to_string(example("bridge.toml")).unwrap();
    dir.write(
        "agent-states.xml",
        &std::fs::read_to_string(example("agent-states.xml")).unwrap(),
    );
    let broken = example_text.replacen("15=OOS.", "16=OOS.", 1);
    assert_ne!(broken, example_text, "the example maps index 15");
    let config = dir.write("bridge.toml", &broken);
    let out = run(&["check", "--config", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.contains("INVALID: 1 error(s)"), "{text}");
    assert!(text.contains("state index `16` is not valid"), "{text}");
    assert!(!text.contains("is not a presence profile"), "{text}");
    let notes: Vec<&str> = text.lines().filter(|l| l.contains(": note: ")).collect();
    assert_eq!(notes.len(), 1, "{text}");
    assert!(
        notes[0].contains("profile `PushProfile` cannot be used")
            && notes[0].contains("the 3 DNs that name it depend on it: 5001, 5002, 5003"),
        "{text}"
    );

    let out = run(&["check", "--config", config.to_str().unwrap(), "--json"]);
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["errors"].as_array().unwrap().len(), 1, "{json:#}");
    let notes = json["notes"].as_array().unwrap();
    assert_eq!(notes.len(), 1, "{json:#}");
    assert_eq!(notes[0]["severity"], "note");
    assert_eq!(notes[0]["dn"], "PushProfile");
}

/// A TLS file that cannot be read here is reported on the line of its own key, not on
/// its table's header.
#[test]
fn check_points_certificate_findings_at_their_keys() {
    let dir = Scratch::new("check-tls-lines");
    let config = dir.write(
        "bridge.toml",
        "[sfb]\n\
         pool = \"pool01.contoso.com:5061\"\n\
         application-uri = \"sip:presence-bridge@contoso.com\"\n\
         \n\
         [sfb.tls]\n\
         # the bridge's own certificate\n\
         certificate = \"certs/presence-bridge.pem\"\n\
         private-key = \"certs/presence-bridge.key\"\n\
         ca = \"certs/contoso-ca.pem\"\n\
         \n\
         [simple]\n\
         server = \"presence.example.com:5061\"\n\
         transport = \"tls\"\n\
         \n\
         [simple.tls]\n\
         ca = \"certs/presence-ca.pem\"\n",
    );
    let out = run(&["check", "--config", config.to_str().unwrap(), "--json"]);
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let at = |needle: &str| -> (u64, u64) {
        let d = json["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["message"].as_str().unwrap().starts_with(needle))
            .unwrap_or_else(|| panic!("a warning about {needle}: {json:#}"));
        (d["line"].as_u64().unwrap(), d["column"].as_u64().unwrap())
    };
    assert_eq!(at("`sfb.tls.certificate`: cannot read"), (7, 1));
    assert_eq!(at("`sfb.tls.private-key`: cannot read"), (8, 1));
    assert_eq!(at("`sfb.tls.ca`: cannot read"), (9, 1));
    assert_eq!(at("`simple.tls.ca`: cannot read"), (16, 1));
    let text = stdout(&run(&["check", "--config", config.to_str().unwrap()]));
    assert!(
        text.contains("bridge.toml:7:1: warning: `sfb.tls.certificate`: cannot read"),
        "{text}"
    );
}

/// A misspelt key in a nested transport table names the table and the key meant.
#[test]
fn check_names_the_table_of_an_unknown_key() {
    let dir = Scratch::new("check-unknown-key");
    let config = dir.write(
        "bridge.toml",
        "[sfb]\npool = \"127.0.0.1:5061\"\ntransport = \"tcp\"\napplication-uri = \"sip:presence-bridge@contoso.com\"\n\n[sfb.subscription]\nbatch-sise = 100\n",
    );
    let out = run(&["check", "--config", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains(
            "bridge.toml:7:1: error: unknown key `batch-sise` in `[sfb.subscription]`: expected `batch-size` or `expires`; did you mean `batch-size`?"
        ),
        "{text}"
    );
    assert!(!text.contains("besides"), "{text}");
}

/// The lab example is what README's "Using it" runs against the simulator: it must stay
/// valid, and clean (no certificate or secret it cannot find).
#[test]
fn check_the_lab_config() {
    let config = example("lab.toml");
    let out = run(&["check", "--config", config.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["valid"], true, "{json:#}");
    assert_eq!(json["warnings"].as_array().unwrap().len(), 0, "{json:#}");
    let dns = json["dns"].as_array().unwrap();
    assert!(
        dns.iter().all(|d| d["platform"] == "sfb"),
        "every lab user is on the simulator: {json:#}"
    );
}

/// docs/cli.md's `check --json` table names every top-level field the command writes, and
/// nothing else.
#[test]
fn check_json_fields_are_the_documented_ones() {
    let doc = std::fs::read_to_string(crate::support::root().join("docs/cli.md")).unwrap();
    let section = doc
        .split("### `check --json`")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("docs/cli.md has a `check --json` section");
    let mut documented: Vec<String> = section
        .lines()
        .filter(|l| l.starts_with("| `"))
        .filter_map(|l| l.split('|').nth(1))
        .flat_map(|cell| cell.split(','))
        .map(|name| name.trim().trim_matches('`').to_owned())
        .filter(|name| !name.contains('.') && !name.contains('['))
        .collect();
    documented.sort();
    let config = example("bridge.toml");
    let out = run(&["check", "--config", config.to_str().unwrap(), "--json"]);
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut written: Vec<String> = json.as_object().unwrap().keys().cloned().collect();
    written.sort();
    assert_eq!(written, documented);
}

/// What docs/cli.md says an invalid file's JSON holds: nothing but the diagnostics when
/// its profiles and DNs do not load; everything when only a later check fails.
#[test]
fn check_json_of_an_invalid_file_holds_what_loaded() {
    let dir = Scratch::new("check-invalid-json");
    let text = "[options.TServer]\npresence-profile = \"P\"\n[dn.P]\ntype = \"VoIPService\"\nannex.TServer = { service-type = \"presence-profile\", map-presence-to-dnd = \"true\" }\n[dn.\"5001\"]\ntype = \"Extension\"\nuri = \"sip:a@contoso.com\"\n";
    let check = |config: &std::path::Path| -> Value {
        let out = run(&["check", "--config", config.to_str().unwrap(), "--json"]);
        assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    // A setting of the [sfb] table that cannot work: the profiles and DNs loaded.
    let config = dir.write(
        "table.toml",
        &format!("{text}[sfb]\npool = \"127.0.0.1:5061\"\ntransport = \"tcp\"\napplication-uri = \"not-a-sip-uri\"\n"),
    );
    let json = check(&config);
    assert_eq!(json["valid"], false);
    assert_eq!(json["application_profile"], "P");
    assert_eq!(json["profiles"][0]["name"], "P");
    assert_eq!(json["dns"][0]["dn"], "5001");
    assert_eq!(json["dns"][0]["platform"], "sfb");
    assert_eq!(json["summary"]["dns"], 1);
    // A DN whose platform is not configured: loaded, but no DN's user is resolved.
    let config = dir.write(
        "platform.toml",
        &format!("{text}platform = \"teams\"\n[sfb]\npool = \"127.0.0.1:5061\"\ntransport = \"tcp\"\napplication-uri = \"sip:b@contoso.com\"\n"),
    );
    let json = check(&config);
    assert_eq!(json["dns"][0]["dn"], "5001");
    assert_eq!(json["dns"][0]["platform"], Value::Null);
    // A profile option that does not parse: nothing loaded.
    let config = dir.write("option.toml", &text.replace("\"true\"", "\"ja\""));
    let json = check(&config);
    assert_eq!(json["application_profile"], Value::Null);
    assert_eq!(json["profiles"].as_array().unwrap().len(), 0);
    assert_eq!(json["dns"].as_array().unwrap().len(), 0);
    assert!(!json["errors"].as_array().unwrap().is_empty());
}

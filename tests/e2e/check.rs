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

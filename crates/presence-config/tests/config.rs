//! Loading whole configurations: the examples, the bad-input suite, resolution, robustness.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

use presence_config::{
    Diagnostics, LoadOptions, Loaded, Mode, NoSections, ProfileMode, ProfileSource, Severity,
    Source, load,
};
use proptest::prelude::*;

const SEED_MAP: &str = include_str!("../../../examples/agent-states.xml");

const SEED_STATES: &str = "1=IDLE_OUT, 2=IDLE_READY, 3=IDLE_NOTREADY, 4=IDLE_ACW, 5=IDLE_AWAY, 6=INCALL, 7= INCALL, 8=INCALL, 9=INCALL,10=INCALL,11=OOS, 12=OOS, 13=OOS, 14=OOS, 15=OOS.";

fn files(extra: &[(&str, &str)]) -> HashMap<PathBuf, Vec<u8>> {
    let mut files: HashMap<PathBuf, Vec<u8>> = HashMap::new();
    files.insert(
        PathBuf::from("conf/agent-states.xml"),
        SEED_MAP.as_bytes().to_vec(),
    );
    for (path, text) in extra {
        files.insert(Path::new("conf").join(path), text.as_bytes().to_vec());
    }
    files
}

fn try_load(text: &str, extra: &[(&str, &str)]) -> Result<Loaded<NoSections>, Diagnostics> {
    let files = files(extra);
    let source = Source {
        path: Path::new("conf/bridge.toml"),
        text,
    };
    load(&source, &LoadOptions::default(), &mut |path| {
        files
            .get(path)
            .cloned()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such file"))
    })
}

fn push_profile(states: &str) -> String {
    format!(
        r#"
[dn.PushProfile]
type = "VoIPService"
[dn.PushProfile.annex.TServer]
service-type = "presence-profile"
map-presence-to-dnd = "false"
agent-presence-map = "agent-states.xml"
aggregated-states = "{states}"
"#
    )
}

#[test]
fn the_examples_config_loads() {
    let text = include_str!("../../../examples/bridge.toml");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let source = Source {
        path: &dir.join("bridge.toml"),
        text,
    };
    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    struct AnySections {
        sfb: Option<toml::Table>,
        cti: Option<toml::Table>,
        admin: Option<toml::Table>,
    }
    let loaded = load::<AnySections>(&source, &LoadOptions::default(), &mut |p| std::fs::read(p))
        .unwrap_or_else(|d| panic!("{d}"));
    let config = loaded.config;
    let modes: Vec<(String, Mode)> = config
        .profiles()
        .map(|p| (p.name.to_string(), p.mode.kind()))
        .collect();
    assert!(
        modes.contains(&("PushProfile".to_owned(), Mode::Push)),
        "{modes:?}"
    );
    assert!(
        modes.contains(&("PullProfile".to_owned(), Mode::Pull)),
        "{modes:?}"
    );
    assert!(config.extensions().len() >= 3);
}

#[test]
fn seed_push_profile_loads_with_its_map() {
    let loaded = try_load(&push_profile(SEED_STATES), &[]).unwrap_or_else(|d| panic!("{d}"));
    let profile = loaded.config.profile("PushProfile").unwrap();
    let ProfileMode::Push(push) = &profile.mode else {
        panic!("expected push, got {:?}", profile.mode)
    };
    assert_eq!(push.map_path, Path::new("conf/agent-states.xml"));
    assert_eq!(push.map.len(), 7);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
}

#[test]
fn seed_pull_range_example() {
    let text = r#"
[dn.PullProfile]
type = "VoIPService"
annex.TServer = { service-type = "presence-profile", map-presence-to-dnd = "true", presence-availability-range = "3000-5999" }
"#;
    let loaded = try_load(text, &[]).unwrap_or_else(|d| panic!("{d}"));
    let ProfileMode::Pull(pull) = &loaded.config.profile("PullProfile").unwrap().mode else {
        panic!()
    };
    assert_eq!(pull.ranges.len(), 1);
    assert_eq!(pull.ranges[0].to_string(), "3000-5999");
    assert!(!pull.default_ranges);
}

#[test]
fn defaults_and_native_toml_values() {
    let text = r#"
[dn.P]
type = "VoIPService"
annex.TServer = { service-type = "presence-profile", map-presence-to-dnd = true }
[dn.Q]
type = "VoIPService"
annex.TServer = { service-type = "presence-profile", map-presence-to-dnd = "YES", presence-availability-range = 3500 }
"#;
    let loaded = try_load(text, &[]).unwrap_or_else(|d| panic!("{d}"));
    let ProfileMode::Pull(p) = &loaded.config.profile("P").unwrap().mode else {
        panic!()
    };
    assert!(p.default_ranges);
    assert_eq!(p.ranges[0].to_string(), "3000-4499");
    let ProfileMode::Pull(q) = &loaded.config.profile("Q").unwrap().mode else {
        panic!()
    };
    assert_eq!(q.ranges[0].to_string(), "3500");
}

#[test]
fn resolution_login_dn_application() {
    let text = format!(
        r#"
[options.TServer]
presence-profile = "Pull"
{}
[dn.Pull]
type = "VoIPService"
annex.TServer = {{ service-type = "presence-profile", map-presence-to-dnd = "true" }}

[dn."5001"]
type = "Extension"
uri = "sip:a@x.com"
annex.TServer = {{ presence-profile = "PushProfile" }}

[dn."5002"]
type = "Extension"
uri = "sip:b@x.com"
"#,
        push_profile(SEED_STATES)
    );
    let loaded = try_load(&text, &[]).unwrap_or_else(|d| panic!("{d}"));
    let c = &loaded.config;
    let r = c.resolve("5001", None);
    assert_eq!(
        (r.profile.unwrap().name.as_str(), r.source),
        ("PushProfile", Some(ProfileSource::Dn))
    );
    let r = c.resolve("5002", None);
    assert_eq!(
        (r.profile.unwrap().name.as_str(), r.source),
        ("Pull", Some(ProfileSource::Application))
    );
    let r = c.resolve("5002", Some("PushProfile"));
    assert_eq!(
        (r.profile.unwrap().name.as_str(), r.source),
        ("PushProfile", Some(ProfileSource::Login))
    );
    let r = c.resolve("5001", Some("Missing"));
    assert_eq!(
        (r.profile.unwrap().name.as_str(), r.source),
        ("PushProfile", Some(ProfileSource::Dn))
    );
    let reason = r.rejected.unwrap().to_string();
    assert!(
        reason.contains("`Missing`") && reason.contains("Pull, PushProfile"),
        "{reason}"
    );
    // A DN that is not configured still gets the application's profile.
    assert_eq!(
        c.resolve("9999", None).source,
        Some(ProfileSource::Application)
    );
}

#[test]
fn warnings_name_their_place() {
    let text = r#"
[options.Log]
verbose = "all"

[dn.PullBoth]
type = "VoIPService"
annex.TServer = { service-type = "presence-profile", map-presence-to-dnd = "true", agent-presence-map = "agent-states.xml", aggregated-states = "1=IDLE_OUT" }

[dn.Nothing]
type = "VoIPService"
annex.TServer = { service-type = "presence-profile" }

[dn.Push]
type = "VoIPService"
annex.TServer = { service-type = "presence-profile", agent-presence-map = "agent-states.xml", aggregated-states = "1=IDLE_OUT, 2=IDLE_READY" }

[dn.OtherService]
type = "VoIPService"
annex.TServer = { service-type = "voicemail", whatever = "x" }
"#;
    let loaded = try_load(text, &[]).unwrap_or_else(|d| panic!("{d}"));
    let all: Vec<String> = loaded.warnings.iter().map(|w| w.to_string()).collect();
    let find = |needle: &str| {
        all.iter()
            .find(|w| w.contains(needle))
            .unwrap_or_else(|| panic!("no warning with {needle:?} in {all:#?}"))
            .clone()
    };
    assert!(find("[options.Log]").starts_with("conf/bridge.toml:2:"));
    let w = find("`agent-presence-map` is ignored");
    assert!(
        w.starts_with("conf/bridge.toml:7:") && w.contains("DN `PullBoth`"),
        "{w}"
    );
    assert!(find("`aggregated-states` is ignored").contains("PullBoth"));
    let w = find("propagates nothing");
    assert!(
        w.starts_with("conf/bridge.toml:9:") && w.contains("Nothing"),
        "{w}"
    );
    let w = find("indexes 3, 4, 5");
    assert!(w.contains("DN `Push`") && w.contains("15"), "{w}");
    let w = find("`INCALL` is not used");
    assert!(w.starts_with("conf/agent-states.xml:"), "{w}");
    assert!(!all.iter().any(|w| w.contains("OtherService")), "{all:#?}");
    assert!(
        loaded
            .warnings
            .iter()
            .all(|w| w.severity == Severity::Warning)
    );
}

/// The bad-input suite: each case must be refused with a message that names the place
/// (file:line) and the offending value.
#[test]
fn bad_input_suite() {
    let ext = |annex: &str| {
        format!(
            "{}\n[dn.\"5001\"]\ntype = \"Extension\"\nuri = \"sip:a@x.com\"\nannex.TServer = {{ {annex} }}\n",
            push_profile(SEED_STATES)
        )
    };
    let pull = |range: &str| {
        format!(
            "[dn.P]\ntype = \"VoIPService\"\nannex.TServer = {{ service-type = \"presence-profile\", map-presence-to-dnd = \"true\", presence-availability-range = \"{range}\" }}\n"
        )
    };
    let map_with = |body: &str| {
        format!(
            r#"<?xml version="1.0"?>
<agentStates xmlns="http://schemas.genesys.com/09/2014/mslyncserver/agentStates">
{body}
</agentStates>"#
        )
    };
    let one_state_map_profile = push_profile("1=A").replace("agent-states.xml", "bad.xml");
    // (name, configuration, extra files, expected place, words the message must contain)
    type Case<'a> = (
        &'a str,
        String,
        Vec<(&'a str, String)>,
        &'a str,
        Vec<&'a str>,
    );
    let cases: Vec<Case<'_>> = vec![
        ("unknown option", ext("presence-profle = \"PushProfile\""), vec![], "conf/bridge.toml:13:", vec!["`presence-profle`", "did you mean `presence-profile`", "DN `5001`"]),
        ("unknown DN field", format!("{}\n[dn.\"5001\"]\ntype = \"Extension\"\nurl = \"sip:a@x.com\"\n", push_profile(SEED_STATES)), vec![], "conf/bridge.toml:12:", vec!["`url`", "uri"]),
        ("bad boolean", push_profile(SEED_STATES).replace("\"false\"", "\"ja\""), vec![], "conf/bridge.toml:6:", vec!["`ja`", "true/false", "map-presence-to-dnd"]),
        ("reversed range", pull("3000-4499, 6000-3000"), vec![], "conf/bridge.toml:3:", vec!["6000-3000", "presence-availability-range", "DN `P`"]),
        ("non-numeric range", pull("abc"), vec![], "conf/bridge.toml:3:", vec!["`abc`", "0..=18000"]),
        ("range above 18000", pull("19000"), vec![], "conf/bridge.toml:3:", vec!["19000", "0..=18000"]),
        ("index 0", push_profile("0=IDLE_OUT"), vec![], "conf/bridge.toml:8:", vec!["`0`", "1..=15", "aggregated-states"]),
        ("index 16", push_profile("1=IDLE_OUT, 16=OOS"), vec![], "conf/bridge.toml:8:", vec!["`16`", "1..=15"]),
        ("duplicated index", push_profile("1=IDLE_OUT, 1=OOS"), vec![], "conf/bridge.toml:8:", vec!["index 1", "more than once"]),
        ("ID missing from the map", push_profile("1=IDLE_OUT, 2=LUNCH"), vec![], "conf/bridge.toml:8:", vec!["`LUNCH`", "index 2", "agent-states.xml", "IDLE_READY"]),
        ("wrong root", one_state_map_profile.clone(), vec![("bad.xml", r#"<states xmlns="http://schemas.genesys.com/09/2014/mslyncserver/agentStates"/>"#.to_owned())], "conf/bad.xml:1:", vec!["states", "agentStates"]),
        ("wrong namespace", one_state_map_profile.clone(), vec![("bad.xml", r#"<agentStates xmlns="urn:other"/>"#.to_owned())], "conf/bad.xml:1:", vec!["urn:other", "http://schemas.genesys.com/09/2014/mslyncserver/agentStates"]),
        ("duplicate ID", one_state_map_profile.clone(), vec![("bad.xml", map_with("<agentState ID=\"A\" availability=\"3500\"/>\n<agentState ID=\"A\" availability=\"6500\"/>"))], "conf/bad.xml:4:", vec!["`A`"]),
        ("duplicate LCID", one_state_map_profile.clone(), vec![("bad.xml", map_with("<agentState ID=\"A\" availability=\"3500\">\n<activity LCID=\"1033\">a</activity>\n<activity LCID=\"1033\">b</activity>\n</agentState>"))], "conf/bad.xml:5:", vec!["1033"]),
        ("non-numeric LCID", one_state_map_profile.clone(), vec![("bad.xml", map_with("<agentState ID=\"A\" availability=\"3500\">\n<activity LCID=\"en-US\">a</activity>\n</agentState>"))], "conf/bad.xml:4:", vec!["`en-US`"]),
        ("availability -1", one_state_map_profile.clone(), vec![("bad.xml", map_with("<agentState ID=\"A\" availability=\"-1\"/>"))], "conf/bad.xml:3:", vec!["-1", "0..=18000"]),
        ("availability 18001", one_state_map_profile.clone(), vec![("bad.xml", map_with("<agentState ID=\"A\" availability=\"18001\"/>"))], "conf/bad.xml:3:", vec!["18001", "0..=18000"]),
        ("availability x", one_state_map_profile.clone(), vec![("bad.xml", map_with("<agentState ID=\"A\" availability=\"x\"/>"))], "conf/bad.xml:3:", vec!["`x`", "0..=18000"]),
        ("truncated XML", one_state_map_profile.clone(), vec![("bad.xml", map_with("<agentState ID=\"A\" availability=\"3500\">").replace("</agentStates>", ""))], "conf/bad.xml:", vec!["agentState"]),
        ("DOCTYPE", one_state_map_profile.clone(), vec![("bad.xml", format!("<!DOCTYPE x [<!ENTITY a \"b\">]>\n{}", map_with("")))], "conf/bad.xml:1:", vec!["DOCTYPE"]),
        ("empty map file", one_state_map_profile, vec![("bad.xml", String::new())], "conf/bad.xml:1:", vec!["empty"]),
        ("map file missing", push_profile("1=A").replace("agent-states.xml", "nowhere.xml"), vec![], "conf/bridge.toml:7:", vec!["conf/nowhere.xml", "cannot read"]),
        ("profile that names no presence-profile DN", ext("presence-profile = \"Nope\""), vec![], "conf/bridge.toml:13:", vec!["`Nope`", "PushProfile"]),
        ("application profile unknown", "[options.TServer]\npresence-profile = \"Ghost\"\n".to_owned(), vec![], "conf/bridge.toml:2:", vec!["`Ghost`", "no VoIP Service DN"]),
        ("bad DN type", "[dn.\"5001\"]\ntype = \"Trunk\"\n".to_owned(), vec![], "conf/bridge.toml:2:", vec!["`Trunk`", "Extension or VoIPService"]),
        ("missing DN type", "[dn.\"5001\"]\nuri = \"sip:a@x.com\"\n".to_owned(), vec![], "conf/bridge.toml:1:", vec!["`type`", "DN `5001`"]),
        ("bad SIP URI", "[dn.\"5001\"]\ntype = \"Extension\"\nuri = \"agent1@contoso.com\"\n".to_owned(), vec![], "conf/bridge.toml:3:", vec!["`agent1@contoso.com`", "sip:user@host"]),
        ("missing uri", format!("{}\n[dn.\"5001\"]\ntype = \"Extension\"\nannex.TServer = {{ presence-profile = \"PushProfile\" }}\n", push_profile(SEED_STATES)), vec![], "conf/bridge.toml:10:", vec!["DN `5001`", "no `uri`", "PushProfile"]),
        ("duplicate uri", "[dn.\"5001\"]\ntype = \"Extension\"\nuri = \"sip:a@x.com\"\n[dn.\"5002\"]\ntype = \"Extension\"\nuri = \"sip:A@x.com\"\n".to_owned(), vec![], "conf/bridge.toml:4:", vec!["sip:a@x.com", "DN `5001`"]),
        ("unknown table", "[sfx]\nx = 1\n".to_owned(), vec![], "conf/bridge.toml:1:", vec!["`sfx`"]),
        ("TOML syntax", "[dn.\"5001\"\ntype = \"Extension\"\n".to_owned(), vec![], "conf/bridge.toml:1:", vec!["not valid TOML"]),
        ("wrong TOML type", "[dn.\"5001\"]\ntype = [\"Extension\"]\n".to_owned(), vec![], "conf/bridge.toml:2:", vec!["`type`", "array"]),
        ("empty aggregated-states", push_profile(""), vec![], "conf/bridge.toml:8:", vec!["empty"]),
    ];
    let mut failures = Vec::new();
    for (name, text, extra, place, needles) in cases {
        let extra: Vec<(&str, &str)> = extra.iter().map(|(p, t)| (*p, t.as_str())).collect();
        let Err(err) = try_load(&text, &extra) else {
            failures.push(format!("{name}: loaded but should not:\n{text}"));
            continue;
        };
        let messages: Vec<String> = err.errors().map(|d| d.to_string()).collect();
        let hit = messages
            .iter()
            .find(|m| m.starts_with(place) && needles.iter().all(|n| m.contains(n)));
        if hit.is_none() {
            failures.push(format!(
                "{name}: no error at {place} containing {needles:?}; got:\n{}",
                messages.join("\n")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// One mistake in a profile is reported once, where it is; the DNs (and the application)
/// that name the profile are listed in one note, not each given an error of its own
/// saying the profile does not exist.
#[test]
fn a_broken_profile_is_reported_once_with_its_dependents_in_a_note() {
    let dependents = "[options.TServer]\npresence-profile = \"PushProfile\"\n\n[dn.\"5001\"]\ntype = \"Extension\"\nuri = \"sip:a@x.com\"\nannex.TServer = { presence-profile = \"PushProfile\" }\n[dn.\"5002\"]\ntype = \"Extension\"\nuri = \"sip:b@x.com\"\nannex.TServer = { presence-profile = \"PushProfile\" }\n[dn.\"5003\"]\ntype = \"Extension\"\nuri = \"sip:c@x.com\"\nannex.TServer = { presence-profile = \"Nope\" }\n";
    let pull_with_bad_range = "\n[dn.PushProfile]\ntype = \"VoIPService\"\nannex.TServer = { service-type = \"presence-profile\", map-presence-to-dnd = \"true\", presence-availability-range = \"abc\" }\n";
    let cases = [
        (
            "index 16",
            push_profile(&SEED_STATES.replace("15=OOS", "16=OOS")),
            "`16`",
            "its `aggregated-states` is invalid",
        ),
        (
            "map file missing",
            push_profile(SEED_STATES).replace("agent-states.xml", "nowhere.xml"),
            "cannot read the agent-presence map",
            "its `agent-presence-map` cannot be used",
        ),
        (
            "ID missing from the map",
            push_profile(&SEED_STATES.replace("2=IDLE_READY", "2=LUNCH")),
            "`LUNCH`",
            "names states its agent-presence map does not define",
        ),
        (
            "bad boolean",
            push_profile(SEED_STATES).replace("\"false\"", "\"ja\""),
            "`ja`",
            "its `map-presence-to-dnd` is not a boolean",
        ),
        (
            "bad range",
            pull_with_bad_range.to_owned(),
            "`abc`",
            "its `presence-availability-range` is invalid",
        ),
    ];
    for (name, profile, root_cause, cause) in cases {
        let text = format!("{profile}\n{dependents}");
        let err = try_load(&text, &[]).expect_err(name);
        let errors: Vec<String> = err.errors().map(ToString::to_string).collect();
        // The root cause, and the DN naming a profile that really does not exist.
        assert_eq!(errors.len(), 2, "{name}: {errors:#?}");
        assert!(errors[0].contains(root_cause), "{name}: {errors:#?}");
        assert!(
            errors[1].contains("DN `5003`") && errors[1].contains("`Nope`"),
            "{name}: {errors:#?}"
        );
        assert!(
            !errors
                .iter()
                .any(|e| e.contains("`PushProfile` is not a presence profile")),
            "{name}: {errors:#?}"
        );
        let notes: Vec<String> = err.notes().map(ToString::to_string).collect();
        assert_eq!(notes.len(), 1, "{name}: {notes:#?}");
        let note = &notes[0];
        assert!(
            note.starts_with("conf/bridge.toml:2:5: note: DN `PushProfile`: "),
            "{name}: {note}"
        );
        for needle in [
            "profile `PushProfile` cannot be used",
            cause,
            "the 2 DNs that name it depend on it: 5001, 5002",
            "the application's default `presence-profile`",
        ] {
            assert!(note.contains(needle), "{name}: `{needle}` in {note}");
        }
        assert!(!note.contains("5003"), "{name}: {note}");
        // The summary counts the errors, not the dependents.
        assert!(
            err.to_string()
                .starts_with("the configuration is invalid (2 errors)"),
            "{err}"
        );
    }
    // Many dependents: the note lists ten and counts the rest.
    let mut text = push_profile("1=IDLE_OUT, 16=OOS");
    for i in 0..25 {
        text.push_str(&format!(
            "[dn.\"{n}\"]\ntype = \"Extension\"\nuri = \"sip:u{n}@x.com\"\nannex.TServer = {{ presence-profile = \"PushProfile\" }}\n",
            n = 7000 + i
        ));
    }
    let err = try_load(&text, &[]).unwrap_err();
    assert_eq!(err.errors().count(), 1, "{err}");
    let note = err.notes().next().expect("a note").to_string();
    assert!(
        note.contains("the 25 DNs that name it depend on it: 7000, 7001"),
        "{note}"
    );
    assert!(note.contains("7009 and 15 more"), "{note}");
    assert!(!note.contains("7010"), "{note}");
    // A broken profile nobody names gets no note.
    let err = try_load(&push_profile("1=IDLE_OUT, 16=OOS"), &[]).unwrap_err();
    assert_eq!((err.errors().count(), err.notes().count()), (1, 0), "{err}");
}

/// A misspelt key in a nested table names the table, hints at the nearest valid key, and
/// says "(besides `options` and `dn`)" only at the top level, where it applies.
#[test]
fn unknown_keys_in_nested_tables_name_their_table() {
    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Sections {
        sfb: Option<Sfb>,
        cti: Option<toml::Table>,
    }
    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Sfb {
        pool: String,
        #[serde(default)]
        subscription: Option<Subscription>,
        #[serde(default)]
        apps: Vec<Subscription>,
    }
    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "kebab-case")]
    #[allow(dead_code)]
    struct Subscription {
        batch_size: Option<u32>,
        expires: Option<u32>,
    }
    let read = &mut |_: &Path| -> io::Result<Vec<u8>> { Err(io::ErrorKind::NotFound.into()) };
    let mut load_text = |text: &str| {
        let source = Source {
            path: Path::new("b.toml"),
            text,
        };
        load::<Sections>(&source, &LoadOptions::default(), &mut *read)
            .unwrap_err()
            .errors()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
    };
    let errors = load_text("[sfb]\npool = \"p\"\n\n[sfb.subscription]\nbatch-sise = 100\n");
    assert_eq!(
        errors,
        [
            "b.toml:5:1: error: unknown key `batch-sise` in `[sfb.subscription]`: expected `batch-size` or `expires`; did you mean `batch-size`?"
        ]
    );
    let errors = load_text("[sfb]\npool = \"p\"\nsubscription = { expire = 5 }\n");
    assert_eq!(
        errors,
        [
            "b.toml:3:18: error: unknown key `expire` in `[sfb.subscription]`: expected `batch-size` or `expires`; did you mean `expires`?"
        ]
    );
    let errors = load_text("[sfb]\npool = \"p\"\npoool = 1\n");
    assert_eq!(
        errors,
        [
            "b.toml:3:1: error: unknown key `poool` in `[sfb]`: expected `pool`, `subscription` or `apps`; did you mean `pool`?"
        ]
    );
    let errors =
        load_text("[sfb]\npool = \"p\"\n[[sfb.apps]]\nexpires = 1\n[[sfb.apps]]\nzzz = 1\n");
    assert_eq!(
        errors,
        [
            "b.toml:6:1: error: unknown key `zzz` in `[[sfb.apps]]`: expected `batch-size` or `expires`"
        ]
    );
    let errors = load_text("[sfbb]\npool = \"p\"\n");
    assert_eq!(
        errors,
        [
            "b.toml:1:2: error: unknown top-level table or key `sfbb`: expected `sfb` or `cti` (besides `options` and `dn`); did you mean `sfb`?"
        ]
    );
}

#[test]
fn keys_are_located_on_their_own_line() {
    let text = "[sfb]\npool = \"p:5061\"\n\n[sfb.tls]\n# the pool's CA\nca = \"ca.pem\"\n  certificate = \"c.pem\"\n\n[simple]\ntls = { ca = \"x.pem\" }\n\n[[teams.apps]]\nclient-id = \"a\"\n[[teams.apps]]\nclient-secret = \"s\"\n";
    let source = Source {
        path: Path::new("b.toml"),
        text,
    };
    let at = |key: &str| presence_config::locate_key(&source, key).map(|l| l.to_string());
    assert_eq!(at("sfb.tls.ca").as_deref(), Some("b.toml:6:1"));
    assert_eq!(at("sfb.tls.certificate").as_deref(), Some("b.toml:7:3"));
    // Not written: the nearest table that is.
    assert_eq!(at("sfb.tls.private-key").as_deref(), Some("b.toml:4:6"));
    assert_eq!(at("sfb.keepalive").as_deref(), Some("b.toml:1:2"));
    assert_eq!(at("simple.tls.ca").as_deref(), Some("b.toml:10:9"));
    // In an array of tables: the first element that has the key.
    assert_eq!(
        at("teams.apps.client-secret").as_deref(),
        Some("b.toml:15:1")
    );
    assert_eq!(at("teams.apps.client-id").as_deref(), Some("b.toml:13:1"));
    assert_eq!(at("cti.listen"), None);
}

#[test]
fn empty_file_is_a_valid_empty_configuration() {
    let loaded = try_load("", &[]).unwrap();
    assert_eq!(loaded.config.profiles().len(), 0);
    assert!(loaded.config.extensions().is_empty());
    assert!(loaded.config.resolve("5001", None).profile.is_none());
}

#[test]
fn maps_are_read_once_per_path() {
    let text = format!(
        "{}\n{}",
        push_profile(SEED_STATES),
        push_profile(SEED_STATES).replace("PushProfile", "Second")
    );
    let files = files(&[]);
    let mut reads = 0;
    let source = Source {
        path: Path::new("conf/bridge.toml"),
        text: &text,
    };
    load::<NoSections>(&source, &LoadOptions::default(), &mut |p| {
        reads += 1;
        Ok(files[p].clone())
    })
    .unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(reads, 1);
}

#[test]
fn sections_deserialize_into_the_callers_type_with_locations() {
    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Sections {
        sfb: Option<Sfb>,
    }
    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Sfb {
        #[allow(dead_code)]
        pool: String,
        port: u16,
    }
    let source = |text: &'static str| Source {
        path: Path::new("b.toml"),
        text,
    };
    let read = &mut |_: &Path| -> io::Result<Vec<u8>> { Err(io::ErrorKind::NotFound.into()) };
    let ok = load::<Sections>(
        &source("[sfb]\npool = \"fe.contoso.com\"\nport = 5061\n"),
        &LoadOptions::default(),
        read,
    )
    .unwrap();
    assert_eq!(ok.sections.sfb.unwrap().port, 5061);
    let err = load::<Sections>(
        &source("[sfb]\npool = \"fe\"\nport = 99999\n"),
        &LoadOptions::default(),
        read,
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("b.toml:3:"), "{msg}");
    let err = load::<Sections>(
        &source("[sfb]\npool = \"fe\"\nport = 1\n[cti]\n"),
        &LoadOptions::default(),
        read,
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("b.toml:4:") && err.to_string().contains("`cti`"),
        "{err}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    /// Arbitrary text never panics the loader.
    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,300}") {
        // The body of the `config_toml` fuzz target.
        presence_config::fuzzing::config_file(text.as_bytes(), SEED_MAP.as_bytes());
    }

    /// The body of the `option_values` fuzz target, on text near the options' syntax and
    /// on any text.
    #[test]
    fn option_values_never_panic(near in "[0-9 ,.=:A-Z_-]{0,40}", any in "\\PC{0,40}") {
        presence_config::fuzzing::option_values(near.as_bytes());
        presence_config::fuzzing::option_values(any.as_bytes());
    }

    /// Mutations of a valid configuration never panic and errors always carry a location
    /// inside the file.
    #[test]
    fn mutated_configs_never_panic(cut in 0usize..2000, insert in "[\\[\\]\"=,.:a-z0-9 \n-]{0,6}") {
        let base = format!("[options.TServer]\npresence-profile = \"PushProfile\"\n{}\n[dn.\"5001\"]\ntype = \"Extension\"\nuri = \"sip:a@x.com\"\n", push_profile(SEED_STATES));
        let cut = cut.min(base.len());
        let cut = (0..=cut).rev().find(|&i| base.is_char_boundary(i)).unwrap_or(0);
        let text = format!("{}{}{}", &base[..cut], insert, &base[cut..]);
        // The body of the `config_toml` fuzz target: errors are located inside the file.
        presence_config::fuzzing::config_file(text.as_bytes(), SEED_MAP.as_bytes());
    }
}

mod platforms {
    use super::*;
    use presence_config::{Addressing, PlatformSpec};
    use presence_model::{Platform, UserAddress};

    fn spec(name: &str, addressing: Addressing) -> PlatformSpec {
        PlatformSpec {
            name: Platform::new(name).unwrap(),
            addressing,
        }
    }

    fn hybrid() -> Vec<PlatformSpec> {
        vec![
            spec("sfb", Addressing::Sip),
            spec("teams", Addressing::Entra),
        ]
    }

    const PULL: &str = r#"
[options.TServer]
presence-profile = "Pull"

[dn.Pull]
type = "VoIPService"
annex.TServer = { service-type = "presence-profile", map-presence-to-dnd = "true" }
"#;

    fn users_of(text: &str, platforms: &[PlatformSpec]) -> Result<Vec<(String, String)>, String> {
        let loaded = try_load(text, &[]).unwrap_or_else(|d| panic!("{d}"));
        match loaded.config.users(platforms) {
            Ok(users) => Ok(users
                .iter()
                .map(|(dn, user)| (dn.to_string(), user.to_string()))
                .collect()),
            Err(errors) => Err(errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")),
        }
    }

    #[test]
    fn a_single_platform_is_every_dns_default() {
        let text = format!(
            "{PULL}\n[dn.\"5001\"]\ntype = \"Extension\"\nuri = \"sip:Agent1@contoso.com\"\n"
        );
        assert_eq!(
            users_of(&text, &[spec("sfb", Addressing::Sip)]).unwrap(),
            vec![("5001".into(), "sfb:sip:agent1@contoso.com".into())]
        );
        // On Teams the same DN is its UPN.
        assert_eq!(
            users_of(&text, &[spec("teams", Addressing::Entra)]).unwrap(),
            vec![("5001".into(), "teams:agent1@contoso.com".into())]
        );
    }

    #[test]
    fn hybrid_dns_name_their_platform_or_take_the_applications() {
        let text = format!(
            r#"{PULL}
[dn."5001"]
type = "Extension"
uri = "sip:agent1@contoso.com"
platform = "sfb"

[dn."5002"]
type = "Extension"
uri = "sip:agent2@contoso.com"
platform = "Teams"

[dn."5003"]
type = "Extension"
entra-id = "6E8B0B5A-3C3D-4E55-9F3B-0D5A1C2B3A4F"
platform = "teams"
"#
        );
        assert_eq!(
            users_of(&text, &hybrid()).unwrap(),
            vec![
                ("5001".into(), "sfb:sip:agent1@contoso.com".into()),
                ("5002".into(), "teams:agent2@contoso.com".into()),
                (
                    "5003".into(),
                    "teams:6e8b0b5a-3c3d-4e55-9f3b-0d5a1c2b3a4f".into()
                ),
            ]
        );
        let loaded = try_load(&text, &[]).unwrap();
        let users = loaded.config.users(&hybrid()).unwrap();
        assert!(matches!(
            users.get("5003").unwrap().address(),
            UserAddress::EntraId(_)
        ));
        // The application's default covers DNs that name none.
        let text = text.replacen(
            "presence-profile = \"Pull\"",
            "presence-profile = \"Pull\"\npresence-platform = \"teams\"",
            1,
        );
        let text = text.replacen("platform = \"sfb\"\n", "", 1);
        assert_eq!(
            users_of(&text, &hybrid()).unwrap()[0],
            ("5001".into(), "teams:agent1@contoso.com".into())
        );
    }

    #[test]
    fn errors_name_the_dn_and_the_place() {
        let text = format!(
            r#"{PULL}
[dn."5001"]
type = "Extension"
uri = "sip:agent1@contoso.com"
platform = "simpel"

[dn."5002"]
type = "Extension"
uri = "sip:agent2@contoso.com"

[dn."5003"]
type = "Extension"
entra-id = "6e8b0b5a-3c3d-4e55-9f3b-0d5a1c2b3a4f"
platform = "sfb"
"#
        );
        let platforms = [
            spec("sfb", Addressing::Sip),
            spec("teams", Addressing::Entra),
            spec("simple", Addressing::Sip),
        ];
        let err = users_of(&text, &platforms).unwrap_err();
        assert!(
            err.contains("conf/bridge.toml:12:12: error: DN `5001`, option `platform`: platform `simpel` is not configured: the configured platforms are sfb, teams, simple; did you mean `simple`?"),
            "{err}"
        );
        assert!(
            err.contains(
                "DN `5002`, option `platform`: DN `5002` gets presence but names no `platform`"
            ),
            "{err}"
        );
        assert!(
            err.contains(
                "DN `5003`, option `uri`: DN `5003` is on platform `sfb`, which needs a SIP address"
            ),
            "{err}"
        );
        // An application default that is not configured.
        let text = PULL.replacen(
            "presence-profile = \"Pull\"",
            "presence-profile = \"Pull\"\npresence-platform = \"teams\"",
            1,
        );
        let err = users_of(&text, &[spec("sfb", Addressing::Sip)]).unwrap_err();
        assert!(
            err.contains("option `presence-platform`: platform `teams` is not configured"),
            "{err}"
        );
    }

    #[test]
    fn field_syntax_is_checked_at_load() {
        for (field, value, expected) in [
            (
                "platform",
                "\"my platform\"",
                "platform `my platform` is not valid",
            ),
            (
                "entra-id",
                "\"not-a-guid\"",
                "Entra object id `not-a-guid` is not valid",
            ),
        ] {
            let text = format!(
                "[dn.\"5001\"]\ntype = \"Extension\"\nuri = \"sip:a@b\"\n{field} = {value}\n"
            );
            let err = try_load(&text, &[]).unwrap_err().to_string();
            assert!(err.contains(expected), "{err}");
            assert!(err.contains("conf/bridge.toml:4:"), "{err}");
        }
        let text = "[dn.\"5001\"]\ntype = \"Extension\"\nentra-id = \"6e8b0b5a-3c3d-4e55-9f3b-0d5a1c2b3a4f\"\n[dn.\"5002\"]\ntype = \"Extension\"\nentra-id = \"6E8B0B5A-3C3D-4E55-9F3B-0D5A1C2B3A4F\"\n";
        let err = try_load(text, &[]).unwrap_err().to_string();
        assert!(err.contains("is already the user of DN `5001`"), "{err}");
    }
}

//! Namespaces, text assembly, warnings.

use presence_map::{AgentPresenceMap, Location, NAMESPACE};
use presence_model::Lcid;

fn text_of(map: &AgentPresenceMap, id: &str, lcid: u32) -> String {
    map.get(id)
        .unwrap_or_else(|| panic!("no state {id}"))
        .presence
        .activities
        .get(Lcid::new(lcid))
        .unwrap_or_else(|| panic!("no text {lcid} in {id}"))
        .to_string()
}

#[test]
fn a_prefixed_namespace_reads_the_same_as_the_default_one() {
    let default = format!(
        r#"<agentStates xmlns="{NAMESPACE}">
  <agentState ID="INCALL" availability="7001">
    <activity LCID="1033">Busy</activity>
    <activity LCID="3082">Ocupado</activity>
  </agentState>
  <agentState ID="OOS" availability="18000"/>
</agentStates>"#
    );
    let prefixed = format!(
        r#"<g:agentStates xmlns:g="{NAMESPACE}">
  <g:agentState ID="INCALL" availability="7001">
    <g:activity LCID="1033">Busy</g:activity>
    <g:activity LCID="3082">Ocupado</g:activity>
  </g:agentState>
  <g:agentState ID="OOS" availability="18000"/>
</g:agentStates>"#
    );
    // The default namespace bound on the root, children with a prefix bound further down.
    let mixed = format!(
        r#"<agentStates xmlns="{NAMESPACE}">
  <p:agentState xmlns:p="{NAMESPACE}" ID="INCALL" availability="7001">
    <activity LCID="1033">Busy</activity>
    <p:activity LCID="3082">Ocupado</p:activity>
  </p:agentState>
  <agentState ID="OOS" availability="18000"/>
</agentStates>"#
    );
    let a = AgentPresenceMap::parse(default.as_bytes()).unwrap();
    let b = AgentPresenceMap::parse(prefixed.as_bytes()).unwrap();
    let c = AgentPresenceMap::parse(mixed.as_bytes()).unwrap();
    assert!(a.warnings.is_empty() && b.warnings.is_empty() && c.warnings.is_empty());
    assert_eq!(a.map.len(), 2);
    assert_eq!(a.map, b.map);
    assert_eq!(a.map, c.map);
    assert_eq!(
        a.map.entries()[0].location,
        b.map.entries()[0].location,
        "same layout, same locations"
    );
}

#[test]
fn the_right_local_name_in_another_namespace_is_unknown() {
    let xml = format!(
        r#"<agentStates xmlns="{NAMESPACE}" xmlns:o="urn:other">
  <o:agentState ID="X" availability="1"/>
  <agentState ID="A" availability="1">
    <o:activity LCID="1033">other</o:activity>
    <activity LCID="1033">mine</activity>
  </agentState>
  <agentState xmlns="urn:other" ID="B" availability="2"/>
</agentStates>"#
    );
    let parsed = AgentPresenceMap::parse(xml.as_bytes()).unwrap();
    assert_eq!(parsed.map.len(), 1);
    assert_eq!(text_of(&parsed.map, "A", 1033), "mine");
    let warnings: Vec<String> = parsed.warnings.iter().map(|w| w.to_string()).collect();
    assert_eq!(warnings.len(), 3, "{warnings:#?}");
    assert!(
        warnings[0]
            .starts_with("line 2, column 3: element `<o:agentState>` in namespace `urn:other`"),
        "{warnings:#?}"
    );
    assert!(
        warnings[1]
            .starts_with("line 4, column 5: element `<o:activity>` in namespace `urn:other`"),
        "{warnings:#?}"
    );
    assert!(
        warnings[2]
            .starts_with("line 7, column 3: element `<agentState>` in namespace `urn:other`"),
        "{warnings:#?}"
    );
}

#[test]
fn cdata_entities_and_character_references_make_up_the_text() {
    let xml = format!(
        "<agentStates xmlns=\"{NAMESPACE}\">
  <agentState ID=\"A\" availability=\"6001\">
    <activity LCID=\"1033\">  Tom &amp; Jerry &lt;busy&gt; &quot;really&quot; &apos;yes&apos;  </activity>
    <activity LCID=\"1036\">Ne pas d&#233;ranger &#x263A;</activity>
    <activity LCID=\"3082\"><![CDATA[  <b>Ocupado</b> & ]]>m&#225;s<![CDATA[ ]]]]><![CDATA[> fin ]]>  </activity>
    <activity LCID=\"1049\">Работа<!-- a comment -->\r\n с клиентом<?pi ignored?></activity>
  </agentState>
</agentStates>"
    );
    let parsed = AgentPresenceMap::parse(xml.as_bytes()).unwrap();
    assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
    let map = &parsed.map;
    assert_eq!(
        text_of(map, "A", 1033),
        "Tom & Jerry <busy> \"really\" 'yes'"
    );
    assert_eq!(text_of(map, "A", 1036), "Ne pas déranger ☺");
    assert_eq!(text_of(map, "A", 3082), "<b>Ocupado</b> & más ]]> fin");
    assert_eq!(text_of(map, "A", 1049), "Работа\n с клиентом");

    // And all of it survives writing.
    let again = AgentPresenceMap::parse(map.to_xml().as_bytes()).unwrap();
    assert_eq!(&again.map, map);
}

#[test]
fn empty_activity_texts_and_states_without_activities_are_allowed() {
    let xml = format!(
        r#"<agentStates xmlns="{NAMESPACE}">
  <agentState ID="A" availability="0"><activity LCID="1033"/><activity LCID="3082">   </activity></agentState>
  <agentState ID="B" availability="18000"></agentState>
  <agentState ID="C" availability=" 42 "/>
</agentStates>"#
    );
    let parsed = AgentPresenceMap::parse(xml.as_bytes()).unwrap();
    assert!(parsed.warnings.is_empty());
    assert_eq!(text_of(&parsed.map, "A", 1033), "");
    assert_eq!(text_of(&parsed.map, "A", 3082), "");
    assert!(parsed.map.get("B").unwrap().presence.activities.is_empty());
    assert_eq!(parsed.map.get("C").unwrap().presence.availability.get(), 42);
    let empty = AgentPresenceMap::parse(format!("<agentStates xmlns=\"{NAMESPACE}\"/>").as_bytes())
        .unwrap();
    assert!(empty.map.is_empty());
}

#[test]
fn unknown_attributes_and_elements_are_warnings_with_locations() {
    let xml = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<!-- comments and processing instructions are ignored -->
<?editor hint?>
<agentStates xmlns="{NAMESPACE}" version="2" xmlns:x="urn:x" x:note="n">
  <agentState ID="A" availability="3500" colour="green">
    <activity LCID="1033" lang="en">Free</activity>
    <note>anything <b>at all</b> &amp; more</note>
    stray text
  </agentState>
  <future><agentState ID="HIDDEN" availability="1"/></future>
  <activity LCID="1033">misplaced</activity>
</agentStates>
<!-- trailing comment -->
"#
    );
    let parsed = AgentPresenceMap::parse(xml.as_bytes()).unwrap();
    assert_eq!(parsed.map.len(), 1);
    assert!(parsed.map.get("HIDDEN").is_none());
    assert_eq!(text_of(&parsed.map, "A", 1033), "Free");
    let got: Vec<(Location, &str)> = parsed
        .warnings
        .iter()
        .map(|w| (w.location, w.message.as_str()))
        .collect();
    let expected: Vec<(Location, &str)> = vec![
        (
            Location::new(4, 82),
            "unknown attribute `version` on `<agentStates>`: ignored",
        ),
        (
            Location::new(4, 110),
            "unknown attribute `x:note` (namespace `urn:x`) on `<agentStates>`: ignored",
        ),
        (
            Location::new(5, 42),
            "unknown attribute `colour` on `<agentState>`: ignored",
        ),
        (
            Location::new(6, 27),
            "unknown attribute `lang` on `<activity>`: ignored",
        ),
        (
            Location::new(7, 5),
            "element `<note>` is not part of the map inside `<agentState>`: ignored with its content",
        ),
        (
            Location::new(8, 5),
            "text `stray text` directly inside `<agentState>` is not part of the map (only `<activity>` has text): ignored",
        ),
        (
            Location::new(10, 3),
            "element `<future>` is not part of the map inside `<agentStates>`: ignored with its content",
        ),
        (
            Location::new(11, 3),
            "element `<activity>` is not part of the map inside `<agentStates>`: ignored with its content",
        ),
    ];
    assert_eq!(got, expected);
    assert_eq!(
        parsed.warnings[0].to_string(),
        "line 4, column 82: unknown attribute `version` on `<agentStates>`: ignored"
    );
}

#[test]
fn columns_count_characters_not_bytes() {
    let xml = format!(
        "<agentStates xmlns=\"{NAMESPACE}\"><agentState ID=\"A\" availability=\"1\"><activity LCID=\"1049\">Работа</activity><x/></agentState></agentStates>"
    );
    let parsed = AgentPresenceMap::parse(xml.as_bytes()).unwrap();
    let column = xml[..xml.find("<x/>").unwrap()].chars().count() as u32 + 1;
    assert_eq!(parsed.warnings[0].location, Location::new(1, column));
    assert_ne!(column as usize, xml.find("<x/>").unwrap() + 1);
}

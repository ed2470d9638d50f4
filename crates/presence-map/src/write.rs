//! The canonical writer.

use std::fmt::Write as _;

use crate::{AgentPresenceMap, NAMESPACE};

impl AgentPresenceMap {
    /// The map as canonical XML: UTF-8, an XML declaration, the root with the default
    /// namespace, two-space indentation, one line per element, a final line feed.
    ///
    /// Each state is written with `ID` and `availability`; a state without activities is an
    /// empty element (`<agentState ID="OOS" availability="18000"/>`). Each activity is
    /// written with `LCID` and its text. Texts escape `&`, `<`, `>` and carriage returns
    /// (`&#13;`, which a parser would otherwise turn into a line feed); attribute values
    /// also escape `"`, `'`, tabs and line breaks. The output depends only on the entries
    /// and their order, so `AgentPresenceMap::parse(map.to_xml().as_bytes())` gives back an
    /// equal map.
    ///
    /// ```
    /// use presence_map::AgentPresenceMap;
    /// let xml = r#"<agentStates xmlns="http://schemas.genesys.com/09/2014/mslyncserver/agentStates">
    ///   <agentState ID="INCALL" availability="7001"><activity LCID="1033"> Busy &amp; working </activity></agentState>
    /// </agentStates>"#;
    /// let map = AgentPresenceMap::parse(xml.as_bytes())?.map;
    /// assert_eq!(map.to_xml(), "\
    /// <?xml version=\"1.0\" encoding=\"UTF-8\"?>
    /// <agentStates xmlns=\"http://schemas.genesys.com/09/2014/mslyncserver/agentStates\">
    ///   <agentState ID=\"INCALL\" availability=\"7001\">
    ///     <activity LCID=\"1033\">Busy &amp; working</activity>
    ///   </agentState>
    /// </agentStates>
    /// ");
    /// assert_eq!(AgentPresenceMap::parse(map.to_xml().as_bytes())?.map, map);
    /// # Ok::<(), presence_map::MapError>(())
    /// ```
    pub fn to_xml(&self) -> String {
        let estimate = 128
            + self
                .entries()
                .iter()
                .map(|e| {
                    64 + e.id.as_str().len()
                        + e.presence
                            .activities
                            .iter()
                            .map(|(_, t)| 40 + t.as_str().len())
                            .sum::<usize>()
                })
                .sum::<usize>();
        let mut out = String::with_capacity(estimate);
        out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        out.push_str("<agentStates xmlns=\"");
        escape_attribute(&mut out, NAMESPACE);
        if self.is_empty() {
            out.push_str("\"/>\n");
            return out;
        }
        out.push_str("\">\n");
        for entry in self.entries() {
            out.push_str("  <agentState ID=\"");
            escape_attribute(&mut out, entry.id.as_str());
            // Writing to a String cannot fail.
            let _ = write!(
                out,
                "\" availability=\"{}\"",
                entry.presence.availability.get()
            );
            if entry.presence.activities.is_empty() {
                out.push_str("/>\n");
                continue;
            }
            out.push_str(">\n");
            for (lcid, text) in entry.presence.activities.iter() {
                let _ = write!(out, "    <activity LCID=\"{}\">", lcid.get());
                escape_text(&mut out, text.as_str());
                out.push_str("</activity>\n");
            }
            out.push_str("  </agentState>\n");
        }
        out.push_str("</agentStates>\n");
        out
    }
}

/// Appends `text` as element content.
fn escape_text(out: &mut String, text: &str) {
    escape(out, text, |c| match c {
        '&' => Some("&amp;"),
        '<' => Some("&lt;"),
        '>' => Some("&gt;"),
        '\r' => Some("&#13;"),
        _ => None,
    });
}

/// Appends `text` as a double-quoted attribute value.
fn escape_attribute(out: &mut String, text: &str) {
    escape(out, text, |c| match c {
        '&' => Some("&amp;"),
        '<' => Some("&lt;"),
        '>' => Some("&gt;"),
        '"' => Some("&quot;"),
        '\'' => Some("&apos;"),
        '\t' => Some("&#9;"),
        '\n' => Some("&#10;"),
        '\r' => Some("&#13;"),
        _ => None,
    });
}

/// Copies `text` to `out`, replacing the characters `replace` names; unchanged runs are
/// copied in one piece.
fn escape(out: &mut String, text: &str, replace: impl Fn(char) -> Option<&'static str>) {
    let mut start = 0;
    for (i, c) in text.char_indices() {
        if let Some(with) = replace(c) {
            out.push_str(text.get(start..i).unwrap_or_default());
            out.push_str(with);
            start = i + c.len_utf8();
        }
    }
    out.push_str(text.get(start..).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        let mut s = String::new();
        escape_text(&mut s, "a<b>&\"'\r\n\tc é");
        assert_eq!(s, "a&lt;b&gt;&amp;\"'&#13;\n\tc é");
        let mut s = String::new();
        escape_attribute(&mut s, "a<b>&\"'\r\n\tc é");
        assert_eq!(s, "a&lt;b&gt;&amp;&quot;&apos;&#13;&#10;&#9;c é");
        let mut s = String::new();
        escape_text(&mut s, "");
        assert_eq!(s, "");
    }

    #[test]
    fn empty_map() {
        assert_eq!(
            AgentPresenceMap::default().to_xml(),
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<agentStates xmlns=\"{NAMESPACE}\"/>\n"
            )
        );
    }
}

//! JSON written as Go's `encoding/json` writes it, for the files skopeo marshals from Go
//! structs (`index.json`, `docker-archive`'s `manifest.json`, `repositories` and legacy layer
//! configs): no whitespace, struct fields in declaration order, map keys sorted, `<`, `>`, `&`,
//! U+2028 and U+2029 escaped as `\u003c`…, and a `json.RawMessage` compacted (and escaped) as
//! Go embeds it. These bytes decide digests and file contents that must match skopeo's.

/// An object being written: fields in the order they are added.
pub(crate) struct Obj {
    out: String,
    first: bool,
}

impl Obj {
    /// `{`.
    pub(crate) fn new() -> Self {
        Obj {
            out: String::from("{"),
            first: true,
        }
    }

    fn key(&mut self, key: &str) {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        string_into(&mut self.out, key);
        self.out.push(':');
    }

    /// A string field.
    pub(crate) fn str(mut self, key: &str, value: &str) -> Self {
        self.key(key);
        string_into(&mut self.out, value);
        self
    }

    /// A string field with `omitempty`.
    pub(crate) fn str_omitempty(self, key: &str, value: &str) -> Self {
        if value.is_empty() {
            self
        } else {
            self.str(key, value)
        }
    }

    /// An integer field.
    pub(crate) fn int(mut self, key: &str, value: i64) -> Self {
        self.key(key);
        self.out.push_str(&value.to_string());
        self
    }

    /// A field whose value is already JSON (written by these helpers).
    pub(crate) fn raw(mut self, key: &str, json: &str) -> Self {
        self.key(key);
        self.out.push_str(json);
        self
    }

    /// A `[]string` field with `omitempty`.
    pub(crate) fn strings_omitempty(self, key: &str, values: &[String]) -> Self {
        if values.is_empty() {
            return self;
        }
        let list = strings(values);
        self.raw(key, &list)
    }

    /// A `map[string]string` field with `omitempty` (keys sorted, as Go sorts them).
    pub(crate) fn map_omitempty(
        self,
        key: &str,
        map: &std::collections::BTreeMap<String, String>,
    ) -> Self {
        if map.is_empty() {
            return self;
        }
        let mut m = Obj::new();
        for (k, v) in map {
            m = m.str(k, v);
        }
        let m = m.end();
        self.raw(key, &m)
    }

    /// `}`.
    pub(crate) fn end(mut self) -> String {
        self.out.push('}');
        self.out
    }
}

/// A JSON array of strings (`[]` when empty: a non-nil slice).
pub(crate) fn strings(values: &[String]) -> String {
    let mut out = String::from("[");
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        string_into(&mut out, v);
    }
    out.push(']');
    out
}

/// A JSON array of already-written values.
pub(crate) fn array(values: &[String]) -> String {
    format!("[{}]", values.join(","))
}

/// A JSON string as Go writes it (HTML characters escaped).
pub(crate) fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    string_into(&mut out, s);
    out
}

fn string_into(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A `json.RawMessage` as `json.Marshal` embeds it: whitespace outside strings removed, and
/// `<`, `>`, `&`, U+2028, U+2029 escaped. `raw` must be valid JSON (the caller parsed it).
pub(crate) fn compact_raw(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let mut out = String::with_capacity(text.len());
    let mut in_string = false;
    let mut escaped = false;
    for c in text.chars() {
        if in_string {
            if escaped {
                escaped = false;
                out.push(c);
                continue;
            }
            match c {
                '\\' => {
                    escaped = true;
                    out.push(c);
                }
                '"' => {
                    in_string = false;
                    out.push(c);
                }
                '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                    out.push_str(&format!("\\u{:04x}", c as u32));
                }
                c => out.push(c),
            }
        } else {
            match c {
                ' ' | '\t' | '\n' | '\r' => {}
                '"' => {
                    in_string = true;
                    out.push(c);
                }
                c => out.push(c),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_as_go_marshals() {
        let mut m = std::collections::BTreeMap::new();
        m.insert("b".to_string(), "x".to_string());
        m.insert("a".to_string(), "<&>".to_string());
        let j = Obj::new()
            .int("schemaVersion", 2)
            .str_omitempty("mediaType", "")
            .str("s", "q\"\\\n\u{1}\u{2028}")
            .map_omitempty("annotations", &m)
            .strings_omitempty("urls", &[])
            .end();
        assert_eq!(
            j,
            r#"{"schemaVersion":2,"s":"q\"\\\n\u0001\u2028","annotations":{"a":"\u003c\u0026\u003e","b":"x"}}"#
        );
        assert_eq!(strings(&[]), "[]");
    }

    #[test]
    fn compacts_raw_messages() {
        assert_eq!(
            compact_raw(b"{ \"a\" : [1, 2],\n \"s\": \"x y\\\" <z>\" }"),
            r#"{"a":[1,2],"s":"x y\" \u003cz\u003e"}"#
        );
    }
}

//! Values as skopeo's Go code holds them, so that ferry prints them as Go does.
//!
//! skopeo prints `inspect` with `json.MarshalIndent(v, "", "    ")` and `--format` through Go's
//! `text/template`. Both depend on Go types: struct fields keep their declaration order,
//! `omitempty` drops empty values, a nil slice or map is `null` in JSON but `[]`/`map[]` when
//! printed, a nil pointer prints `<nil>`, and `time.Time` is RFC 3339 with nanoseconds in JSON
//! but `2006-01-02 15:04:05.999999999 -0700 MST` when printed. [`GoValue`] keeps that
//! information; [`GoValue::to_json_indent`], [`GoValue::to_json_compact`] and
//! [`GoValue::fmt_print`] render it byte for byte as Go does.

use std::collections::BTreeMap;

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

/// Why a time is not RFC 3339 as Go's `time.Time.UnmarshalJSON` reads it (Go's words).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    /// Not of the form `2006-01-02T15:04:05Z07:00`.
    #[error("parsing time {0:?} as \"2006-01-02T15:04:05Z07:00\": cannot parse")]
    Syntax(String),
    /// Well-formed, but a field is out of range.
    #[error("parsing time {input:?}: {field} out of range")]
    OutOfRange {
        /// The text.
        input: String,
        /// Which field: `day or month`, `hour, minute or second`, `time zone offset`.
        field: &'static str,
    },
}

/// A time as Go's `time.Time` holds one parsed from RFC 3339: the wall-clock fields and the
/// offset they were written with (Go keeps both; it does not convert to UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GoTime {
    year: i32,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    nanos: u32,
    /// Offset east of UTC, in seconds.
    offset: i32,
}

impl GoTime {
    /// Go's zero `time.Time` (`0001-01-01T00:00:00Z`).
    pub const ZERO: GoTime = GoTime {
        year: 1,
        month: 1,
        day: 1,
        hour: 0,
        minute: 0,
        second: 0,
        nanos: 0,
        offset: 0,
    };

    /// Parse RFC 3339 as Go's `time.Time.UnmarshalJSON` does: `2006-01-02T15:04:05Z07:00`, any
    /// number of fractional-second digits (kept to nanoseconds).
    pub fn parse_rfc3339(s: &str) -> Result<GoTime, TimeError> {
        let bad = || TimeError::Syntax(s.to_string());
        let range = |field| TimeError::OutOfRange {
            input: s.to_string(),
            field,
        };
        let b = s.as_bytes();
        let num = |from: usize, len: usize| -> Result<u32, TimeError> {
            let part = b.get(from..from + len).ok_or_else(bad)?;
            if !part.iter().all(u8::is_ascii_digit) {
                return Err(bad());
            }
            Ok(part.iter().fold(0u32, |n, d| n * 10 + u32::from(d - b'0')))
        };
        let sep = |at: usize, c: u8| -> Result<(), TimeError> {
            if b.get(at) == Some(&c) {
                Ok(())
            } else {
                Err(bad())
            }
        };
        let year = num(0, 4)? as i32;
        sep(4, b'-')?;
        let month = num(5, 2)?;
        sep(7, b'-')?;
        let day = num(8, 2)?;
        sep(10, b'T')?;
        let hour = num(11, 2)?;
        sep(13, b':')?;
        let minute = num(14, 2)?;
        sep(16, b':')?;
        let second = num(17, 2)?;
        let mut i = 19;
        let mut nanos = 0u32;
        if b.get(i) == Some(&b'.') || b.get(i) == Some(&b',') {
            i += 1;
            let start = i;
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            if i == start {
                return Err(bad());
            }
            let digits = &s[start..i];
            let mut padded: String = digits.chars().take(9).collect();
            while padded.len() < 9 {
                padded.push('0');
            }
            nanos = padded.parse().map_err(|_| bad())?;
        }
        let offset = match b.get(i) {
            Some(b'Z') if i + 1 == b.len() => 0,
            Some(sign @ (b'+' | b'-')) if i + 6 == b.len() => {
                let h = num(i + 1, 2)?;
                sep(i + 3, b':')?;
                let m = num(i + 4, 2)?;
                if h > 23 || m > 59 {
                    return Err(range("time zone offset"));
                }
                let o = (h * 3600 + m * 60) as i32;
                if *sign == b'-' { -o } else { o }
            }
            _ => return Err(bad()),
        };
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
        let days_in_month = match month {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 if leap => 29,
            2 => 28,
            _ => 0,
        };
        if !(1..=12).contains(&month) || day == 0 || day > days_in_month {
            return Err(range("day or month"));
        }
        if hour > 23 || minute > 59 || second > 59 {
            return Err(range("hour, minute or second"));
        }
        Ok(GoTime {
            year,
            month,
            day,
            hour,
            minute,
            second,
            nanos,
            offset,
        })
    }

    fn fraction(&self) -> String {
        if self.nanos == 0 {
            return String::new();
        }
        let f = format!(".{:09}", self.nanos);
        f.trim_end_matches('0').to_string()
    }

    fn date_time(&self, t: char) -> String {
        format!(
            "{:04}-{:02}-{:02}{t}{:02}:{:02}:{:02}{}",
            self.year,
            self.month,
            self.day,
            self.hour,
            self.minute,
            self.second,
            self.fraction()
        )
    }

    fn offset_parts(&self) -> (char, i32, i32) {
        let sign = if self.offset < 0 { '-' } else { '+' };
        let o = self.offset.abs();
        (sign, o / 3600, (o % 3600) / 60)
    }

    /// `time.RFC3339Nano`, as `MarshalJSON` writes it: trailing zeros of the fraction
    /// dropped, `Z` for a zero offset.
    pub fn rfc3339_nano(&self) -> String {
        if self.offset == 0 {
            return format!("{}Z", self.date_time('T'));
        }
        let (sign, h, m) = self.offset_parts();
        format!("{}{sign}{h:02}:{m:02}", self.date_time('T'))
    }

    /// `time.Time.String()`: `2006-01-02 15:04:05.999999999 -0700 MST`. A zero offset is UTC
    /// (as for any time parsed with `Z`, or with `+00:00` where the local zone is UTC); any
    /// other offset has no zone name, and Go prints the offset in its place.
    pub fn go_string(&self) -> String {
        let (sign, h, m) = self.offset_parts();
        let zone = if self.offset == 0 {
            "UTC".to_string()
        } else {
            format!("{sign}{h:02}{m:02}")
        };
        format!("{} {sign}{h:02}{m:02} {zone}", self.date_time(' '))
    }
}

/// One field of a Go struct: its Go name (for templates), its JSON name, whether it is
/// `omitempty`, and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// The Go field name (`RepoTags`), used by templates.
    pub go: &'static str,
    /// The JSON key.
    pub json: &'static str,
    /// `json:",omitempty"`.
    pub omitempty: bool,
    /// The value.
    pub value: GoValue,
}

impl Field {
    /// A field without `omitempty`.
    pub fn new(go: &'static str, json: &'static str, value: GoValue) -> Self {
        Field {
            go,
            json,
            omitempty: false,
            value,
        }
    }

    /// A field with `omitempty`.
    pub fn omitempty(go: &'static str, json: &'static str, value: GoValue) -> Self {
        Field {
            go,
            json,
            omitempty: true,
            value,
        }
    }
}

/// A Go value, as far as skopeo's output types need.
#[derive(Debug, Clone, PartialEq)]
pub enum GoValue {
    /// A nil pointer (`*time.Time`): JSON `null`, printed `<nil>`.
    Nil,
    /// A string.
    Str(String),
    /// An integer.
    Int(i64),
    /// A boolean.
    Bool(bool),
    /// A `time.Time` (or a non-nil `*time.Time`).
    Time(GoTime),
    /// A slice; `None` is a nil slice (JSON `null`, printed `[]`).
    List(Option<Vec<GoValue>>),
    /// A map with string keys (Go sorts them); `None` is a nil map (JSON `null`, printed
    /// `map[]`).
    Map(Option<BTreeMap<String, GoValue>>),
    /// A struct, fields in declaration order.
    Struct(Vec<Field>),
}

impl GoValue {
    /// A string slice.
    pub fn strings(v: Option<Vec<String>>) -> GoValue {
        GoValue::List(v.map(|v| v.into_iter().map(GoValue::Str).collect()))
    }

    /// A `map[string]string`.
    pub fn string_map(v: Option<BTreeMap<String, String>>) -> GoValue {
        GoValue::Map(v.map(|m| m.into_iter().map(|(k, v)| (k, GoValue::Str(v))).collect()))
    }

    /// Whether `omitempty` drops this value (Go: false, 0, "", nil, empty slice or map).
    pub fn is_empty_value(&self) -> bool {
        match self {
            GoValue::Nil => true,
            GoValue::Str(s) => s.is_empty(),
            GoValue::Int(i) => *i == 0,
            GoValue::Bool(b) => !b,
            GoValue::Time(_) | GoValue::Struct(_) => false,
            GoValue::List(l) => l.as_ref().is_none_or(Vec::is_empty),
            GoValue::Map(m) => m.as_ref().is_none_or(BTreeMap::is_empty),
        }
    }

    /// Truth as Go templates see it (`if`): the same as "not empty", structs always true.
    pub fn truthy(&self) -> bool {
        !self.is_empty_value()
    }

    /// A struct field by Go name, or a map entry by key (a missing key is `""`, the zero value
    /// of `map[string]string`).
    pub fn field(&self, name: &str) -> Option<GoValue> {
        match self {
            GoValue::Struct(fields) => fields
                .iter()
                .find(|f| f.go == name)
                .map(|f| f.value.clone()),
            GoValue::Map(m) => Some(
                m.as_ref()
                    .and_then(|m| m.get(name).cloned())
                    .unwrap_or(GoValue::Str(String::new())),
            ),
            _ => None,
        }
    }

    /// A short Go-like type name, for messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            GoValue::Nil => "nil pointer",
            GoValue::Str(_) => "string",
            GoValue::Int(_) => "int64",
            GoValue::Bool(_) => "bool",
            GoValue::Time(_) => "time.Time",
            GoValue::List(_) => "slice",
            GoValue::Map(_) => "map",
            GoValue::Struct(_) => "struct",
        }
    }

    /// `json.MarshalIndent(v, "", "    ")` (HTML characters escaped, as Go's default).
    pub fn to_json_indent(&self) -> String {
        self.render(true, true)
    }

    /// `json.Marshal` through an encoder with `SetEscapeHTML(false)`, as the `json` template
    /// function of containers/common does.
    pub fn to_json_compact(&self) -> String {
        self.render(false, false)
    }

    fn render(&self, pretty: bool, escape_html: bool) -> String {
        let mut out = Vec::new();
        if pretty {
            let f = GoFormatter {
                inner: serde_json::ser::PrettyFormatter::with_indent(b"    "),
                escape_html,
            };
            let mut ser = serde_json::Serializer::with_formatter(&mut out, f);
            self.serialize(&mut ser).expect("serialising to memory");
        } else {
            let f = GoFormatter {
                inner: serde_json::ser::CompactFormatter,
                escape_html,
            };
            let mut ser = serde_json::Serializer::with_formatter(&mut out, f);
            self.serialize(&mut ser).expect("serialising to memory");
        }
        String::from_utf8(out).expect("JSON is UTF-8")
    }

    /// How `fmt.Print` (and so a template action) shows the value.
    pub fn fmt_print(&self) -> String {
        let mut s = String::new();
        self.fmt_into(&mut s, true);
        s
    }

    fn fmt_into(&self, out: &mut String, top: bool) {
        match self {
            GoValue::Nil => out.push_str("<nil>"),
            GoValue::Str(s) => out.push_str(s),
            GoValue::Int(i) => out.push_str(&i.to_string()),
            GoValue::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            GoValue::Time(t) => out.push_str(&t.go_string()),
            GoValue::List(l) => {
                out.push('[');
                for (i, v) in l.iter().flatten().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    v.fmt_into(out, false);
                }
                out.push(']');
            }
            GoValue::Map(m) => {
                out.push_str("map[");
                for (i, (k, v)) in m.iter().flatten().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    out.push_str(k);
                    out.push(':');
                    v.fmt_into(out, false);
                }
                out.push(']');
            }
            GoValue::Struct(fields) => {
                // A pointer to a struct prints with `&` at the top level only; skopeo's values
                // are structs, so none has it.
                let _ = top;
                out.push('{');
                for (i, f) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    f.value.fmt_into(out, false);
                }
                out.push('}');
            }
        }
    }
}

impl Serialize for GoValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            GoValue::Nil | GoValue::List(None) | GoValue::Map(None) => s.serialize_unit(),
            GoValue::Str(v) => s.serialize_str(v),
            GoValue::Int(v) => s.serialize_i64(*v),
            GoValue::Bool(v) => s.serialize_bool(*v),
            GoValue::Time(t) => s.serialize_str(&t.rfc3339_nano()),
            GoValue::List(Some(items)) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for i in items {
                    seq.serialize_element(i)?;
                }
                seq.end()
            }
            GoValue::Map(Some(m)) => {
                let mut map = s.serialize_map(Some(m.len()))?;
                for (k, v) in m {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
            GoValue::Struct(fields) => {
                let shown: Vec<&Field> = fields
                    .iter()
                    .filter(|f| !(f.omitempty && f.value.is_empty_value()))
                    .collect();
                let mut map = s.serialize_map(Some(shown.len()))?;
                for f in shown {
                    map.serialize_entry(f.json, &f.value)?;
                }
                map.end()
            }
        }
    }
}

/// A serde_json formatter that escapes strings as Go's `encoding/json` does: `<`, `>`, `&` as
/// `\u003c`… (unless HTML escaping is off) and U+2028/U+2029 always.
struct GoFormatter<F> {
    inner: F,
    escape_html: bool,
}

macro_rules! delegate {
    ($($name:ident($($arg:ident: $ty:ty),*);)*) => {
        $(
            fn $name<W: ?Sized + std::io::Write>(&mut self, w: &mut W $(, $arg: $ty)*) -> std::io::Result<()> {
                self.inner.$name(w $(, $arg)*)
            }
        )*
    };
}

impl<F: serde_json::ser::Formatter> serde_json::ser::Formatter for GoFormatter<F> {
    delegate! {
        begin_array();
        end_array();
        begin_array_value(first: bool);
        end_array_value();
        begin_object();
        end_object();
        begin_object_key(first: bool);
        end_object_key();
        begin_object_value();
        end_object_value();
    }

    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            let esc = match c {
                '<' | '>' | '&' if self.escape_html => true,
                '\u{2028}' | '\u{2029}' => true,
                _ => false,
            };
            if esc {
                w.write_all(&fragment.as_bytes()[start..i])?;
                write!(w, "\\u{:04x}", c as u32)?;
                start = i + c.len_utf8();
            }
        }
        w.write_all(&fragment.as_bytes()[start..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_as_go_prints_them() {
        let t = GoTime::parse_rfc3339("2024-01-02T03:04:05.123450000+02:00").unwrap();
        assert_eq!(t.rfc3339_nano(), "2024-01-02T03:04:05.12345+02:00");
        assert_eq!(t.go_string(), "2024-01-02 03:04:05.12345 +0200 +0200");
        let t = GoTime::parse_rfc3339("2024-01-02T03:04:05Z").unwrap();
        assert_eq!(t.rfc3339_nano(), "2024-01-02T03:04:05Z");
        assert_eq!(t.go_string(), "2024-01-02 03:04:05 +0000 UTC");
        let t = GoTime::parse_rfc3339("2024-01-02T03:04:05.1234567891-05:30").unwrap();
        assert_eq!(t.rfc3339_nano(), "2024-01-02T03:04:05.123456789-05:30");
        assert_eq!(
            GoTime::parse_rfc3339("2024-01-02T03:04:05+00:00")
                .unwrap()
                .rfc3339_nano(),
            "2024-01-02T03:04:05Z"
        );
        assert_eq!(GoTime::ZERO.rfc3339_nano(), "0001-01-01T00:00:00Z");
        for bad in [
            "",
            "2024-01-02",
            "2024-13-02T03:04:05Z",
            "2023-02-29T03:04:05Z",
            "2024-01-02T03:04:05",
            "2024-01-02T03:04:05.Z",
            "2024-01-02 03:04:05Z",
            "2024-01-02T03:04:05+0200",
            "2024-01-02T24:04:05Z",
        ] {
            assert!(GoTime::parse_rfc3339(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn json_as_go_marshals_it() {
        let v = GoValue::Struct(vec![
            Field::omitempty("Name", "Name", GoValue::Str(String::new())),
            Field::new("Digest", "Digest", GoValue::Str("a<b>&c\u{2028}".into())),
            Field::new("Tags", "Tags", GoValue::List(Some(vec![]))),
            Field::new("Nil", "Nil", GoValue::List(None)),
            Field::new(
                "Labels",
                "Labels",
                GoValue::string_map(Some(BTreeMap::from([
                    ("b".to_string(), "2".to_string()),
                    ("a".to_string(), "\n\u{1}".to_string()),
                ]))),
            ),
            Field::new("Empty", "Empty", GoValue::Struct(vec![])),
        ]);
        assert_eq!(
            v.to_json_indent(),
            "{\n    \"Digest\": \"a\\u003cb\\u003e\\u0026c\\u2028\",\n    \"Tags\": [],\n    \"Nil\": null,\n    \"Labels\": {\n        \"a\": \"\\n\\u0001\",\n        \"b\": \"2\"\n    },\n    \"Empty\": {}\n}"
        );
        assert_eq!(
            v.to_json_compact(),
            r#"{"Digest":"a<b>&c\u2028","Tags":[],"Nil":null,"Labels":{"a":"\n\u0001","b":"2"},"Empty":{}}"#
        );
    }

    #[test]
    fn printed_as_fmt_prints_it() {
        assert_eq!(
            GoValue::strings(Some(vec!["a".into(), "b c".into()])).fmt_print(),
            "[a b c]"
        );
        assert_eq!(GoValue::strings(None).fmt_print(), "[]");
        assert_eq!(GoValue::string_map(None).fmt_print(), "map[]");
        assert_eq!(
            GoValue::string_map(Some(BTreeMap::from([
                ("z".to_string(), "1".to_string()),
                ("a".to_string(), "x y".to_string())
            ])))
            .fmt_print(),
            "map[a:x y z:1]"
        );
        assert_eq!(GoValue::Nil.fmt_print(), "<nil>");
        let s = GoValue::Struct(vec![
            Field::new("A", "a", GoValue::Str("x".into())),
            Field::new("B", "b", GoValue::Int(-1)),
            Field::new("C", "c", GoValue::Map(None)),
        ]);
        assert_eq!(s.fmt_print(), "{x -1 map[]}");
    }
}

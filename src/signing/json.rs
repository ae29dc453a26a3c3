//! JSON as containers/image reads and writes it for signatures and policies.
//!
//! Reading is "paranoid" (containers/image `ParanoidUnmarshalJSONObject`): a duplicated key
//! anywhere, an unknown key where the fields are fixed, a missing required key or a wrong type
//! is an error, so that two parsers can never see two different documents in the same bytes.
//! Writing follows Go's `encoding/json`: object keys sorted, no spaces, and `<`, `>`, `&`
//! escaped as `\u003c`, `\u003e`, `\u0026`, so that payloads ferry signs are byte for byte
//! what skopeo would produce for the same content.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use super::error::SigningError;

/// A JSON value whose objects keep their keys in document order and never repeat one.
#[derive(Debug, Clone, PartialEq)]
pub enum Strict {
    /// `null`
    Null,
    /// `true` / `false`
    Bool(bool),
    /// Any number, as Go decodes it into `float64` (integers are kept exactly when they fit).
    Number(serde_json::Number),
    /// A string.
    String(String),
    /// An array.
    Array(Vec<Strict>),
    /// An object, keys unique.
    Object(Vec<(String, Strict)>),
}

impl Strict {
    /// Parse bytes; the whole input must be one JSON value.
    pub fn parse(bytes: &[u8]) -> Result<Strict, SigningError> {
        serde_json::from_slice(bytes).map_err(|e| SigningError::malformed(e.to_string()))
    }

    /// A short name of the value's type, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Strict::Null => "null",
            Strict::Bool(_) => "boolean",
            Strict::Number(_) => "number",
            Strict::String(_) => "string",
            Strict::Array(_) => "array",
            Strict::Object(_) => "object",
        }
    }

    /// The object's fields, or an error naming `what`.
    pub fn object(&self, what: &str) -> Result<&[(String, Strict)], SigningError> {
        match self {
            Strict::Object(f) => Ok(f),
            other => Err(SigningError::malformed(format!(
                "{what}: JSON object expected, got {}",
                other.kind()
            ))),
        }
    }

    /// The string, or an error naming `what`.
    pub fn string(&self, what: &str) -> Result<&str, SigningError> {
        match self {
            Strict::String(s) => Ok(s),
            other => Err(SigningError::malformed(format!(
                "{what}: string expected, got {}",
                other.kind()
            ))),
        }
    }

    /// A list of strings, or an error naming `what`.
    pub fn strings(&self, what: &str) -> Result<Vec<String>, SigningError> {
        match self {
            Strict::Array(items) => items
                .iter()
                .map(|i| i.string(what).map(str::to_string))
                .collect(),
            other => Err(SigningError::malformed(format!(
                "{what}: array expected, got {}",
                other.kind()
            ))),
        }
    }

    /// An integer as Go reads it into an `int64` field (no fraction, in range).
    pub fn int64(&self, what: &str) -> Result<i64, SigningError> {
        match self {
            Strict::Number(n) => n.as_i64().ok_or_else(|| {
                SigningError::malformed(format!("{what}: integer expected, got {n}"))
            }),
            other => Err(SigningError::malformed(format!(
                "{what}: number expected, got {}",
                other.kind()
            ))),
        }
    }

    /// Go's `[]byte` field: a base64 (standard alphabet, padded) string.
    pub fn bytes(&self, what: &str) -> Result<Vec<u8>, SigningError> {
        use base64::Engine as _;
        let s = self.string(what)?;
        base64::engine::general_purpose::STANDARD
            .decode(s)
            .map_err(|e| SigningError::malformed(format!("{what}: invalid base64: {e}")))
    }
}

/// Check that an object has exactly these fields (each once, no other), and return their
/// values in the order of `names`.
pub fn exact_fields<'a, const N: usize>(
    fields: &'a [(String, Strict)],
    names: [&str; N],
    what: &str,
) -> Result<[&'a Strict; N], SigningError> {
    for (k, _) in fields {
        if !names.contains(&k.as_str()) {
            return Err(SigningError::malformed(format!(
                "{what}: unknown key {k:?}"
            )));
        }
    }
    let mut out = Vec::with_capacity(N);
    for n in names {
        match fields.iter().find(|(k, _)| k == n) {
            Some((_, v)) => out.push(v),
            None => {
                return Err(SigningError::malformed(format!(
                    "{what}: key {n:?} missing in a JSON object"
                )));
            }
        }
    }
    Ok(out.try_into().expect("N values"))
}

/// The value of `key`, if present.
pub fn field<'a>(fields: &'a [(String, Strict)], key: &str) -> Option<&'a Strict> {
    fields.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Strict;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<Strict, E> {
        Ok(Strict::Null)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Strict, E> {
        Ok(Strict::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Strict, E> {
        Ok(Strict::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Strict, E> {
        Ok(Strict::Number(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Strict, E> {
        // Go decodes into float64; an integral value is the integer (e.g. 1.7e9).
        if v.fract() == 0.0 && v.abs() < 9.007_199_254_740_992e15 {
            return Ok(Strict::Number((v as i64).into()));
        }
        serde_json::Number::from_f64(v)
            .map(Strict::Number)
            .ok_or_else(|| E::custom("number out of range"))
    }
    fn visit_str<E>(self, v: &str) -> Result<Strict, E> {
        Ok(Strict::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Strict, E> {
        Ok(Strict::String(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Strict, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element()? {
            out.push(v);
        }
        Ok(Strict::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Strict, A::Error> {
        let mut out: Vec<(String, Strict)> = Vec::new();
        while let Some(k) = map.next_key::<String>()? {
            if out.iter().any(|(seen, _)| *seen == k) {
                return Err(de::Error::custom(format!("duplicate key {k:?}")));
            }
            let v = map.next_value()?;
            out.push((k, v));
        }
        Ok(Strict::Object(out))
    }
}

/// Serialize as Go's `json.Marshal` does (sorted keys for maps, HTML characters escaped).
pub fn go_marshal<T: serde::Serialize>(value: &T) -> Vec<u8> {
    let v = serde_json::to_value(value).expect("serializable value");
    let mut out = String::new();
    write_sorted(&v, &mut out);
    // `<`, `>` and `&` can only occur inside strings in JSON text.
    out.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .into_bytes()
}

/// Compact JSON with every object's keys in byte order (whatever order `serde_json`'s map
/// keeps).
fn write_sorted(v: &serde_json::Value, out: &mut String) {
    use serde_json::Value;
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::to_string(k).expect("string"));
                out.push(':');
                write_sorted(&m[k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_sorted(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&serde_json::to_string(other).expect("scalar")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_are_refused_at_any_depth() {
        assert!(Strict::parse(br#"{"a":1,"a":2}"#).is_err());
        assert!(Strict::parse(br#"{"a":{"b":1,"b":1}}"#).is_err());
        assert!(Strict::parse(br#"[{"x":[{"y":1,"y":2}]}]"#).is_err());
        assert!(Strict::parse(br#"{"a":1} x"#).is_err());
        let v = Strict::parse(br#"{"b":1,"a":"x"}"#).unwrap();
        let f = v.object("t").unwrap();
        let [a, b] = exact_fields(f, ["a", "b"], "t").unwrap();
        assert_eq!(a.string("a").unwrap(), "x");
        assert_eq!(b.int64("b").unwrap(), 1);
        assert_eq!(
            exact_fields(f, ["a"], "t").unwrap_err(),
            SigningError::Malformed(r#"t: unknown key "b""#.into())
        );
        assert_eq!(
            exact_fields(f, ["a", "b", "c"], "t")
                .unwrap_err()
                .to_string(),
            r#"t: key "c" missing in a JSON object"#
        );
    }

    #[test]
    fn integers_as_go_reads_them() {
        assert_eq!(
            Strict::parse(b"1.7e9").unwrap().int64("t").unwrap(),
            1_700_000_000
        );
        assert!(Strict::parse(b"1.5").unwrap().int64("t").is_err());
    }

    #[test]
    fn marshal_like_go() {
        let v = serde_json::json!({"z": "<&>", "a": {"y": 1, "b": null}});
        assert_eq!(
            String::from_utf8(go_marshal(&v)).unwrap(),
            r#"{"a":{"b":null,"y":1},"z":"\u003c\u0026\u003e"}"#
        );
    }
}

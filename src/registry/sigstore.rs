//! Sigstore signatures as skopeo copies them (`use-sigstore-attachments: true` in
//! `registries.d`, invoked as `skopeo`): each layer of the `sha256-<hex>.sig` attachment of
//! the source is a signature (media type, payload, annotations); at the destination, the
//! attachment manifest is rebuilt the way containers/image rebuilds it — the existing one read
//! (with its config), each signature it lacks added as a layer (and a `diff_ids` entry), the
//! config and the manifest serialised as Go's `encoding/json` writes the image-spec types —
//! so that its digest is the one skopeo would produce. (Invoked as `ferry`, the attachment is
//! copied byte for byte instead: see [`crate::copy::referrers`].)
//!
//! [`crate::signing::sigstore::add_to_attachment`] builds the same attachment for signing;
//! this one writes it as Go does to the byte (HTML-safe escaping, times re-formatted, the
//! config's known fields only), which the copy tests check against skopeo 1.9.3 and 1.18.

use std::collections::BTreeMap;

use bytes::Bytes;
use reqwest::StatusCode;
use serde_json::Value;

use super::{Client, Scope};
use crate::error::{Error, Result};
use crate::manifest::{self, Manifest};
use crate::reference::Digest;
use crate::registry::referrers::cosign_tag;

/// The largest signature payload or config read (as containers/image).
const MAX_BLOB: usize = 4 << 20;

pub use crate::image::SigstoreSignature;

/// Go's `json.Marshal` of a string: `"`, `\`, control characters, `<`, `>`, `&`, U+2028 and
/// U+2029 escaped.
pub fn go_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A JSON object written field by field, in Go struct order.
struct Obj(Vec<String>);

impl Obj {
    fn new() -> Self {
        Obj(vec![])
    }
    fn raw(mut self, k: &str, v: String) -> Self {
        self.0.push(format!("{}:{v}", go_string(k)));
        self
    }
    fn str(self, k: &str, v: &str) -> Self {
        self.raw(k, go_string(v))
    }
    /// `omitempty` string.
    fn opt_str(self, k: &str, v: Option<&str>) -> Self {
        match v.filter(|s| !s.is_empty()) {
            Some(v) => self.str(k, v),
            None => self,
        }
    }
    fn done(self) -> String {
        format!("{{{}}}", self.0.join(","))
    }
}

fn str_of<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Value::as_str)
}

/// `map[string]string`, keys sorted; `None` when empty (omitempty).
fn string_map(v: Option<&Value>) -> Option<String> {
    let m = v?.as_object()?;
    if m.is_empty() {
        return None;
    }
    let sorted: BTreeMap<&String, &Value> = m.iter().collect();
    Some(format!(
        "{{{}}}",
        sorted
            .iter()
            .map(|(k, v)| format!("{}:{}", go_string(k), go_string(v.as_str().unwrap_or(""))))
            .collect::<Vec<_>>()
            .join(",")
    ))
}

/// `[]string`; `None` when empty (omitempty).
fn string_list(v: Option<&Value>) -> Option<String> {
    let a = v?.as_array()?;
    if a.is_empty() {
        return None;
    }
    Some(format!(
        "[{}]",
        a.iter()
            .map(|s| go_string(s.as_str().unwrap_or("")))
            .collect::<Vec<_>>()
            .join(",")
    ))
}

/// imgspecv1.Descriptor.
fn descriptor(d: &Value) -> String {
    let mut o = Obj::new()
        .str("mediaType", str_of(d, "mediaType").unwrap_or(""))
        .str("digest", str_of(d, "digest").unwrap_or(""))
        .raw(
            "size",
            d.get("size")
                .and_then(Value::as_i64)
                .unwrap_or(0)
                .to_string(),
        );
    if let Some(u) = string_list(d.get("urls")) {
        o = o.raw("urls", u);
    }
    if let Some(a) = string_map(d.get("annotations")) {
        o = o.raw("annotations", a);
    }
    o = o.opt_str("data", str_of(d, "data"));
    if let Some(p) = d.get("platform").filter(|p| p.is_object()) {
        let mut po = Obj::new()
            .str("architecture", str_of(p, "architecture").unwrap_or(""))
            .str("os", str_of(p, "os").unwrap_or(""))
            .opt_str("os.version", str_of(p, "os.version"));
        if let Some(f) = string_list(p.get("os.features")) {
            po = po.raw("os.features", f);
        }
        o = o.raw(
            "platform",
            po.opt_str("variant", str_of(p, "variant")).done(),
        );
    }
    o.opt_str("artifactType", str_of(d, "artifactType")).done()
}

/// manifest.OCI1 (imgspecv1.Manifest) as containers/image serialises it.
fn manifest_json(m: &Value) -> String {
    let layers = m
        .get("layers")
        .and_then(Value::as_array)
        .map(|l| {
            format!(
                "[{}]",
                l.iter().map(descriptor).collect::<Vec<_>>().join(",")
            )
        })
        .unwrap_or_else(|| "null".into());
    let mut o = Obj::new()
        .raw(
            "schemaVersion",
            m.get("schemaVersion")
                .and_then(Value::as_i64)
                .unwrap_or(2)
                .to_string(),
        )
        .opt_str("mediaType", str_of(m, "mediaType"))
        .opt_str("artifactType", str_of(m, "artifactType"))
        .raw(
            "config",
            descriptor(m.get("config").unwrap_or(&Value::Null)),
        )
        .raw("layers", layers);
    if let Some(s) = m.get("subject").filter(|s| s.is_object()) {
        o = o.raw("subject", descriptor(s));
    }
    if let Some(a) = string_map(m.get("annotations")) {
        o = o.raw("annotations", a);
    }
    o.done()
}

/// A time as Go's `time.Time` writes it back (RFC 3339, fraction without trailing zeros, a
/// zero offset as `Z`).
fn go_time(t: &str) -> String {
    let (main, zone) = match t.find(['Z', 'z']) {
        Some(i) => (&t[..i], "Z"),
        None => match t.rfind(['+', '-']).filter(|&i| i > 10) {
            Some(i) if &t[i + 1..] == "00:00" => (&t[..i], "Z"),
            Some(i) => (&t[..i], &t[i..]),
            None => (t, ""),
        },
    };
    let main = match main.split_once('.') {
        Some((secs, frac)) => {
            let frac = frac.trim_end_matches('0');
            if frac.is_empty() {
                secs.to_string()
            } else {
                format!("{secs}.{frac}")
            }
        }
        None => main.to_string(),
    };
    format!("{main}{zone}")
}

/// imgspecv1.Image as Go writes it (fields it does not know are dropped, as Go drops them).
fn config_json(c: &Value) -> String {
    let mut o = Obj::new();
    if let Some(t) = str_of(c, "created") {
        o = o.raw("created", go_string(&go_time(t)));
    }
    o = o
        .opt_str("author", str_of(c, "author"))
        .str("architecture", str_of(c, "architecture").unwrap_or(""))
        .str("os", str_of(c, "os").unwrap_or(""))
        .opt_str("os.version", str_of(c, "os.version"));
    if let Some(f) = string_list(c.get("os.features")) {
        o = o.raw("os.features", f);
    }
    o = o.opt_str("variant", str_of(c, "variant"));
    let cfg = c.get("config").cloned().unwrap_or(Value::Null);
    let set = |m: Option<&Value>| {
        let m = m?.as_object()?;
        if m.is_empty() {
            return None;
        }
        let keys: std::collections::BTreeSet<&String> = m.keys().collect();
        Some(format!(
            "{{{}}}",
            keys.iter()
                .map(|k| format!("{}:{{}}", go_string(k)))
                .collect::<Vec<_>>()
                .join(",")
        ))
    };
    let mut ic = Obj::new().opt_str("User", str_of(&cfg, "User"));
    if let Some(p) = set(cfg.get("ExposedPorts")) {
        ic = ic.raw("ExposedPorts", p);
    }
    for k in ["Env", "Entrypoint", "Cmd"] {
        if let Some(l) = string_list(cfg.get(k)) {
            ic = ic.raw(k, l);
        }
    }
    if let Some(v) = set(cfg.get("Volumes")) {
        ic = ic.raw("Volumes", v);
    }
    ic = ic.opt_str("WorkingDir", str_of(&cfg, "WorkingDir"));
    if let Some(l) = string_map(cfg.get("Labels")) {
        ic = ic.raw("Labels", l);
    }
    ic = ic.opt_str("StopSignal", str_of(&cfg, "StopSignal"));
    if cfg.get("ArgsEscaped").and_then(Value::as_bool) == Some(true) {
        ic = ic.raw("ArgsEscaped", "true".into());
    }
    o = o.raw("config", ic.done());
    let rootfs = c.get("rootfs").cloned().unwrap_or(Value::Null);
    let diff_ids = rootfs
        .get("diff_ids")
        .and_then(Value::as_array)
        .map(|a| {
            format!(
                "[{}]",
                a.iter()
                    .map(|d| go_string(d.as_str().unwrap_or("")))
                    .collect::<Vec<_>>()
                    .join(",")
            )
        })
        .unwrap_or_else(|| "null".into());
    o = o.raw(
        "rootfs",
        Obj::new()
            .str("type", str_of(&rootfs, "type").unwrap_or(""))
            .raw("diff_ids", diff_ids)
            .done(),
    );
    if let Some(h) = c
        .get("history")
        .and_then(Value::as_array)
        .filter(|h| !h.is_empty())
    {
        let entries: Vec<String> = h
            .iter()
            .map(|e| {
                let mut eo = Obj::new();
                if let Some(t) = str_of(e, "created") {
                    eo = eo.raw("created", go_string(&go_time(t)));
                }
                eo = eo
                    .opt_str("created_by", str_of(e, "created_by"))
                    .opt_str("author", str_of(e, "author"))
                    .opt_str("comment", str_of(e, "comment"));
                if e.get("empty_layer").and_then(Value::as_bool) == Some(true) {
                    eo = eo.raw("empty_layer", "true".into());
                }
                eo.done()
            })
            .collect();
        o = o.raw("history", format!("[{}]", entries.join(",")));
    }
    o.done()
}

fn invalid(client: &Client, repo: &str, what: String, reason: String) -> Error {
    Error::Invalid {
        what,
        location: client.location(repo),
        reason,
    }
}

impl Client {
    /// The cosign attachment `sha256-<hex>.<suffix>` of `digest` (`sig`, `att`), if any; it
    /// must be an OCI image manifest.
    pub async fn cosign_attachment(
        &self,
        repo: &str,
        digest: &Digest,
        suffix: &str,
    ) -> Result<Option<Manifest>> {
        let tag = cosign_tag(digest, suffix);
        let Some(m) = self.manifest_if_tagged(repo, &tag).await? else {
            return Ok(None);
        };
        if m.media_type != manifest::OCI_MANIFEST {
            return Err(invalid(
                self,
                repo,
                format!("sigstore attachment {tag}"),
                format!("unexpected media type {:?}", m.media_type),
            ));
        }
        Ok(Some(m))
    }

    /// A small blob (at most 4 MiB) whole, verified against its digest.
    pub async fn small_blob(&self, repo: &str, digest: &Digest, size: u64) -> Result<Bytes> {
        let loc = self.location(repo);
        let what = format!("blob {}", digest.short());
        if size > MAX_BLOB as u64 {
            return Err(invalid(self, repo, what, "it is larger than 4 MiB".into()));
        }
        let dl = self.get_blob(repo, digest, 0).await?;
        if !dl.response.status().is_success() && dl.response.status() != StatusCode::OK {
            return Err(super::status_error(dl.response, &format!("reading {what}"), &loc).await);
        }
        let bytes = crate::http::read_limited(dl.response, MAX_BLOB, self.stall_timeout())
            .await
            .map_err(|e| crate::http::network_error_msg(e, &format!("reading {what}"), &loc))?;
        if let Some(actual) = digest.verify(&bytes) {
            return Err(Error::DigestMismatch {
                what,
                location: loc,
                expected: digest.to_string(),
                actual: actual.to_string(),
            });
        }
        Ok(bytes)
    }

    /// The sigstore signatures of `digest` (the layers of its `.sig` attachment).
    pub async fn sigstore_signatures(
        &self,
        repo: &str,
        digest: &Digest,
    ) -> Result<Vec<SigstoreSignature>> {
        self.cosign_layers(repo, digest, "sig").await
    }

    /// The layers of the cosign attachment `sha256-<hex>.<suffix>` of `digest` (`.sig`:
    /// signatures; `.att`: attestations, DSSE envelopes), each with its media type, blob and
    /// annotations.
    pub async fn cosign_layers(
        &self,
        repo: &str,
        digest: &Digest,
        suffix: &str,
    ) -> Result<Vec<SigstoreSignature>> {
        let Some(m) = self.cosign_attachment(repo, digest, suffix).await? else {
            return Ok(vec![]);
        };
        let doc: Value = serde_json::from_slice(&m.bytes).unwrap_or(Value::Null);
        let mut out = vec![];
        for (i, layer) in doc
            .get("layers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let d = manifest::descriptor(layer, &format!("layers[{i}]")).map_err(|r| {
                invalid(
                    self,
                    repo,
                    format!("sigstore attachment of {}", digest.short()),
                    r.to_string(),
                )
            })?;
            let payload = self.small_blob(repo, &d.digest, d.size).await?;
            let annotations = layer
                .get("annotations")
                .and_then(Value::as_object)
                .map(|a| {
                    a.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                        .collect()
                })
                .unwrap_or_default();
            out.push(SigstoreSignature {
                mime_type: d.media_type,
                payload: payload.to_vec(),
                annotations,
            });
        }
        Ok(out)
    }

    /// Put a small blob unless the repository has it.
    pub async fn ensure_blob(&self, repo: &str, bytes: Bytes, scope: &Scope) -> Result<Digest> {
        let digest = Digest::sha256(&bytes);
        if self.head_blob(repo, &digest, scope).await?.is_none() {
            match self.start_upload(repo, None, scope).await? {
                super::blob::UploadStart::Session(u) => {
                    self.finish_upload(&u, &digest, Some(bytes), scope, repo)
                        .await?;
                }
                super::blob::UploadStart::Mounted => {}
            }
        }
        Ok(digest)
    }

    /// Add the signatures the `.sig` attachment of `digest` lacks, rebuilding it as
    /// containers/image does (see the module doc); the number added. containers/image writes
    /// the attachment again even when it lacks nothing (`rewrite_unchanged`, invoked as
    /// `skopeo`); otherwise an attachment that has every signature is left alone.
    pub async fn put_sigstore_signatures(
        &self,
        repo: &str,
        digest: &Digest,
        signatures: &[SigstoreSignature],
        scope: &Scope,
        rewrite_unchanged: bool,
    ) -> Result<u64> {
        self.put_cosign_layers(repo, digest, "sig", signatures, scope, rewrite_unchanged)
            .await
    }

    /// Add the layers the cosign attachment `sha256-<hex>.<suffix>` of `digest` lacks (as
    /// [`Client::put_sigstore_signatures`] for `.sig`; cosign keeps attestations the same way
    /// in `.att`); the number added. An attachment that lacks nothing is written again only
    /// with `rewrite_unchanged` (what containers/image does, invoked as `skopeo`).
    pub async fn put_cosign_layers(
        &self,
        repo: &str,
        digest: &Digest,
        suffix: &str,
        signatures: &[SigstoreSignature],
        scope: &Scope,
        rewrite_unchanged: bool,
    ) -> Result<u64> {
        let existing = self.cosign_attachment(repo, digest, suffix).await?;
        let existed = existing.is_some();
        let (mut doc, mut config) = match existing {
            Some(m) => {
                let doc: Value = serde_json::from_slice(&m.bytes).unwrap_or(Value::Null);
                let cd = doc
                    .get("config")
                    .map(|c| manifest::descriptor(c, "config"))
                    .transpose()
                    .map_err(|r| invalid(self, repo, "sigstore attachment".into(), r.to_string()))?
                    .ok_or_else(|| {
                        invalid(self, repo, "sigstore attachment".into(), "no config".into())
                    })?;
                let bytes = self.small_blob(repo, &cd.digest, cd.size).await?;
                let config: Value = serde_json::from_slice(&bytes).map_err(|e| {
                    invalid(
                        self,
                        repo,
                        format!("sigstore attachment config {}", cd.digest),
                        e.to_string(),
                    )
                })?;
                (doc, config)
            }
            None => (
                serde_json::json!({"schemaVersion": 2, "mediaType": manifest::OCI_MANIFEST,
                    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "", "size": 0},
                    "layers": null}),
                serde_json::json!({"rootfs": {"type": "layers", "diff_ids": null}}),
            ),
        };
        let mut layers: Vec<Value> = doc
            .get("layers")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut diff_ids: Vec<Value> = config
            .pointer("/rootfs/diff_ids")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut added = 0;
        for sig in signatures {
            let payload_digest = Digest::sha256(&sig.payload);
            let present = layers.iter().any(|l| {
                let ann: BTreeMap<String, String> = l
                    .get("annotations")
                    .and_then(Value::as_object)
                    .map(|a| {
                        a.iter()
                            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                            .collect()
                    })
                    .unwrap_or_default();
                str_of(l, "mediaType") == Some(sig.mime_type.as_str())
                    && l.get("size").and_then(Value::as_u64) == Some(sig.payload.len() as u64)
                    && str_of(l, "digest") == Some(payload_digest.as_str())
                    && ann == sig.annotations
            });
            if present {
                continue;
            }
            self.ensure_blob(repo, Bytes::from(sig.payload.clone()), scope)
                .await?;
            let mut layer = serde_json::json!({"mediaType": sig.mime_type, "digest": payload_digest.to_string(), "size": sig.payload.len()});
            if !sig.annotations.is_empty() {
                layer["annotations"] = serde_json::to_value(&sig.annotations).expect("JSON");
            }
            layers.push(layer);
            diff_ids.push(Value::String(payload_digest.to_string()));
            added += 1;
        }
        if added == 0 && existed && !rewrite_unchanged {
            return Ok(0);
        }
        if let Some(r) = config.get_mut("rootfs").and_then(Value::as_object_mut) {
            r.insert("diff_ids".into(), Value::Array(diff_ids));
        }
        let config_bytes = Bytes::from(config_json(&config));
        let config_digest = self.ensure_blob(repo, config_bytes.clone(), scope).await?;
        doc["config"] = serde_json::json!({"mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest.to_string(), "size": config_bytes.len()});
        doc["layers"] = Value::Array(layers);
        let bytes = Bytes::from(manifest_json(&doc));
        let m = manifest::parse(bytes, Some(manifest::OCI_MANIFEST))
            .map_err(|r| invalid(self, repo, "sigstore attachment".into(), r.to_string()))?;
        self.put_manifest(repo, &cosign_tag(digest, suffix), &m)
            .await?;
        Ok(added)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_json() {
        assert_eq!(
            go_string("a\"<b>&\n\u{1}\u{2028}é"),
            r#""a\"\u003cb\u003e\u0026\n\u0001\u2028é""#
        );
        assert_eq!(go_time("0001-01-01T00:00:00Z"), "0001-01-01T00:00:00Z");
        assert_eq!(
            go_time("2025-01-01T10:00:00.500000+00:00"),
            "2025-01-01T10:00:00.5Z"
        );
        assert_eq!(
            go_time("2025-01-01T10:00:00.000-05:00"),
            "2025-01-01T10:00:00-05:00"
        );
        let fresh = config_json(
            &serde_json::json!({"rootfs": {"type": "layers", "diff_ids": ["sha256:aa"]}}),
        );
        assert_eq!(
            fresh,
            r#"{"architecture":"","os":"","config":{},"rootfs":{"type":"layers","diff_ids":["sha256:aa"]}}"#
        );
        let cosign = serde_json::json!({"architecture":"","created":"0001-01-01T00:00:00Z","history":[{"created":"0001-01-01T00:00:00Z"}],"os":"","rootfs":{"type":"layers","diff_ids":["sha256:aa"]},"config":{}});
        assert_eq!(
            config_json(&cosign),
            r#"{"created":"0001-01-01T00:00:00Z","architecture":"","os":"","config":{},"rootfs":{"type":"layers","diff_ids":["sha256:aa"]},"history":[{"created":"0001-01-01T00:00:00Z"}]}"#
        );
        let m = serde_json::json!({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"c","digest":"sha256:1","size":3},"layers":[{"mediaType":"l","digest":"sha256:2","size":4,"annotations":{"z":"1","a":"<"}}]});
        assert_eq!(
            manifest_json(&m),
            r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"c","digest":"sha256:1","size":3},"layers":[{"mediaType":"l","digest":"sha256:2","size":4,"annotations":{"a":"\u003c","z":"1"}}]}"#
        );
    }
}

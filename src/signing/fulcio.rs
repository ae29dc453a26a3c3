//! Fulcio certificates, checked offline as containers/image checks them
//! (`signature/fulcio_cert.go`).
//!
//! The signature's `dev.sigstore.cosign/certificate` annotation holds one PEM certificate,
//! `dev.sigstore.cosign/chain` optionally its chain (every certificate but the last is used as
//! an intermediate). The certificate must chain to one of the policy's CA certificates at the
//! time the Rekor SET says the signature was logged, allow code signing where it lists
//! extended key usages, record the policy's OIDC issuer (Fulcio's extension
//! 1.3.6.1.4.1.57264.1.1, or its v2 1.3.6.1.4.1.57264.1.8; both must agree when both are
//! present) and carry the policy's e-mail address among its subject alternative names. Its
//! public key then verifies the signature.

use rustls::pki_types::{CertificateDer, UnixTime};
use x509_parser::prelude::{FromDer as _, GeneralName, ParsedExtension, X509Certificate};

use super::error::SigningError;
use super::keys::PublicKey;

/// Fulcio's OIDC issuer extension (v1: the raw string).
pub const OID_ISSUER_V1: &str = "1.3.6.1.4.1.57264.1.1";
/// Fulcio's OIDC issuer extension (v2: a DER UTF8String).
pub const OID_ISSUER_V2: &str = "1.3.6.1.4.1.57264.1.8";
/// id-kp-codeSigning, 1.3.6.1.5.5.7.3.3, DER contents.
const EKU_CODE_SIGNING: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x03];

/// What a `fulcio` section of a policy trusts.
#[derive(Debug, Clone)]
pub struct FulcioTrust {
    /// The CA certificates (DER).
    pub ca_certs: Vec<Vec<u8>>,
    /// `oidcIssuer`.
    pub oidc_issuer: String,
    /// `subjectEmail`.
    pub subject_email: String,
}

impl FulcioTrust {
    /// From the PEM text of the CA certificates (`caPath`/`caData`).
    pub fn new(
        ca_pem: &[u8],
        oidc_issuer: &str,
        subject_email: &str,
    ) -> Result<Self, SigningError> {
        let ca_certs: Vec<Vec<u8>> = pem::parse_many(ca_pem)
            .map_err(|e| {
                SigningError::certificate(format!("error loading Fulcio CA certificates: {e}"))
            })?
            .into_iter()
            .filter(|p| p.tag() == "CERTIFICATE")
            .map(|p| p.contents().to_vec())
            .collect();
        if ca_certs.is_empty() {
            return Err(SigningError::certificate(
                "error loading Fulcio CA certificates",
            ));
        }
        Ok(FulcioTrust {
            ca_certs,
            oidc_issuer: oidc_issuer.to_string(),
            subject_email: subject_email.to_string(),
        })
    }

    /// Check the certificate (PEM) and chain (PEM, may be empty) at `time` (seconds since the
    /// epoch, from the Rekor SET) and return the certificate's public key.
    pub fn verify(
        &self,
        cert_pem: &[u8],
        chain_pem: &[u8],
        time: i64,
    ) -> Result<PublicKey, SigningError> {
        let leafs = pem::parse_many(cert_pem)
            .map_err(|e| SigningError::certificate(format!("parsing leaf certificate: {e}")))?;
        let leaf = match leafs.as_slice() {
            [] => {
                return Err(SigningError::certificate(
                    "no certificate found in signature certificate data",
                ));
            }
            [one] => one.contents().to_vec(),
            _ => {
                return Err(SigningError::certificate(
                    "unexpected multiple certificates present in signature certificate data",
                ));
            }
        };
        let mut intermediates = vec![];
        if !chain_pem.is_empty() {
            let chain = pem::parse_many(chain_pem).map_err(|e| {
                SigningError::certificate(format!("loading certificate chain: {e}"))
            })?;
            if chain.is_empty() {
                return Err(SigningError::certificate(
                    "loading certificate chain: no certificate",
                ));
            }
            for c in &chain[..chain.len() - 1] {
                intermediates.push(CertificateDer::from(c.contents().to_vec()));
            }
        }
        let anchors = self
            .ca_certs
            .iter()
            .map(|d| {
                webpki::anchor_from_trusted_cert(&CertificateDer::from(d.as_slice()))
                    .map(|a| a.to_owned())
                    .map_err(|e| {
                        SigningError::certificate(format!(
                            "error loading Fulcio CA certificate: {e}"
                        ))
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let leaf_der = CertificateDer::from(leaf.as_slice());
        let ee = webpki::EndEntityCert::try_from(&leaf_der)
            .map_err(|e| SigningError::certificate(format!("parsing leaf certificate: {e}")))?;
        let at = UnixTime::since_unix_epoch(std::time::Duration::from_secs(time.max(0) as u64));
        ee.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &anchors,
            &intermediates,
            at,
            webpki::KeyUsage::required_if_present(EKU_CODE_SIGNING),
            None,
            None,
        )
        .map_err(|e| {
            SigningError::certificate(format!("verifying leaf certificate failed: {e}"))
        })?;
        let (_, cert) = X509Certificate::from_der(&leaf)
            .map_err(|e| SigningError::certificate(format!("parsing leaf certificate: {e}")))?;
        let issuer = issuer_in_certificate(&cert)?;
        if issuer != self.oidc_issuer {
            return Err(SigningError::certificate(format!(
                "Unexpected Fulcio OIDC issuer {issuer:?}"
            )));
        }
        let emails = emails(&cert);
        if !emails.contains(&self.subject_email) {
            return Err(SigningError::certificate(format!(
                "Required email {:?} not found (got {emails:?})",
                self.subject_email
            )));
        }
        PublicKey::from_spki_der(cert.public_key().raw)
    }
}

/// The OIDC issuer Fulcio recorded in the certificate.
fn issuer_in_certificate(cert: &X509Certificate<'_>) -> Result<String, SigningError> {
    let mut v1 = None;
    let mut v2 = None;
    for ext in cert.extensions() {
        let oid = ext.oid.to_id_string();
        if oid == OID_ISSUER_V1 {
            if v1.is_some() {
                return Err(SigningError::certificate(
                    "Fulcio certificate has a duplicate OIDC issuer v1 extension",
                ));
            }
            v1 = Some(String::from_utf8_lossy(ext.value).into_owned());
        } else if oid == OID_ISSUER_V2 {
            if v2.is_some() {
                return Err(SigningError::certificate(
                    "Fulcio certificate has a duplicate OIDC issuer v2 extension",
                ));
            }
            let (rest, s) =
                x509_parser::der_parser::der::parse_der_utf8string(ext.value).map_err(|e| {
                    SigningError::certificate(format!(
                        "invalid ASN.1 in OIDC issuer v2 extension: {e}"
                    ))
                })?;
            if !rest.is_empty() {
                return Err(SigningError::certificate(
                    "invalid ASN.1 in OIDC issuer v2 extension, trailing data",
                ));
            }
            let s = s.as_str().map_err(|e| {
                SigningError::certificate(format!("invalid ASN.1 in OIDC issuer v2 extension: {e}"))
            })?;
            v2 = Some(s.to_string());
        }
    }
    match (v1, v2) {
        (Some(a), Some(b)) if a != b => Err(SigningError::certificate(format!(
            "inconsistent OIDC issuer extension values: v1 {a:?}, v2 {b:?}"
        ))),
        (Some(a), _) => Ok(a),
        (None, Some(b)) => Ok(b),
        (None, None) => Err(SigningError::certificate(
            "Fulcio certificate is missing the issuer extension",
        )),
    }
}

/// The e-mail addresses among the certificate's subject alternative names.
fn emails(cert: &X509Certificate<'_>) -> Vec<String> {
    let mut out = vec![];
    for ext in cert.extensions() {
        if let ParsedExtension::SubjectAlternativeName(san) = ext.parsed_extension() {
            for n in &san.general_names {
                if let GeneralName::RFC822Name(e) = n {
                    out.push(e.to_string());
                }
            }
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::signing::keys::PrivateKey;
    use rcgen::{
        BasicConstraints, CertificateParams, CustomExtension, ExtendedKeyUsagePurpose, IsCa,
        KeyPair, SanType,
    };

    /// A test Fulcio: a CA, and leaf certificates for an e-mail and issuer.
    pub(crate) struct TestFulcio {
        pub ca_pem: String,
        ca: rcgen::Issuer<'static, KeyPair>,
    }

    impl TestFulcio {
        pub(crate) fn new() -> Self {
            let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
            let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
            p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            p.distinguished_name
                .push(rcgen::DnType::CommonName, "test fulcio");
            let cert = p.self_signed(&key).unwrap();
            TestFulcio {
                ca_pem: cert.pem(),
                ca: rcgen::Issuer::new(p, key),
            }
        }

        /// A leaf certificate (PEM) and its private key, valid from an hour ago for a day.
        pub(crate) fn leaf(&self, email: &str, issuer: &str, v2: bool) -> (String, PrivateKey) {
            let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
            let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
            p.subject_alt_names = vec![SanType::Rfc822Name(email.try_into().unwrap())];
            p.extended_key_usages = vec![ExtendedKeyUsagePurpose::CodeSigning];
            let oid: Vec<u64> = if v2 {
                vec![1, 3, 6, 1, 4, 1, 57264, 1, 8]
            } else {
                vec![1, 3, 6, 1, 4, 1, 57264, 1, 1]
            };
            let value = if v2 {
                let mut v = vec![0x0c, issuer.len() as u8];
                v.extend_from_slice(issuer.as_bytes());
                v
            } else {
                issuer.as_bytes().to_vec()
            };
            p.custom_extensions = vec![CustomExtension::from_oid_content(&oid, value)];
            let now = time::OffsetDateTime::now_utc();
            p.not_before = now - time::Duration::hours(1);
            p.not_after = now + time::Duration::hours(23);
            let cert = p.signed_by(&key, &self.ca).unwrap();
            let private = PrivateKey::from_pkcs8_der(&key.serialize_der()).unwrap();
            (cert.pem(), private)
        }
    }

    fn now() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    }

    #[test]
    fn fulcio_certificates() {
        let f = TestFulcio::new();
        let trust = FulcioTrust::new(
            f.ca_pem.as_bytes(),
            "https://issuer.example",
            "dev@example.com",
        )
        .unwrap();
        for v2 in [false, true] {
            let (cert, key) = f.leaf("dev@example.com", "https://issuer.example", v2);
            let k = trust.verify(cert.as_bytes(), b"", now()).unwrap();
            assert_eq!(k, key.public());
        }
        let (cert, _) = f.leaf("other@example.com", "https://issuer.example", false);
        let e = trust.verify(cert.as_bytes(), b"", now()).unwrap_err();
        assert!(
            matches!(&e, SigningError::Certificate(m) if m.contains("Required email")),
            "{e}"
        );
        let (cert, _) = f.leaf("dev@example.com", "https://other.example", true);
        let e = trust.verify(cert.as_bytes(), b"", now()).unwrap_err();
        assert!(
            matches!(&e, SigningError::Certificate(m) if m.contains("Unexpected Fulcio OIDC issuer")),
            "{e}"
        );
        // Outside the certificate's validity (the time is the Rekor entry's).
        let (cert, _) = f.leaf("dev@example.com", "https://issuer.example", false);
        let e = trust
            .verify(cert.as_bytes(), b"", now() - 86_400 * 3)
            .unwrap_err();
        assert!(
            matches!(&e, SigningError::Certificate(m) if m.contains("verifying leaf certificate failed")),
            "{e}"
        );
        // Another CA.
        let other = TestFulcio::new();
        let trust2 = FulcioTrust::new(
            other.ca_pem.as_bytes(),
            "https://issuer.example",
            "dev@example.com",
        )
        .unwrap();
        assert!(trust2.verify(cert.as_bytes(), b"", now()).is_err());
    }
}

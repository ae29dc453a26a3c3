//! Server certificate verification as Go's `crypto/x509` does it for skopeo.
//!
//! A certificate chain to a trusted certificate is verified by rustls-webpki, unchanged: name,
//! validity period, key usage, signatures, basic constraints along the chain.
//!
//! Go accepts one more case: a server certificate that *is* one of the trusted certificates
//! (`x509.Certificate.Verify`: "if the certificate is already a root", compared byte for byte).
//! That is what a registry's self-signed certificate placed in the cert dir is — typically made
//! with `openssl req -x509`, which marks it `CA:TRUE`, and webpki refuses a CA certificate as an
//! end entity (`CaUsedAsEndEntity`). For that certificate only, and only when its exact bytes
//! are trusted, ferry checks what Go checks for it: the server name (webpki, as for any
//! certificate), the validity period, an extended key usage that allows TLS servers if it
//! names any, and no critical extension Go does not handle. The TLS handshake's signatures
//! are verified with its key as with any other certificate.

use std::collections::HashSet;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{WebPkiServerVerifier, verify_server_name};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use x509_parser::oid_registry as oids;

use super::ClientIdentity;
use crate::error::{Error, Result};

/// rustls' configuration for one client: `roots` is `None` when verification is off.
pub(super) fn client_config(
    roots: Option<Vec<CertificateDer<'static>>>,
    identity: Option<ClientIdentity>,
) -> Result<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let algorithms = provider.signature_verification_algorithms;
    let verifier: Arc<dyn ServerCertVerifier> = match roots {
        Some(roots) => Arc::new(GoVerifier::new(roots, &provider)?),
        None => Arc::new(AcceptAny { algorithms }),
    };
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(format!("cannot set up TLS: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match identity {
        Some(id) => builder
            .with_client_auth_cert(id.chain, id.key)
            .map_err(|e| Error::Tls(format!("the client certificate is not usable: {e}")))?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Whether `cert` can be a trust anchor at all (parses as a certificate).
pub(super) fn check_anchor(cert: &CertificateDer<'_>) -> std::result::Result<(), rustls::Error> {
    RootCertStore::empty().add(cert.clone().into_owned())
}

/// webpki's chain verification, plus Go's "the certificate is itself trusted".
#[derive(Debug)]
struct GoVerifier {
    /// `None` when there is no trusted certificate at all.
    chains: Option<Arc<WebPkiServerVerifier>>,
    /// The exact bytes of every trusted certificate.
    trusted: HashSet<Vec<u8>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl GoVerifier {
    fn new(roots: Vec<CertificateDer<'static>>, provider: &Arc<CryptoProvider>) -> Result<Self> {
        let trusted = roots.iter().map(|c| c.as_ref().to_vec()).collect();
        let mut store = RootCertStore::empty();
        // The system's store may hold certificates webpki cannot use; skopeo skips them too.
        store.add_parsable_certificates(roots);
        let chains = if store.is_empty() {
            None
        } else {
            Some(
                WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider.clone())
                    .build()
                    .map_err(|e| Error::Tls(format!("cannot set up TLS verification: {e}")))?,
            )
        };
        Ok(GoVerifier {
            chains,
            trusted,
            algorithms: provider.signature_verification_algorithms,
        })
    }
}

impl ServerCertVerifier for GoVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let by_chain = match &self.chains {
            Some(v) => {
                v.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            }
            None => Err(CertificateError::UnknownIssuer.into()),
        };
        match by_chain {
            Ok(v) => Ok(v),
            Err(_) if self.trusted.contains(end_entity.as_ref()) => {
                check_trusted_leaf(end_entity, server_name, now)?;
                log::debug!("{server_name:?}: the server's certificate is itself trusted");
                Ok(ServerCertVerified::assertion())
            }
            Err(e) => Err(e),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The extensions Go's `crypto/x509` understands; any other one marked critical makes Go
/// refuse the certificate ("unhandled critical extension").
const GO_HANDLED_CRITICAL: [&oids::Oid<'static>; 6] = [
    &oids::OID_X509_EXT_KEY_USAGE,
    &oids::OID_X509_EXT_BASIC_CONSTRAINTS,
    &oids::OID_X509_EXT_SUBJECT_ALT_NAME,
    &oids::OID_X509_EXT_NAME_CONSTRAINTS,
    &oids::OID_X509_EXT_CERTIFICATE_POLICIES,
    &oids::OID_X509_EXT_EXTENDED_KEY_USAGE,
];

/// What Go checks of a server certificate that is itself trusted: the name, the validity
/// period, the extended key usage, unhandled critical extensions.
fn check_trusted_leaf(
    cert: &CertificateDer<'_>,
    server_name: &ServerName<'_>,
    now: UnixTime,
) -> std::result::Result<(), rustls::Error> {
    verify_server_name(&ParsedCertificate::try_from(cert)?, server_name)?;
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref())
        .map_err(|_| CertificateError::BadEncoding)?;
    let now = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
    let validity = parsed.validity();
    if now < validity.not_before.timestamp() {
        return Err(CertificateError::NotValidYet.into());
    }
    if now > validity.not_after.timestamp() {
        return Err(CertificateError::Expired.into());
    }
    match parsed.extended_key_usage() {
        Ok(Some(eku)) if !(eku.value.any || eku.value.server_auth) => {
            return Err(CertificateError::InvalidPurpose.into());
        }
        Ok(_) => {}
        Err(_) => return Err(CertificateError::BadEncoding.into()),
    }
    if parsed
        .extensions()
        .iter()
        .any(|e| e.critical && !GO_HANDLED_CRITICAL.contains(&&e.oid))
    {
        return Err(CertificateError::Other(rustls::OtherError(Arc::new(
            UnhandledCriticalExtension,
        )))
        .into());
    }
    Ok(())
}

#[derive(Debug)]
struct UnhandledCriticalExtension;

impl std::fmt::Display for UnhandledCriticalExtension {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("unhandled critical extension")
    }
}

impl std::error::Error for UnhandledCriticalExtension {}

/// `--tls-verify=false`: any certificate, but the handshake's signatures are still checked
/// against the certificate's key (as Go's `InsecureSkipVerify`).
#[derive(Debug)]
struct AcceptAny {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn self_signed(ca: bool, expired: bool) -> CertificateDer<'static> {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        if ca {
            params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        }
        if expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        params.self_signed(&key).unwrap().der().clone()
    }

    fn verify(
        trusted: &[CertificateDer<'static>],
        cert: &CertificateDer<'_>,
        name: &str,
    ) -> Result<(), rustls::Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let v = GoVerifier::new(trusted.to_vec(), &provider).unwrap();
        let name = ServerName::try_from(name.to_string()).unwrap();
        v.verify_server_cert(cert, &[], &name, &[], UnixTime::now())
            .map(|_| ())
    }

    #[test]
    fn a_trusted_self_signed_ca_certificate_is_accepted_for_its_name_only() {
        let cert = self_signed(true, false);
        assert!(verify(std::slice::from_ref(&cert), &cert, "localhost").is_ok());
        assert!(verify(std::slice::from_ref(&cert), &cert, "registry.example").is_err());
        // Not trusted (another certificate is, or none): refused.
        assert!(verify(&[self_signed(true, false)], &cert, "localhost").is_err());
        assert!(verify(&[], &cert, "localhost").is_err());
    }

    #[test]
    fn an_expired_trusted_certificate_is_refused() {
        let cert = self_signed(true, true);
        assert_eq!(
            verify(std::slice::from_ref(&cert), &cert, "localhost"),
            Err(CertificateError::Expired.into())
        );
    }

    #[test]
    fn a_trusted_self_signed_end_entity_is_accepted_by_the_chain() {
        let cert = self_signed(false, false);
        assert!(verify(std::slice::from_ref(&cert), &cert, "localhost").is_ok());
    }
}

//! Step 4: client registration, in the spec's priority order (a pre-registered client,
//! then a Client ID Metadata Document, then Dynamic Client Registration).

use crate::authorize::loopback;
use crate::client_auth::ClientAuthMethod;
use crate::config::OAuthConfig;
use crate::doctor::{DoctorReport, Level, RegistrationReport};
use crate::registration;
use crate::remedy::Remedy;
use crate::store::RegistrationKind;

/// What this client would register as, how it would authenticate at the token endpoint,
/// and a WARN when the authorization server offers no way in without pre-registration.
pub(in crate::doctor) fn checks(r: &mut DoctorReport, config: &OAuthConfig) {
    let Some(meta) = r.metadata().cloned() else {
        return;
    };
    let pre = config
        .client
        .as_ref()
        .filter(|c| c.issuer.as_deref().is_none_or(|i| i == meta.issuer))
        .map(|c| c.client_id.clone());
    let cimd = meta.client_id_metadata_document_supported == Some(true);
    let chosen = if pre.is_some() {
        Some(RegistrationKind::PreRegistered)
    } else if cimd && config.client_metadata_url.is_some() {
        Some(RegistrationKind::ClientIdMetadataDocument)
    } else if meta.registration_endpoint.is_some() {
        Some(RegistrationKind::Dynamic)
    } else {
        None
    };
    let auth_method = match chosen {
        Some(RegistrationKind::PreRegistered) => config
            .client
            .as_ref()
            .map(|c| registration::pre_registered_auth_method(c, &meta.token_auth_methods())),
        Some(RegistrationKind::ClientIdMetadataDocument) => Some(ClientAuthMethod::None),
        Some(RegistrationKind::Dynamic) => Some(registration::dynamic_auth_method(&meta)),
        None => None,
    }
    .map(|m| m.as_str().to_string());
    // The URI a login would send: with the default settings, the stable port of this
    // server. A client registered by hand needs exactly this one.
    let redirect_uri = loopback::redirect_uri_for(&config.redirect, &r.server_url).ok();
    r.registration = Some(RegistrationReport {
        token_endpoint_auth_method: auth_method,
        pre_registered: pre.clone(),
        cimd_supported: cimd,
        client_metadata_url: config.client_metadata_url.clone(),
        registration_endpoint: meta.registration_endpoint.clone(),
        chosen,
        redirect_uri: redirect_uri.clone(),
    });
    let offers = format!(
        "client ID metadata documents: {}; dynamic registration: {}",
        if cimd { "supported" } else { "not supported" },
        meta.registration_endpoint.as_deref().unwrap_or("none")
    );
    match chosen {
        Some(k) => r.check(
            "registration",
            Level::Ok,
            format!("registration: {k} ({offers})"),
            None,
        ),
        None => r.check(
            "registration",
            Level::Warn,
            format!(
                "no registration endpoint and no CIMD: clients need pre-registration ({offers})"
            ),
            Some(match &redirect_uri {
                Some(uri) => format!(
                    "register a client at the authorization server with the redirect URI {uri}, \
                     then {}",
                    Remedy::ConfigureRegisteredClient
                ),
                None => format!(
                    "register a client at the authorization server, then {}",
                    Remedy::ConfigureRegisteredClient
                ),
            }),
        ),
    }
}

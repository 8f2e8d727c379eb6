//! The `[parties.<name>.auth]` section and `allowed_origins`: how a party authenticates
//! requests. Keys and secrets are read here, at startup, so a bad one stops startup.

use std::path::{Path, PathBuf};
use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;

use super::ConfigError;

/// How long partyd waits for an authorization webhook unless told otherwise.
pub const DEFAULT_WEBHOOK_TIMEOUT_MS: u64 = 2000;

/// How a party authenticates requests.
#[derive(Clone, Default)]
pub enum AuthConfig {
    /// Everyone may read and write (the default).
    #[default]
    None,
    /// A JWT in the `token` query parameter or an `Authorization: Bearer` header.
    Jwt(JwtConfig),
    /// An HTTP service decides.
    Webhook(WebhookConfig),
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::None => "none",
            Self::Jwt(_) => "jwt",
            Self::Webhook(_) => "webhook",
        })
    }
}

impl PartialEq for AuthConfig {
    fn eq(&self, other: &Self) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
    }
}

impl Eq for AuthConfig {}

/// JWT checking: the algorithm, its key, and the claims checked when set.
#[derive(Clone)]
pub struct JwtConfig {
    /// The only algorithm accepted.
    pub algorithm: Algorithm,
    /// The HMAC secret or the public key.
    pub key: DecodingKey,
    /// Required `aud`, when set.
    pub audience: Option<String>,
    /// Required `iss`, when set.
    pub issuer: Option<String>,
}

/// The authorization webhook.
#[derive(Clone, Debug)]
pub struct WebhookConfig {
    /// Where partyd POSTs (plain `http://`).
    pub url: String,
    /// How long it may take before partyd refuses with 503.
    pub timeout: Duration,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct AuthSection {
    mode: Option<String>,
    algorithm: Option<String>,
    secret_env: Option<String>,
    public_key_file: Option<PathBuf>,
    audience: Option<String>,
    issuer: Option<String>,
    url: Option<String>,
    timeout_ms: Option<u64>,
}

impl AuthSection {
    /// Checks the section and reads its secret or key; `key` is the dotted key of the section.
    pub(super) fn resolve(self, source: &Path, key: &str) -> Result<AuthConfig, ConfigError> {
        let invalid = |field: &str, message: String| ConfigError::Invalid {
            path: source.to_path_buf(),
            key: format!("{key}.{field}"),
            message,
        };
        let mode = self.mode.as_deref().unwrap_or("none");
        let jwt_keys = self.algorithm.is_some()
            || self.secret_env.is_some()
            || self.public_key_file.is_some()
            || self.audience.is_some()
            || self.issuer.is_some();
        let webhook_keys = self.url.is_some() || self.timeout_ms.is_some();
        match mode {
            "none" if jwt_keys || webhook_keys => {
                Err(invalid("mode", "is \"none\", so no other auth key may be set".into()))
            }
            "none" => Ok(AuthConfig::None),
            "jwt" if webhook_keys => {
                Err(invalid("url", "url and timeout_ms are only for mode = \"webhook\"".into()))
            }
            "jwt" => self.jwt(&invalid, source),
            "webhook" if jwt_keys => Err(invalid(
                "mode",
                "algorithm, keys, audience and issuer are only for mode = \"jwt\"".into(),
            )),
            "webhook" => {
                let url =
                    self.url.ok_or_else(|| invalid("url", "is required for mode = \"webhook\"".into()))?;
                if !url.starts_with("http://") {
                    return Err(invalid("url", format!("{url:?} must be an http:// URL")));
                }
                let timeout_ms = self.timeout_ms.unwrap_or(DEFAULT_WEBHOOK_TIMEOUT_MS);
                if timeout_ms == 0 {
                    return Err(invalid("timeout_ms", "must be greater than 0".into()));
                }
                Ok(AuthConfig::Webhook(WebhookConfig { url, timeout: Duration::from_millis(timeout_ms) }))
            }
            other => Err(invalid("mode", format!("{other:?} is not one of \"none\", \"jwt\", \"webhook\""))),
        }
    }

    fn jwt(
        self,
        invalid: &dyn Fn(&str, String) -> ConfigError,
        source: &Path,
    ) -> Result<AuthConfig, ConfigError> {
        let name = self.algorithm.as_deref().unwrap_or("HS256");
        let algorithm = match name {
            "HS256" => Algorithm::HS256,
            "HS384" => Algorithm::HS384,
            "HS512" => Algorithm::HS512,
            "RS256" => Algorithm::RS256,
            "ES256" => Algorithm::ES256,
            "EdDSA" => Algorithm::EdDSA,
            other => {
                return Err(invalid(
                    "algorithm",
                    format!("{other:?} is not one of HS256, HS384, HS512, RS256, ES256, EdDSA"),
                ))
            }
        };
        let key = if name.starts_with("HS") {
            if self.public_key_file.is_some() {
                return Err(invalid("public_key_file", format!("is not used by {name}; set secret_env")));
            }
            let env = self.secret_env.ok_or_else(|| {
                invalid(
                    "secret_env",
                    format!("is required for {name}: the name of the env var holding the secret"),
                )
            })?;
            let secret = std::env::var(&env).ok().filter(|secret| !secret.is_empty());
            let secret = secret
                .ok_or_else(|| invalid("secret_env", format!("the env var {env} is not set (or empty)")))?;
            DecodingKey::from_secret(secret.as_bytes())
        } else {
            if self.secret_env.is_some() {
                return Err(invalid("secret_env", format!("is not used by {name}; set public_key_file")));
            }
            let file = self
                .public_key_file
                .ok_or_else(|| invalid("public_key_file", format!("is required for {name}")))?;
            let file =
                if file.is_relative() { source.parent().unwrap_or(Path::new(".")).join(file) } else { file };
            let pem = std::fs::read(&file).map_err(|error| {
                invalid("public_key_file", format!("cannot read {}: {error}", file.display()))
            })?;
            let parsed = match algorithm {
                Algorithm::RS256 => DecodingKey::from_rsa_pem(&pem),
                Algorithm::ES256 => DecodingKey::from_ec_pem(&pem),
                _ => DecodingKey::from_ed_pem(&pem),
            };
            parsed.map_err(|error| {
                invalid(
                    "public_key_file",
                    format!("{} is not a {name} public key in PEM: {error}", file.display()),
                )
            })?
        };
        Ok(AuthConfig::Jwt(JwtConfig { algorithm, key, audience: self.audience, issuer: self.issuer }))
    }
}

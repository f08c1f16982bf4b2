//! The AWS shared credentials file (INI): `[profile]` sections with
//! `aws_access_key_id`, `aws_secret_access_key` and `aws_session_token`.

use aigw_core::CredentialMaterial;
use aigw_core::Secret;

/// Extracts `profile`'s keys from a credentials file. Accepts both `[name]` (credentials
/// file) and `[profile name]` (config file) section headers.
pub(crate) fn parse(contents: &str, profile: &str) -> Result<CredentialMaterial, String> {
    let mut in_section = false;
    let mut found_section = false;
    let (mut id, mut secret, mut token) = (None, None, None);
    for raw in contents.lines() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let header = header.trim();
            let name = header.strip_prefix("profile ").map_or(header, str::trim);
            in_section = name == profile;
            found_section |= in_section;
            continue;
        }
        if !in_section {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let v = Secret::new(v.trim().to_owned());
        match k.trim().to_ascii_lowercase().as_str() {
            "aws_access_key_id" => id = Some(v),
            "aws_secret_access_key" => secret = Some(v),
            "aws_session_token" | "aws_security_token" => token = Some(v),
            _ => {}
        }
    }
    if !found_section {
        return Err(format!(
            "profile {profile:?} not found in the credentials file"
        ));
    }
    match (id, secret) {
        (Some(access_key_id), Some(secret_access_key)) => Ok(CredentialMaterial::Aws {
            access_key_id,
            secret_access_key,
            session_token: token.filter(|t| !t.is_empty()),
        }),
        _ => Err(format!(
            "profile {profile:?} lacks aws_access_key_id or aws_secret_access_key"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "# comment\n[default]\naws_access_key_id = AKIADEFAULT\naws_secret_access_key=s1\n\n[profile prod]\naws_access_key_id = AKIAPROD\naws_secret_access_key = s2\naws_session_token = tok\n[broken]\naws_access_key_id = X\n";

    #[test]
    fn picks_the_named_profile() {
        let CredentialMaterial::Aws {
            access_key_id,
            secret_access_key,
            session_token,
        } = parse(FILE, "prod").unwrap()
        else {
            panic!("not aws");
        };
        assert_eq!(access_key_id.expose(), "AKIAPROD");
        assert_eq!(secret_access_key.expose(), "s2");
        assert_eq!(session_token.unwrap().expose(), "tok");
        let CredentialMaterial::Aws { session_token, .. } = parse(FILE, "default").unwrap() else {
            panic!("not aws");
        };
        assert!(session_token.is_none());
    }

    #[test]
    fn missing_profile_or_keys_error_without_values() {
        assert!(parse(FILE, "nope").unwrap_err().contains("not found"));
        let e = parse(FILE, "broken").unwrap_err();
        assert!(e.contains("lacks") && !e.contains('X'), "{e}");
    }
}

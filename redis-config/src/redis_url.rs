//! Reading a Redis URL into fred's [`Config`], with this project's rule for the
//! credentials a Sentinel gets. The node and the emitter share it.
//!
//! It also holds what else a URL needs: [`is_redis_url`] (one list of the schemes, the
//! same in every error message: [`SCHEMES`]) and [`mask`] (the URL as it may be logged).
//!
//! A `redis-sentinel://` URL names two kinds of servers: the Sentinels it lists and the
//! master they point to. The user and password before the host are the master's. The
//! Sentinels get:
//! - `sentinelUsername` / `sentinelPassword` (query parameters) when given: a Sentinel
//!   with its own `requirepass` or ACL user;
//! - `sentinelPassword=` (empty): no `AUTH` at all, for Sentinels without a password
//!   in front of a master with one;
//! - neither: the master's credentials, as fred sends without its `sentinel-auth`
//!   feature and as a Sentinel set up with the same password expects.
//!
//! ```
//! use fred::types::config::ServerConfig;
//!
//! let config = sio_redis_config::redis_url::config_from_url(
//!     "redis-sentinel://:master-pw@10.0.0.1:26379/0?sentinelServiceName=mymaster&sentinelPassword=sentinel-pw",
//! )
//! .unwrap();
//! assert_eq!(config.password.as_deref(), Some("master-pw"));
//! let ServerConfig::Sentinel { password, .. } = &config.server else { unreachable!() };
//! assert_eq!(password.as_deref(), Some("sentinel-pw"));
//! ```

use fred::error::Error;
use fred::types::config::{Config, ServerConfig};

/// The URL schemes fred reads, as an error message lists them.
pub const SCHEMES: &str = "redis://, rediss://, redis-sentinel:// or redis-cluster://";

/// Whether `url` names Redis the way fred reads it: `redis://`, `rediss://` (TLS),
/// `redis-sentinel://` or `redis-cluster://`.
///
/// ```
/// assert!(sio_redis_config::redis_url::is_redis_url("redis://:pw@host:6379/2"));
/// assert!(sio_redis_config::redis_url::is_redis_url("redis-sentinel://h:26379/0?sentinelServiceName=m"));
/// assert!(!sio_redis_config::redis_url::is_redis_url("redis+sentinel://h:26379"));
/// assert!(!sio_redis_config::redis_url::is_redis_url("http://host"));
/// ```
pub fn is_redis_url(url: &str) -> bool {
    [
        "redis://",
        "rediss://",
        "redis-sentinel://",
        "redis-cluster://",
    ]
    .iter()
    .any(|s| url.starts_with(s))
}

/// `url` as it may be logged or shown: the userinfo's password and the value of any query
/// parameter whose name mentions a password (fred's `sentinelPassword`) replaced by `***`.
///
/// ```
/// use sio_redis_config::redis_url::mask;
///
/// assert_eq!(mask("redis://user:pw@host:6379/0"), "redis://user:***@host:6379/0");
/// assert_eq!(mask("redis://host:6379"), "redis://host:6379");
/// assert_eq!(
///     mask("redis-sentinel://:pw@h:26379/0?sentinelServiceName=m&sentinelPassword=sp"),
///     "redis-sentinel://:***@h:26379/0?sentinelServiceName=m&sentinelPassword=***",
/// );
/// ```
pub fn mask(url: &str) -> String {
    let (head, query) = match url.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (url, None),
    };
    let mut out = match head.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((userinfo, host)) => {
                let user = userinfo.split_once(':').map(|(u, _)| u).unwrap_or("");
                format!("{scheme}://{user}:***@{host}")
            }
            None => head.to_string(),
        },
        None => head.to_string(),
    };
    if let Some(query) = query {
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) if k.to_ascii_lowercase().contains("pass") => format!("{k}=***"),
                _ => pair.to_string(),
            })
            .collect();
        out.push('?');
        out.push_str(&pairs.join("&"));
    }
    out
}

/// Parses `url` as fred does (`redis://`, `rediss://`, `redis-sentinel://`,
/// `redis-cluster://`, user, password, db and query parameters), then gives the
/// Sentinels of a `redis-sentinel://` URL their credentials by the rule of this module.
pub fn config_from_url(url: &str) -> Result<Config, Error> {
    let mut config = Config::from_url(url)?;
    let (master_user, master_password) = (config.username.clone(), config.password.clone());
    if let ServerConfig::Sentinel {
        username, password, ..
    } = &mut config.server
    {
        if username.is_none() && password.is_none() {
            *username = master_user;
            *password = master_password;
        } else if password.as_deref() == Some("") {
            *username = None;
            *password = None;
        }
    }
    Ok(config)
}

/// The credentials to send a Sentinel of `config` (none for other kinds of server).
pub fn sentinel_credentials(config: &Config) -> (Option<String>, Option<String>) {
    match &config.server {
        ServerConfig::Sentinel {
            username, password, ..
        } => (username.clone(), password.clone()),
        _ => (None, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sentinel_auth(url: &str) -> (Option<String>, Option<String>) {
        sentinel_credentials(&config_from_url(url).expect("a valid URL"))
    }

    const BASE: &str = "redis-sentinel://app:master-pw@10.0.0.1:26379/0?sentinelServiceName=m";

    #[test]
    fn sentinels_get_their_own_credentials_when_given() {
        let url = format!("{BASE}&sentinelUsername=watcher&sentinelPassword=s-pw");
        assert_eq!(
            sentinel_auth(&url),
            (Some("watcher".into()), Some("s-pw".into()))
        );
        assert_eq!(
            sentinel_auth(&format!("{BASE}&sentinelPassword=s-pw")),
            (None, Some("s-pw".into()))
        );
        // the master keeps its own
        let config = config_from_url(&url).expect("a valid URL");
        assert_eq!(config.username.as_deref(), Some("app"));
        assert_eq!(config.password.as_deref(), Some("master-pw"));
    }

    #[test]
    fn sentinels_get_the_masters_credentials_by_default_and_none_when_asked() {
        assert_eq!(
            sentinel_auth(BASE),
            (Some("app".into()), Some("master-pw".into()))
        );
        assert_eq!(
            sentinel_auth(&format!("{BASE}&sentinelPassword=")),
            (None, None)
        );
        assert_eq!(
            sentinel_auth("redis-sentinel://10.0.0.1:26379/0?sentinelServiceName=m"),
            (None, None)
        );
    }

    #[test]
    fn other_urls_are_read_as_fred_reads_them() {
        let config = config_from_url("redis://:pw@127.0.0.1:6380/2").expect("a valid URL");
        assert_eq!(config.password.as_deref(), Some("pw"));
        assert_eq!(config.database, Some(2));
        assert_eq!(sentinel_credentials(&config), (None, None));
        assert!(config_from_url("redis-sentinel://10.0.0.1:26379/0").is_err());
    }
}

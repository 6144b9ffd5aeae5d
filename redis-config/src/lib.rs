//! How a sio-cluster process reaches Redis: a Redis URL read into fred's
//! [`Config`](fred::types::config::Config) ([`redis_url`]), and `rediss://` with a private CA
//! ([`tls`]). The node (`sio-adapter-redis`) and the emitter (`sio-emitter`) share both, so a
//! URL means the same thing, and is masked the same way in logs, everywhere.
//!
//! ```
//! let url = "redis://:secret@127.0.0.1:6379/0";
//! assert!(sio_redis_config::redis_url::is_redis_url(url));
//! let config = sio_redis_config::redis_url::config_from_url(url).unwrap();
//! assert_eq!(config.database, Some(0));
//! assert_eq!(sio_redis_config::redis_url::mask(url), "redis://:***@127.0.0.1:6379/0");
//! ```

pub mod redis_url;
pub mod tls;

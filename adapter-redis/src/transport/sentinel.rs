//! Following a Sentinel failover at once.
//!
//! With a `redis-sentinel://` URL fred asks Sentinel for the master when it connects,
//! and again only when a connection breaks. After a failover the old master keeps
//! serving until Sentinel demotes it (seconds later, when it notices; forever if it is
//! cut off from the Sentinels), and clients still connected to it keep writing there:
//! writes that the new master never sees, and the node and session registry entries
//! expire on the new master meanwhile.
//!
//! So, like ioredis' `failoverDetector`, every node subscribes to `+switch-master` on
//! each Sentinel and, when the event names its service, makes its Redis clients
//! reconnect, which asks Sentinel again and reaches the new master.

use fred::clients::SubscriberClient;
use fred::interfaces::{ClientLike, EventInterface, PubsubInterface};
use fred::types::Builder;
use fred::types::config::{Config, ReconnectPolicy, ServerConfig};
use tokio::task::JoinHandle;
use tracing::{info, warn};

/// The Sentinel event announcing a new master: `<name> <old ip> <old port> <new ip>
/// <new port>`.
pub(crate) const SWITCH_MASTER: &str = "+switch-master";

/// The service name of a `+switch-master` message (its first word).
pub(crate) fn switched_service(message: &str) -> Option<&str> {
    message.split_whitespace().next()
}

/// With a Sentinel `config`, subscribes to [`SWITCH_MASTER`] on each of its Sentinels
/// and calls `reconnect` when the master of its service changes. Returns the watching
/// tasks (none for other server kinds).
pub(crate) fn watch_failovers<F, Fut>(config: &Config, reconnect: F) -> Vec<JoinHandle<()>>
where
    F: Fn() -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let ServerConfig::Sentinel {
        hosts,
        service_name,
        ..
    } = &config.server
    else {
        return Vec::new();
    };
    hosts
        .iter()
        .map(|host| {
            let mut watcher_config = config.clone();
            watcher_config.server = ServerConfig::Centralized {
                server: host.clone(),
            };
            // a Sentinel's own credentials (crate::redis_url), never a database number
            (watcher_config.username, watcher_config.password) =
                crate::redis_url::sentinel_credentials(config);
            watcher_config.database = None;
            let service = service_name.clone();
            let reconnect = reconnect.clone();
            let sentinel = host.to_string();
            tokio::spawn(async move {
                let subscriber = match Builder::from_config(watcher_config)
                    .set_policy(ReconnectPolicy::new_exponential(0, 100, 5_000, 2))
                    .build_subscriber_client()
                {
                    Ok(s) => s,
                    Err(e) => {
                        warn!(%sentinel, error = %e, "cannot watch Sentinel for failovers");
                        return;
                    }
                };
                watch(subscriber, &sentinel, &service, reconnect).await;
            })
        })
        .collect()
}

async fn watch<F, Fut>(subscriber: SubscriberClient, sentinel: &str, service: &str, reconnect: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut messages = subscriber.message_rx();
    let mut delay = std::time::Duration::from_millis(100);
    while let Err(e) = subscriber.init().await {
        warn!(%sentinel, error = %e, retry_in_ms = delay.as_millis() as u64, "cannot reach Sentinel to watch for failovers");
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(std::time::Duration::from_secs(5));
    }
    let _resubscribe = subscriber.manage_subscriptions();
    if let Err(e) = subscriber.subscribe(SWITCH_MASTER).await {
        warn!(%sentinel, error = %e, "cannot watch Sentinel for failovers (will retry on reconnect)");
    }
    loop {
        let message = match messages.recv().await {
            Ok(m) => m,
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        };
        let Some(text) = message.value.as_str() else {
            continue;
        };
        if switched_service(&text) != Some(service) {
            continue;
        }
        info!(%sentinel, event = %text, "Sentinel switched the master: reconnecting to the new one");
        reconnect().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_service_is_the_first_word() {
        assert_eq!(
            switched_service("mymaster 10.0.0.1 6379 10.0.0.2 6379"),
            Some("mymaster")
        );
        assert_eq!(switched_service(""), None);
    }
}

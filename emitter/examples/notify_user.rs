//! Push a notification to every device of one user, whichever node each is on.
//!
//! A sio-cluster node puts a socket whose token has `sub: "<id>"` in room `user:<id>`.
//!
//! ```text
//! SIO_REDIS_URL=redis://127.0.0.1:6379 cargo run -p sio-emitter --example notify_user -- 42 "Your order shipped"
//! ```

use sio_emitter::Emitter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let user = args.next().unwrap_or_else(|| "42".into());
    let text = args.next().unwrap_or_else(|| "hello".into());
    let url = std::env::var("SIO_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());

    let emitter = Emitter::connect(&url).await?;
    emitter
        .to(format!("user:{user}"))
        .emit("notification", [serde_json::json!({ "text": text })])
        .await?;
    println!("sent to user:{user}");
    Ok(())
}

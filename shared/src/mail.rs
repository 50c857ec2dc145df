//! Outgoing mail (invitations, password resets): SMTP through `lettre` when `SMTP_URL` is set,
//! otherwise the dev mailbox — each message written as an `.eml` file into `MAIL_DIR`, where
//! a developer (or a test) opens it.

use std::{path::PathBuf, sync::Arc};

use anyhow::Context;
use lettre::{
    AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    message::{Mailbox, header::ContentType},
};
use secrecy::ExposeSecret;

use crate::config::MailConfig;

/// Sends mail. Cheap to clone.
#[derive(Clone)]
pub struct Mailer {
    transport: Arc<Transport>,
    from: Mailbox,
    app_base_url: url::Url,
}

enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Dir(PathBuf),
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match *self.transport {
            Transport::Smtp(_) => "smtp".to_owned(),
            Transport::Dir(ref dir) => format!("dir:{}", dir.display()),
        };
        f.debug_struct("Mailer").field("transport", &kind).finish_non_exhaustive()
    }
}

impl Mailer {
    pub fn new(config: &MailConfig) -> anyhow::Result<Self> {
        let transport = match &config.smtp_url {
            Some(url) => Transport::Smtp(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose_secret())
                    .context("SMTP_URL is not an smtp:// or smtps:// URL")?
                    .build(),
            ),
            None => Transport::Dir(config.dir.clone()),
        };
        Ok(Self {
            transport: Arc::new(transport),
            from: config.from.parse().context("MAIL_FROM")?,
            app_base_url: config.app_base_url.clone(),
        })
    }

    /// A link into the web app, e.g. `link("/invites/accept", &[("token", t)])`.
    pub fn link(&self, path: &str, query: &[(&str, &str)]) -> String {
        let mut url = self.app_base_url.clone();
        url.set_path(path);
        url.query_pairs_mut().extend_pairs(query);
        url.to_string()
    }

    /// Sends a plain-text mail to `to`.
    pub async fn send(&self, to: &str, subject: &str, body: String) -> anyhow::Result<()> {
        let message = Message::builder()
            .from(self.from.clone())
            .to(to.parse().context("recipient address")?)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body)?;
        match &*self.transport {
            Transport::Smtp(smtp) => {
                smtp.send(message).await.context("sending mail over SMTP")?;
            }
            Transport::Dir(dir) => {
                tokio::fs::create_dir_all(dir).await.with_context(|| format!("creating {}", dir.display()))?;
                let id = AsyncFileTransport::<Tokio1Executor>::new(dir)
                    .send(message)
                    .await
                    .with_context(|| format!("writing mail into {}", dir.display()))?;
                tracing::info!(file = %dir.join(format!("{id}.eml")).display(), "mail written to the dev mailbox");
            }
        }
        Ok(())
    }
}

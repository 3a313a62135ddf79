//! receive (注文受付): the shop's mailbox, then each marketplace's order API; mail only makes
//! an order visible and wakes the API up, the API confirms it. Rakuten's orders get the first
//! step of the two-step confirmation here, and prepaid buyers their payment guidance.

pub mod customer_mail;
pub mod mail;
pub mod rakuten;
pub mod yahoo;

use crate::stages::context::StageContext;
use crate::stages::report::{StageError, StageReport};
use events::Marketplace;

pub async fn run(ctx: &mut StageContext<'_>) -> Result<Vec<StageReport>, StageError> {
    let mut reports = Vec::new();
    reports.extend(mailbox(ctx).await?);
    for marketplace in Marketplace::ALL {
        reports.extend(marketplace_orders(ctx, marketplace).await?);
    }
    reports.push(customer_mails(ctx).await?);
    Ok(reports)
}

/// The shop's mailbox, when one is configured: orders seen by mail, and Amazon's shipment mail.
pub async fn mailbox(ctx: &mut StageContext<'_>) -> Result<Option<StageReport>, StageError> {
    let services = ctx.services;
    let Some(imap) = &services.imap else { return Ok(None) };
    let sources = mail::MailSources { rakuten: services.rakuten.as_ref(), yahoo: services.yahoo.as_ref() };
    Ok(Some(mail::receive(ctx.ledger, imap, sources, &services.poll, &mut ctx.steps).await?))
}

/// One marketplace's new orders, when the shop sells there.
pub async fn marketplace_orders(
    ctx: &mut StageContext<'_>,
    marketplace: Marketplace,
) -> Result<Option<StageReport>, StageError> {
    let services = ctx.services;
    match (marketplace, &services.rakuten, &services.yahoo) {
        (Marketplace::Rakuten, Some(client), _) => {
            Ok(Some(rakuten::receive(ctx.ledger, client, &services.poll, &mut ctx.steps).await?))
        }
        (Marketplace::Yahoo, _, Some(client)) => {
            Ok(Some(yahoo::receive(ctx.ledger, client, &services.poll, &mut ctx.steps).await?))
        }
        _ => Ok(None),
    }
}

/// The customer mails decided at receive (payment guidance), sent.
pub async fn customer_mails(ctx: &mut StageContext<'_>) -> Result<StageReport, StageError> {
    let services = ctx.services;
    customer_mail::send(ctx.ledger, services.mailer.as_ref(), &services.customer_mail).await
}

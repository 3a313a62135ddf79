//! receive (注文受付): the shop's mailbox, then each marketplace's order API; mail only makes
//! an order visible and wakes the API up, the API confirms it. Rakuten's orders get the first
//! step of the two-step confirmation here, and prepaid buyers their payment guidance.

pub mod customer_mail;
pub mod mail;
pub mod rakuten;
pub mod yahoo;

use crate::stages::context::StageContext;
use crate::stages::report::{StageError, StageReport};

pub async fn run(ctx: &mut StageContext<'_>) -> Result<Vec<StageReport>, StageError> {
    let services = ctx.services;
    let mut reports = Vec::new();
    if let Some(imap) = &services.imap {
        let sources = mail::MailSources { rakuten: services.rakuten.as_ref(), yahoo: services.yahoo.as_ref() };
        reports.push(mail::receive(ctx.ledger, imap, sources, &services.poll, &mut ctx.steps).await?);
    }
    if let Some(client) = &services.rakuten {
        reports.push(rakuten::receive(ctx.ledger, client, &services.poll, &mut ctx.steps).await?);
    }
    if let Some(client) = &services.yahoo {
        reports.push(yahoo::receive(ctx.ledger, client, &services.poll, &mut ctx.steps).await?);
    }
    reports.push(customer_mail::send(ctx.ledger, services.mailer.as_ref(), &services.customer_mail).await?);
    Ok(reports)
}

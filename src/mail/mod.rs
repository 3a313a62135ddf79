//! Mail: order and shipment emails in (IMAP), alerts and customer emails out (SMTP).
//! Mail is a second, independent detector of orders: it can make an order visible, but only
//! the marketplace API confirms it, so a forged email can never cause a shipment.

pub mod imap;
pub mod parse;
pub mod smtp;

//! mcf-ledger: the service.

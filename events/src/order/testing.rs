//! Given events / when a decision / then the events it decides: the shape every pure decision's
//! test takes (after cqrs-es's test framework). The expected events are checked exactly, or by
//! their types when the payloads are not the point, and the state they lead to is at hand for
//! the next step.
//!
//! ```
//! use events::order::testing::given;
//! use events::order::{OrderEvent, Note, sample};
//! use events::{Marketplace, OrderKey};
//! let key = OrderKey::new(Marketplace::Yahoo, "shop-10000001").unwrap();
//! given(&key, &sample::lifecycle_to(&key, events::order::Status::Received))
//!     .when(|_| vec![OrderEvent::OrderVerified(Note { note: "shippable".into() })])
//!     .then_expect_types(&["OrderVerified"]);
//! ```

use super::{OrderEvent, OrderState};
use crate::OrderKey;

/// An order's history before the decision.
pub struct Given {
    state: OrderState,
}

/// A decision's events, and the state they lead to.
#[must_use = "a decision's test says what it expects"]
pub struct Then {
    before: OrderState,
    events: Vec<OrderEvent>,
}

/// The order `key` after `events`.
pub fn given(key: &OrderKey, events: &[OrderEvent]) -> Given {
    Given { state: OrderState::fold(key.clone(), events) }
}

/// The order `key` with no history.
pub fn given_nothing(key: &OrderKey) -> Given {
    given(key, &[])
}

impl Given {
    /// Starts from a state folded elsewhere (another decision's outcome).
    pub fn state(state: OrderState) -> Self {
        Self { state }
    }

    pub fn when(self, decide: impl FnOnce(&OrderState) -> Vec<OrderEvent>) -> Then {
        let events = decide(&self.state);
        Then { before: self.state, events }
    }
}

impl Then {
    /// The decision is exactly `expected`; every event is also valid where it stands.
    pub fn then_expect_events(self, expected: &[OrderEvent]) -> OrderState {
        assert_eq!(self.events, expected, "the decided events");
        self.after()
    }

    /// The decision's events have these types, in order.
    pub fn then_expect_types(self, expected: &[&str]) -> OrderState {
        let types: Vec<&str> = self.events.iter().map(OrderEvent::event_type).collect();
        assert_eq!(types, expected, "the decided events: {:?}", self.events);
        self.after()
    }

    /// The decision adds nothing.
    pub fn then_expect_nothing(self) -> OrderState {
        assert!(self.events.is_empty(), "expected no events, got {:?}", self.events);
        self.before
    }

    /// The events, for assertions on their payloads.
    pub fn events(&self) -> &[OrderEvent] {
        &self.events
    }

    /// The state after the decided events, each checked by the state machine first (a reactor's
    /// events must be appendable where it decided them).
    fn after(self) -> OrderState {
        let mut state = self.before;
        for event in &self.events {
            if let Err(refused) = state.check(event) {
                panic!("{} is not valid after the events before it: {refused}", event.event_type());
            }
            state.apply(event);
        }
        state
    }
}

//! The lifecycles the Measures allow, one state machine per aggregate: its states, the events
//! that move it, and the article that allows each move. Anything not listed is illegal.
//!
//! Stored statuses are the `name()` of a state; a status write is a guarded update from the
//! states `Machine::sources` lists for its event.

use std::fmt;

/// One aggregate's lifecycle.
pub trait Machine: Sized + Copy + Eq + fmt::Debug + 'static {
    type Event: Copy + Eq + fmt::Debug + 'static;

    const STATES: &'static [Self];
    const EVENTS: &'static [Self::Event];
    /// `(from, event, to, article)`.
    const TRANSITIONS: &'static [(Self, Self::Event, Self, &'static str)];

    fn name(self) -> &'static str;

    fn event_name(event: Self::Event) -> &'static str;

    fn parse(s: &str) -> Option<Self> {
        Self::STATES.iter().copied().find(|st| st.name() == s)
    }

    /// Where `event` takes `self`, with the article allowing it.
    fn on(self, event: Self::Event) -> Result<(Self, &'static str), Illegal> {
        Self::TRANSITIONS
            .iter()
            .find(|(from, ev, _, _)| *from == self && *ev == event)
            .map(|(_, _, to, article)| (*to, *article))
            .ok_or(Illegal {
                from: self.name(),
                event: Self::event_name(event),
            })
    }

    /// Where `event` leads; every event of these machines leads to one state.
    fn target(event: Self::Event) -> Self {
        Self::TRANSITIONS
            .iter()
            .find(|(_, ev, _, _)| *ev == event)
            .map(|(_, _, to, _)| *to)
            .expect("every event has a transition")
    }

    /// The states `event` may move; the guard of the update that applies it.
    fn sources(event: Self::Event) -> Vec<&'static str> {
        Self::TRANSITIONS
            .iter()
            .filter(|(_, ev, _, _)| *ev == event)
            .map(|(from, _, _, _)| from.name())
            .collect()
    }
}

/// An event that the state it arrived in does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{event} is not allowed while {from}")]
pub struct Illegal {
    pub from: &'static str,
    pub event: &'static str,
}

/// A filing (建档), as filing holds it and as review mirrors it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Filing {
    Submitted,
    Active,
    Refused,
    Revoked,
    Deregistering,
    Deregistered,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FilingEvent {
    Approve,
    Refuse,
    /// A revocation under Art. 15 (with its 12-month restriction).
    Revoke,
    /// The automatic revocation of Art. 11 for a missing annual report.
    MissAnnualReport,
    RequestDeregistration,
    RefuseDeregistration,
    CompleteDeregistration,
}

impl Machine for Filing {
    type Event = FilingEvent;

    const STATES: &'static [Self] = &[
        Self::Submitted,
        Self::Active,
        Self::Refused,
        Self::Revoked,
        Self::Deregistering,
        Self::Deregistered,
    ];
    const EVENTS: &'static [FilingEvent] = &[
        FilingEvent::Approve,
        FilingEvent::Refuse,
        FilingEvent::Revoke,
        FilingEvent::MissAnnualReport,
        FilingEvent::RequestDeregistration,
        FilingEvent::RefuseDeregistration,
        FilingEvent::CompleteDeregistration,
    ];
    const TRANSITIONS: &'static [(Self, FilingEvent, Self, &'static str)] = &[
        (
            Self::Submitted,
            FilingEvent::Approve,
            Self::Active,
            "Art. 10",
        ),
        (
            Self::Submitted,
            FilingEvent::Refuse,
            Self::Refused,
            "Art. 9",
        ),
        (Self::Active, FilingEvent::Revoke, Self::Revoked, "Art. 15"),
        // An agency that applied to deregister is still answerable under Art. 15.
        (
            Self::Deregistering,
            FilingEvent::Revoke,
            Self::Revoked,
            "Art. 15",
        ),
        (
            Self::Active,
            FilingEvent::MissAnnualReport,
            Self::Revoked,
            "Art. 11",
        ),
        (
            Self::Active,
            FilingEvent::RequestDeregistration,
            Self::Deregistering,
            "Art. 18",
        ),
        (
            Self::Deregistering,
            FilingEvent::RefuseDeregistration,
            Self::Active,
            "Art. 18",
        ),
        (
            Self::Deregistering,
            FilingEvent::CompleteDeregistration,
            Self::Deregistered,
            "Art. 18",
        ),
    ];

    fn name(self) -> &'static str {
        match self {
            Self::Submitted => "submitted",
            Self::Active => "active",
            Self::Refused => "refused",
            Self::Revoked => "revoked",
            Self::Deregistering => "deregistering",
            Self::Deregistered => "deregistered",
        }
    }

    fn event_name(event: FilingEvent) -> &'static str {
        match event {
            FilingEvent::Approve => "approval",
            FilingEvent::Refuse => "refusal",
            FilingEvent::Revoke => "revocation (Art. 15)",
            FilingEvent::MissAnnualReport => "revocation for a missing annual report (Art. 11)",
            FilingEvent::RequestDeregistration => "a deregistration request",
            FilingEvent::RefuseDeregistration => "refusal of deregistration",
            FilingEvent::CompleteDeregistration => "completion of deregistration",
        }
    }
}

impl Filing {
    /// A filing that bars a second application of the same agency.
    pub fn is_open(self) -> bool {
        matches!(self, Self::Submitted | Self::Active | Self::Deregistering)
    }

    /// Names of the open statuses.
    pub const OPEN: [&'static str; 3] = ["submitted", "active", "deregistering"];
}

/// A regulator's review task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Task {
    Open,
    Approved,
    /// Approved by a prefecture and reported to the region (Art. 10, 12); the region's copy
    /// also has this status.
    Forwarded,
    Refused,
    /// A supervision task the holding authority has dealt with.
    Closed,
    /// The filing it concerned ended (revoked) before a decision.
    Withdrawn,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaskEvent {
    Approve,
    ApproveAndForward,
    Refuse,
    Close,
    Withdraw,
}

impl Machine for Task {
    type Event = TaskEvent;

    const STATES: &'static [Self] = &[
        Self::Open,
        Self::Approved,
        Self::Forwarded,
        Self::Refused,
        Self::Closed,
        Self::Withdrawn,
    ];
    const EVENTS: &'static [TaskEvent] = &[
        TaskEvent::Approve,
        TaskEvent::ApproveAndForward,
        TaskEvent::Refuse,
        TaskEvent::Close,
        TaskEvent::Withdraw,
    ];
    const TRANSITIONS: &'static [(Self, TaskEvent, Self, &'static str)] = &[
        (Self::Open, TaskEvent::Approve, Self::Approved, "Art. 10"),
        (
            Self::Open,
            TaskEvent::ApproveAndForward,
            Self::Forwarded,
            "Art. 10",
        ),
        (Self::Open, TaskEvent::Refuse, Self::Refused, "Art. 9"),
        (Self::Open, TaskEvent::Close, Self::Closed, "Art. 14"),
        (Self::Open, TaskEvent::Withdraw, Self::Withdrawn, "Art. 15"),
    ];

    fn name(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Approved => "approved",
            Self::Forwarded => "forwarded",
            Self::Refused => "refused",
            Self::Closed => "closed",
            Self::Withdrawn => "withdrawn",
        }
    }

    fn event_name(event: TaskEvent) -> &'static str {
        match event {
            TaskEvent::Approve => "approval",
            TaskEvent::ApproveAndForward => "approval with forwarding to the region",
            TaskEvent::Refuse => "refusal",
            TaskEvent::Close => "closing",
            TaskEvent::Withdraw => "withdrawal",
        }
    }
}

/// A rectification order (督促整改, Art. 14, 15(2)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Order {
    Open,
    /// Its deadline passed unanswered: not by itself a refusal.
    Overdue,
    Rectified,
    /// The holding authority recorded that the agency refused (拒不整改).
    Refused,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrderEvent {
    DeadlinePassed,
    Rectified,
    Refused,
}

impl Machine for Order {
    type Event = OrderEvent;

    const STATES: &'static [Self] = &[Self::Open, Self::Overdue, Self::Rectified, Self::Refused];
    const EVENTS: &'static [OrderEvent] = &[
        OrderEvent::DeadlinePassed,
        OrderEvent::Rectified,
        OrderEvent::Refused,
    ];
    const TRANSITIONS: &'static [(Self, OrderEvent, Self, &'static str)] = &[
        (
            Self::Open,
            OrderEvent::DeadlinePassed,
            Self::Overdue,
            "Art. 14",
        ),
        (
            Self::Open,
            OrderEvent::Rectified,
            Self::Rectified,
            "Art. 14",
        ),
        (
            Self::Overdue,
            OrderEvent::Rectified,
            Self::Rectified,
            "Art. 14",
        ),
        (Self::Open, OrderEvent::Refused, Self::Refused, "Art. 15(2)"),
        (
            Self::Overdue,
            OrderEvent::Refused,
            Self::Refused,
            "Art. 15(2)",
        ),
    ];

    fn name(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Overdue => "overdue",
            Self::Rectified => "rectified",
            Self::Refused => "refused",
        }
    }

    fn event_name(event: OrderEvent) -> &'static str {
        match event {
            OrderEvent::DeadlinePassed => "the deadline passing",
            OrderEvent::Rectified => "rectification",
            OrderEvent::Refused => "refusal to rectify",
        }
    }
}

/// A change of filed facts (Art. 12), as filing holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Change {
    Submitted,
    Approved,
    Refused,
    /// The filing ended before the change was decided.
    Withdrawn,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeEvent {
    Approve,
    Refuse,
    Withdraw,
}

impl Machine for Change {
    type Event = ChangeEvent;

    const STATES: &'static [Self] = &[
        Self::Submitted,
        Self::Approved,
        Self::Refused,
        Self::Withdrawn,
    ];
    const EVENTS: &'static [ChangeEvent] = &[
        ChangeEvent::Approve,
        ChangeEvent::Refuse,
        ChangeEvent::Withdraw,
    ];
    const TRANSITIONS: &'static [(Self, ChangeEvent, Self, &'static str)] = &[
        (
            Self::Submitted,
            ChangeEvent::Approve,
            Self::Approved,
            "Art. 12",
        ),
        (
            Self::Submitted,
            ChangeEvent::Refuse,
            Self::Refused,
            "Art. 12",
        ),
        (
            Self::Submitted,
            ChangeEvent::Withdraw,
            Self::Withdrawn,
            "Art. 15",
        ),
    ];

    fn name(self) -> &'static str {
        match self {
            Self::Submitted => "submitted",
            Self::Approved => "approved",
            Self::Refused => "refused",
            Self::Withdrawn => "withdrawn",
        }
    }

    fn event_name(event: ChangeEvent) -> &'static str {
        match event {
            ChangeEvent::Approve => "approval",
            ChangeEvent::Refuse => "refusal",
            ChangeEvent::Withdraw => "withdrawal",
        }
    }
}

/// A complaint (Art. 24): received, accepted and handled within 15 working days, or referred
/// to the competent department, which may decline it back for re-routing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Complaint {
    Received,
    Accepted,
    Resolved,
    Referred,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ComplaintEvent {
    Accept,
    Resolve,
    Refer,
    /// The department was not competent: back to the regulator.
    Decline,
}

impl Machine for Complaint {
    type Event = ComplaintEvent;

    const STATES: &'static [Self] = &[
        Self::Received,
        Self::Accepted,
        Self::Resolved,
        Self::Referred,
    ];
    const EVENTS: &'static [ComplaintEvent] = &[
        ComplaintEvent::Accept,
        ComplaintEvent::Resolve,
        ComplaintEvent::Refer,
        ComplaintEvent::Decline,
    ];
    const TRANSITIONS: &'static [(Self, ComplaintEvent, Self, &'static str)] = &[
        (
            Self::Received,
            ComplaintEvent::Accept,
            Self::Accepted,
            "Art. 24",
        ),
        (
            Self::Accepted,
            ComplaintEvent::Resolve,
            Self::Resolved,
            "Art. 24",
        ),
        (
            Self::Received,
            ComplaintEvent::Refer,
            Self::Referred,
            "Art. 24",
        ),
        (
            Self::Accepted,
            ComplaintEvent::Refer,
            Self::Referred,
            "Art. 24",
        ),
        (
            Self::Referred,
            ComplaintEvent::Decline,
            Self::Received,
            "Art. 24",
        ),
    ];

    fn name(self) -> &'static str {
        match self {
            Self::Received => "received",
            Self::Accepted => "accepted",
            Self::Resolved => "resolved",
            Self::Referred => "referred",
        }
    }

    fn event_name(event: ComplaintEvent) -> &'static str {
        match event {
            ComplaintEvent::Accept => "acceptance",
            ComplaintEvent::Resolve => "resolution",
            ComplaintEvent::Refer => "referral",
            ComplaintEvent::Decline => "decline",
        }
    }
}

/// A referral of a complaint to a department (Art. 24): written, received by the department's
/// node (with its signed receipt), then acknowledged, or declined as outside its competence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Referral {
    Pending,
    Delivered,
    Acknowledged,
    Declined,
    /// Sent by letter: no node delivers it, and no receipt comes back.
    SentByLetter,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReferralEvent {
    /// The department's node answered with a receipt that verified.
    Deliver,
    Acknowledge,
    Decline,
}

impl Machine for Referral {
    type Event = ReferralEvent;

    const STATES: &'static [Self] = &[
        Self::Pending,
        Self::Delivered,
        Self::Acknowledged,
        Self::Declined,
        Self::SentByLetter,
    ];
    const EVENTS: &'static [ReferralEvent] = &[
        ReferralEvent::Deliver,
        ReferralEvent::Acknowledge,
        ReferralEvent::Decline,
    ];
    const TRANSITIONS: &'static [(Self, ReferralEvent, Self, &'static str)] = &[
        (
            Self::Pending,
            ReferralEvent::Deliver,
            Self::Delivered,
            "Art. 24",
        ),
        (
            Self::Delivered,
            ReferralEvent::Acknowledge,
            Self::Acknowledged,
            "Art. 24",
        ),
        (
            Self::Delivered,
            ReferralEvent::Decline,
            Self::Declined,
            "Art. 24",
        ),
        (
            Self::Acknowledged,
            ReferralEvent::Decline,
            Self::Declined,
            "Art. 24",
        ),
        (
            Self::SentByLetter,
            ReferralEvent::Acknowledge,
            Self::Acknowledged,
            "Art. 24",
        ),
        (
            Self::SentByLetter,
            ReferralEvent::Decline,
            Self::Declined,
            "Art. 24",
        ),
    ];

    fn name(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Acknowledged => "acknowledged",
            Self::Declined => "declined",
            Self::SentByLetter => "sent_by_letter",
        }
    }

    fn event_name(event: ReferralEvent) -> &'static str {
        match event {
            ReferralEvent::Deliver => "delivery",
            ReferralEvent::Acknowledge => "acknowledgement",
            ReferralEvent::Decline => "decline",
        }
    }
}

/// A pushed credit record (Art. 22): marked at once when an objection is filed, and unmarked
/// by the agency's decision, or deleted by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PushedRecord {
    Active,
    UnderObjection,
    Deleted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PushedRecordEvent {
    Object,
    Correct,
    Keep,
    Delete,
}

impl Machine for PushedRecord {
    type Event = PushedRecordEvent;

    const STATES: &'static [Self] = &[Self::Active, Self::UnderObjection, Self::Deleted];
    const EVENTS: &'static [PushedRecordEvent] = &[
        PushedRecordEvent::Object,
        PushedRecordEvent::Correct,
        PushedRecordEvent::Keep,
        PushedRecordEvent::Delete,
    ];
    const TRANSITIONS: &'static [(Self, PushedRecordEvent, Self, &'static str)] = &[
        (
            Self::Active,
            PushedRecordEvent::Object,
            Self::UnderObjection,
            "Art. 22",
        ),
        (
            Self::UnderObjection,
            PushedRecordEvent::Correct,
            Self::Active,
            "Art. 22",
        ),
        (
            Self::UnderObjection,
            PushedRecordEvent::Keep,
            Self::Active,
            "Art. 22",
        ),
        (
            Self::UnderObjection,
            PushedRecordEvent::Delete,
            Self::Deleted,
            "Art. 22",
        ),
    ];

    fn name(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::UnderObjection => "under_objection",
            Self::Deleted => "deleted",
        }
    }

    fn event_name(event: PushedRecordEvent) -> &'static str {
        match event {
            PushedRecordEvent::Object => "objection",
            PushedRecordEvent::Correct => "correction",
            PushedRecordEvent::Keep => "keeping",
            PushedRecordEvent::Delete => "deletion",
        }
    }
}

/// An objection to a pushed record (Art. 22): open until the agency decides it, once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Objection {
    Open,
    Corrected,
    Deleted,
    Kept,
}

impl Machine for Objection {
    type Event = PushedRecordEvent;

    const STATES: &'static [Self] = &[Self::Open, Self::Corrected, Self::Deleted, Self::Kept];
    const EVENTS: &'static [PushedRecordEvent] = &[
        PushedRecordEvent::Correct,
        PushedRecordEvent::Keep,
        PushedRecordEvent::Delete,
    ];
    const TRANSITIONS: &'static [(Self, PushedRecordEvent, Self, &'static str)] = &[
        (
            Self::Open,
            PushedRecordEvent::Correct,
            Self::Corrected,
            "Art. 22",
        ),
        (Self::Open, PushedRecordEvent::Keep, Self::Kept, "Art. 22"),
        (
            Self::Open,
            PushedRecordEvent::Delete,
            Self::Deleted,
            "Art. 22",
        ),
    ];

    fn name(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Corrected => "corrected",
            Self::Deleted => "deleted",
            Self::Kept => "kept",
        }
    }

    fn event_name(event: PushedRecordEvent) -> &'static str {
        PushedRecord::event_name(event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Walks every (state, event) pair against the table written out here by hand.
    fn walk<M: Machine>(expected: &[(M, M::Event, M)]) {
        for &from in M::STATES {
            for &event in M::EVENTS {
                let want = expected
                    .iter()
                    .find(|(f, e, _)| *f == from && *e == event)
                    .map(|(_, _, to)| *to);
                match (from.on(event), want) {
                    (Ok((to, article)), Some(want)) => {
                        assert_eq!(to, want, "{from:?} on {event:?}");
                        assert!(article.starts_with("Art. "), "{article}");
                    }
                    (Err(e), None) => {
                        assert_eq!(e.from, from.name());
                        assert!(!M::sources(event).contains(&from.name()));
                    }
                    (got, want) => panic!("{from:?} on {event:?}: got {got:?}, want {want:?}"),
                }
            }
        }
        for &s in M::STATES {
            assert_eq!(M::parse(s.name()), Some(s));
        }
        for &event in M::EVENTS {
            for (_, _, to, _) in M::TRANSITIONS.iter().filter(|(_, e, _, _)| *e == event) {
                assert_eq!(*to, M::target(event), "{event:?} leads to one state");
            }
        }
        assert_eq!(M::parse("nonsense"), None);
    }

    #[test]
    fn filing_pairs() {
        use Filing::*;
        use FilingEvent as E;
        walk::<Filing>(&[
            (Submitted, E::Approve, Active),
            (Submitted, E::Refuse, Refused),
            (Active, E::Revoke, Revoked),
            (Deregistering, E::Revoke, Revoked),
            (Active, E::MissAnnualReport, Revoked),
            (Active, E::RequestDeregistration, Deregistering),
            (Deregistering, E::RefuseDeregistration, Active),
            (Deregistering, E::CompleteDeregistration, Deregistered),
        ]);
        // The defect this machine exists for: a revoked filing never comes back.
        assert!(Revoked.on(E::Approve).is_err());
        assert_eq!(
            Revoked.on(E::Approve).unwrap_err().to_string(),
            "approval is not allowed while revoked"
        );
        // A pending application is refused under Art. 9, never revoked.
        assert!(Submitted.on(E::Revoke).is_err());
        // Deregistration starts with the agency.
        assert!(Active.on(E::CompleteDeregistration).is_err());
        // The Art. 11 cut-off spares an agency that applied to deregister.
        assert!(Deregistering.on(E::MissAnnualReport).is_err());
        assert_eq!(
            Filing::OPEN.to_vec(),
            Filing::STATES
                .iter()
                .filter(|s| s.is_open())
                .map(|s| s.name())
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn task_pairs() {
        use Task::*;
        use TaskEvent as E;
        walk::<Task>(&[
            (Open, E::Approve, Approved),
            (Open, E::ApproveAndForward, Forwarded),
            (Open, E::Refuse, Refused),
            (Open, E::Close, Closed),
            (Open, E::Withdraw, Withdrawn),
        ]);
        assert_eq!(Task::sources(E::Approve), ["open"]);
    }

    #[test]
    fn order_pairs() {
        use Order::*;
        use OrderEvent as E;
        walk::<Order>(&[
            (Open, E::DeadlinePassed, Overdue),
            (Open, E::Rectified, Rectified),
            (Overdue, E::Rectified, Rectified),
            (Open, E::Refused, Refused),
            (Overdue, E::Refused, Refused),
        ]);
    }

    #[test]
    fn change_pairs() {
        use Change::*;
        use ChangeEvent as E;
        walk::<Change>(&[
            (Submitted, E::Approve, Approved),
            (Submitted, E::Refuse, Refused),
            (Submitted, E::Withdraw, Withdrawn),
        ]);
    }

    #[test]
    fn complaint_pairs() {
        use Complaint::*;
        use ComplaintEvent as E;
        walk::<Complaint>(&[
            (Received, E::Accept, Accepted),
            (Accepted, E::Resolve, Resolved),
            (Received, E::Refer, Referred),
            (Accepted, E::Refer, Referred),
            (Referred, E::Decline, Received),
        ]);
    }

    #[test]
    fn pushed_record_pairs() {
        use PushedRecord::*;
        use PushedRecordEvent as E;
        walk::<PushedRecord>(&[
            (Active, E::Object, UnderObjection),
            (UnderObjection, E::Correct, Active),
            (UnderObjection, E::Keep, Active),
            (UnderObjection, E::Delete, Deleted),
        ]);
        // A deleted record is never marked or revived.
        assert!(Deleted.on(E::Object).is_err());
        assert!(Deleted.on(E::Correct).is_err());
    }

    #[test]
    fn objection_pairs() {
        use Objection::*;
        use PushedRecordEvent as E;
        walk::<Objection>(&[
            (Open, E::Correct, Corrected),
            (Open, E::Keep, Kept),
            (Open, E::Delete, Deleted),
        ]);
    }

    #[test]
    fn referral_pairs() {
        use Referral::*;
        use ReferralEvent as E;
        walk::<Referral>(&[
            (Pending, E::Deliver, Delivered),
            (Delivered, E::Acknowledge, Acknowledged),
            (Delivered, E::Decline, Declined),
            (Acknowledged, E::Decline, Declined),
            (SentByLetter, E::Acknowledge, Acknowledged),
            (SentByLetter, E::Decline, Declined),
        ]);
        // A letter is never delivered by a node.
        assert!(SentByLetter.on(E::Deliver).is_err());
    }
}

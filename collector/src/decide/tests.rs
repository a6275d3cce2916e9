//! The decision set's rules: one bump per change, one decision per subject, expiry, the
//! policy's restraint, caps, and the encoded set following the version.

use super::*;
use plumbline_wire::{Addr, ConsumerId};
use std::sync::Arc;

const NOW: u64 = 1_700_000_000_000;
const HOUR: u64 = 3_600_000;

fn empty() -> Decisions {
    Decisions::restore(Limits::default(), 5, Mode::Monitor, 1, Vec::new())
}

fn block(consumer: u8, ttl_ms: u64, by: &str) -> NewDecision {
    NewDecision {
        subject: Subject::Consumer(ConsumerId([consumer; 16])),
        action: Action::Block { status: 403 },
        ttl_ms,
        reason: "test".into(),
        created_by: by.into(),
    }
}

/// Plans and applies, as the store would after writing.
fn add(set: &mut Decisions, new: NewDecision, now: u64) -> u64 {
    let change = set.plan_add(new, BY_OPERATOR, now).unwrap();
    let id = change.added[0].decision.id;
    set.apply(change);
    id
}

#[test]
fn every_change_bumps_the_version_by_one() {
    let mut set = empty();
    let id = add(&mut set, block(1, HOUR, BY_OPERATOR), NOW);
    assert_eq!(set.version(), 6);
    set.apply(set.plan_mode(Mode::Enforce, BY_CONFIG, NOW).unwrap());
    assert_eq!((set.version(), set.mode()), (7, Mode::Enforce));
    set.apply(set.plan_remove_id(id, BY_OPERATOR, NOW).unwrap());
    assert_eq!((set.version(), set.len()), (8, 0));
}

#[test]
fn setting_the_mode_it_already_has_is_no_change() {
    assert_eq!(empty().plan_mode(Mode::Monitor, BY_CONFIG, NOW), None);
}

#[test]
fn a_new_decision_on_a_subject_replaces_the_old_in_one_change() {
    let mut set = empty();
    let first = add(&mut set, block(1, HOUR, BY_OPERATOR), NOW);
    let change = set
        .plan_add(block(1, 2 * HOUR, BY_OPERATOR), BY_OPERATOR, NOW)
        .unwrap();
    assert_eq!(change.removed[0].decision.id, first);
    let actions: Vec<_> = change.audit.iter().map(|e| e.action).collect();
    assert_eq!(actions, [AuditAction::Remove, AuditAction::Add]);
    set.apply(change);
    assert_eq!(set.len(), 1);
    assert_eq!(set.version(), 7);
    let held = set.on(&Subject::Consumer(ConsumerId([1; 16]))).unwrap();
    assert_eq!(held.decision.expires_at_ms, NOW + 2 * HOUR);
    assert!(set.get(first).is_none());
}

#[test]
fn ids_are_never_reused() {
    let mut set = empty();
    let a = add(&mut set, block(1, HOUR, BY_OPERATOR), NOW);
    set.apply(set.plan_remove_id(a, BY_OPERATOR, NOW).unwrap());
    let b = add(&mut set, block(1, HOUR, BY_OPERATOR), NOW);
    assert!(b > a);
}

#[test]
fn a_sweep_removes_only_expired_decisions_in_one_bump_with_an_audit_entry_each() {
    let mut set = empty();
    add(&mut set, block(1, HOUR, BY_OPERATOR), NOW);
    add(&mut set, block(2, HOUR, BY_OPERATOR), NOW);
    let kept = add(&mut set, block(3, 3 * HOUR, BY_OPERATOR), NOW);
    assert_eq!(set.plan_sweep(NOW + HOUR - 1), None, "nothing expired yet");

    let change = set.plan_sweep(NOW + HOUR).unwrap();
    assert_eq!(change.removed.len(), 2);
    assert!(change.audit.iter().all(|e| e.action == AuditAction::Expire));
    assert!(change.audit.iter().all(|e| e.who == BY_EXPIRY));
    let before = set.version();
    set.apply(change);
    assert_eq!(set.version(), before + 1);
    let left: Vec<u64> = set.iter().map(|d| d.decision.id).collect();
    assert_eq!(left, [kept]);
    assert_eq!(set.plan_sweep(NOW + HOUR), None);
}

#[test]
fn the_policy_never_overrides_an_operator_or_shortens_a_longer_decision() {
    let mut set = empty();
    let operator = add(&mut set, block(1, HOUR, BY_OPERATOR), NOW);
    let proposal = set.plan_policy(block(1, 5 * HOUR, BY_POLICY), NOW).unwrap();
    assert_eq!(proposal, Proposal::Kept(operator));

    let Proposal::Change(change) = set.plan_policy(block(2, 2 * HOUR, BY_POLICY), NOW).unwrap()
    else {
        panic!("a new subject gets a decision");
    };
    let by_policy = change.added[0].decision.id;
    set.apply(change);
    let shorter = set.plan_policy(block(2, HOUR, BY_POLICY), NOW).unwrap();
    assert_eq!(shorter, Proposal::Kept(by_policy));
    let longer = set.plan_policy(block(2, 5 * HOUR, BY_POLICY), NOW).unwrap();
    assert!(matches!(longer, Proposal::Change(_)));
}

#[test]
fn an_alert_updated_every_window_renews_its_block_only_past_half_its_ttl() {
    // Before, each update of the alert replaced the block with a new decision a few seconds
    // longer: the demo's only decision had id 2, and the audit log churned every window.
    let mut set = empty();
    let Proposal::Change(change) = set.plan_policy(block(2, HOUR, BY_POLICY), NOW).unwrap() else {
        panic!("a new subject gets a decision");
    };
    let id = change.added[0].decision.id;
    set.apply(change);

    let next_window = set
        .plan_policy(block(2, HOUR, BY_POLICY), NOW + 60_000)
        .unwrap();
    assert_eq!(next_window, Proposal::Kept(id));
    let past_half = set
        .plan_policy(block(2, HOUR, BY_POLICY), NOW + HOUR / 2 + 1)
        .unwrap();
    assert!(matches!(past_half, Proposal::Change(_)));
}

#[test]
fn past_the_cap_new_subjects_are_refused_but_replacements_are_allowed() {
    let limits = Limits {
        max_decisions: 1,
        ..Limits::default()
    };
    let mut set = Decisions::restore(limits, 0, Mode::Monitor, 1, Vec::new());
    add(&mut set, block(1, HOUR, BY_OPERATOR), NOW);
    let refused = set.plan_add(block(2, HOUR, BY_OPERATOR), BY_OPERATOR, NOW);
    assert_eq!(refused, Err(DecideError::Full { max: 1 }));
    assert!(set
        .plan_add(block(1, HOUR, BY_OPERATOR), BY_OPERATOR, NOW)
        .is_ok());
}

#[test]
fn a_ttl_past_the_maximum_is_refused_naming_both() {
    let err = empty()
        .plan_add(block(1, 31 * 24 * HOUR, BY_OPERATOR), BY_OPERATOR, NOW)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "ttl 31d is longer than the longest allowed (30d, decisions.max_ttl)"
    );
}

#[test]
fn removing_what_is_not_there_says_what_was_asked() {
    let set = empty();
    assert_eq!(
        set.plan_remove_id(9, BY_OPERATOR, NOW),
        Err(DecideError::NoSuchId(9))
    );
    let subject = Subject::Prefix {
        addr: Addr::V4([10, 0, 0, 0]),
        bits: 8,
    };
    let err = set
        .plan_remove_subject(&subject, BY_OPERATOR, NOW)
        .unwrap_err();
    assert_eq!(err.to_string(), "no decision applies to address 10.0.0.0/8");
}

#[test]
fn the_encoded_set_is_reused_until_the_version_changes() {
    let mut set = empty();
    let first = set.encoded();
    assert!(
        Arc::ptr_eq(&first, &set.encoded()),
        "same version, same bytes"
    );

    add(&mut set, block(1, HOUR, BY_OPERATOR), NOW);
    let second = set.encoded();
    assert!(!Arc::ptr_eq(&first, &second));
    let decoded: DecisionSet = postcard::from_bytes(&second).unwrap();
    assert_eq!(decoded.version, set.version());
    assert_eq!(decoded.decisions.len(), 1);

    set.apply(set.plan_mode(Mode::Enforce, BY_CONFIG, NOW).unwrap());
    let third: DecisionSet = postcard::from_bytes(&set.encoded()).unwrap();
    assert_eq!(third.mode, Mode::Enforce, "a mode change re-encodes too");
}

//! The policy: the mode sent to filters (monitor or enforce), the rules that turn an alert into
//! a decision, and the allowlist of consumers never blocked, all from the config file's
//! `[policy]` table.
//!
//! [`Policy::decide`] takes what the alerts stage knows of an alert (id, detector, severity,
//! consumer) and answers the decision to make, if any: the first rule, in file order, whose
//! detector matches (or is `any`) and whose minimum severity the alert reaches. In monitor mode
//! the policy still makes decisions; filters then only flag requests as would-block.

use super::parse::{self, ParseError};
use super::view::{DEFAULT_BLOCK_STATUS, THROTTLE_STATUS};
use super::{NewDecision, BY_POLICY};
use hashbrown::HashSet;
use plumbline_detect::Detector;
use plumbline_wire::{Action, ConsumerId, Mode, Subject};
use serde::Deserialize;

/// A rule's detector that matches every detector.
pub const ANY_DETECTOR: &str = "any";

/// How bad an alert is: the detection engine's, ordered, so a rule's minimum compares.
pub use plumbline_detect::Severity;

/// What the policy needs of an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicyAlert<'a> {
    pub id: u64,
    /// The detector's name, like `enumeration`.
    pub detector: &'a str,
    pub severity: Severity,
    pub consumer: ConsumerId,
}

/// The `[policy]` table of the config file.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// `monitor` (default) or `enforce`.
    pub mode: Option<ModeName>,
    /// Consumer ids (32 hex digits) never blocked or throttled.
    #[serde(default)]
    pub allowlist: Vec<String>,
    #[serde(default)]
    pub rule: Vec<RuleConfig>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModeName {
    Monitor,
    Enforce,
}

/// One `[[policy.rule]]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// A detector name, or `any`.
    pub detector: String,
    pub min_severity: Severity,
    pub action: RuleAction,
    /// Block status (default 403).
    pub status: Option<u16>,
    /// Throttle rate, like `10/s`.
    pub rate: Option<String>,
    /// Throttle burst (default: one second's worth).
    pub burst: Option<u32>,
    pub ttl: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleAction {
    Block,
    Throttle,
}

/// A policy setting that cannot be used, named by its key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("config value {key} is not valid: {message}")]
pub struct PolicyError {
    pub key: String,
    pub message: String,
}

/// One checked rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub detector: String,
    pub min_severity: Severity,
    pub action: Action,
    pub ttl_ms: u64,
}

/// The checked policy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    pub mode: Mode,
    pub rules: Vec<Rule>,
    allowlist: HashSet<ConsumerId>,
}

impl Policy {
    /// Checks the `[policy]` table; `max_ttl_ms` bounds rule TTLs.
    pub fn from_config(config: &PolicyConfig, max_ttl_ms: u64) -> Result<Policy, PolicyError> {
        let mode = match config.mode {
            Some(ModeName::Enforce) => Mode::Enforce,
            Some(ModeName::Monitor) | None => Mode::Monitor,
        };
        let mut allowlist = HashSet::new();
        for (i, text) in config.allowlist.iter().enumerate() {
            let id = text.trim().parse().map_err(|e| PolicyError {
                key: format!("policy.allowlist[{i}]"),
                message: format!("{e}"),
            })?;
            allowlist.insert(id);
        }
        let rules = config
            .rule
            .iter()
            .enumerate()
            .map(|(i, rule)| check_rule(rule, max_ttl_ms).map_err(|e| e.at(i)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Policy {
            mode,
            rules,
            allowlist,
        })
    }

    /// Whether the consumer may never be blocked or throttled.
    pub fn allows(&self, consumer: &ConsumerId) -> bool {
        self.allowlist.contains(consumer)
    }

    /// Whether a decision on `subject` is refused by the allowlist.
    pub fn protects(&self, subject: &Subject) -> bool {
        match subject {
            Subject::Consumer(id) => self.allows(id),
            Subject::Prefix { .. } => false,
        }
    }

    /// The decision an alert calls for, if any: the first matching rule's action and TTL on
    /// the alert's consumer; none for an allowlisted consumer.
    pub fn decide(&self, alert: &PolicyAlert<'_>) -> Option<NewDecision> {
        if self.allows(&alert.consumer) {
            return None;
        }
        let rule = self.rules.iter().find(|r| r.matches(alert))?;
        Some(NewDecision {
            subject: Subject::Consumer(alert.consumer),
            action: rule.action,
            ttl_ms: rule.ttl_ms,
            reason: format!(
                "alert {} ({}, {})",
                alert.id,
                alert.detector,
                alert.severity.name()
            ),
            created_by: BY_POLICY.to_string(),
        })
    }
}

impl Rule {
    fn matches(&self, alert: &PolicyAlert<'_>) -> bool {
        let detector = self.detector == ANY_DETECTOR || self.detector == alert.detector;
        detector && alert.severity >= self.min_severity
    }
}

/// A rule's problem before its index is known.
struct RuleError {
    field: &'static str,
    message: String,
}

impl RuleError {
    fn at(self, index: usize) -> PolicyError {
        PolicyError {
            key: format!("policy.rule[{index}].{}", self.field),
            message: self.message,
        }
    }
}

fn rule_error(field: &'static str, message: impl ToString) -> RuleError {
    RuleError {
        field,
        message: message.to_string(),
    }
}

fn check_rule(rule: &RuleConfig, max_ttl_ms: u64) -> Result<Rule, RuleError> {
    let known = rule.detector == ANY_DETECTOR || Detector::from_name(&rule.detector).is_some();
    if !known {
        let message = format!(
            "unknown detector {:?}; known: {}, or {ANY_DETECTOR}",
            rule.detector,
            Detector::ALL.map(Detector::name).join(", ")
        );
        return Err(rule_error("detector", message));
    }
    let ttl_ms = parse::ttl_ms(&rule.ttl).map_err(|e| rule_error("ttl", e))?;
    if ttl_ms > max_ttl_ms {
        let message = format!(
            "{} is longer than decisions.max_ttl ({})",
            rule.ttl,
            parse::format_ttl(max_ttl_ms)
        );
        return Err(rule_error("ttl", message));
    }
    Ok(Rule {
        detector: rule.detector.clone(),
        min_severity: rule.min_severity,
        action: rule_action(rule)?,
        ttl_ms,
    })
}

fn rule_action(rule: &RuleConfig) -> Result<Action, RuleError> {
    match rule.action {
        RuleAction::Block => {
            if rule.rate.is_some() || rule.burst.is_some() {
                return Err(rule_error("rate", "rate and burst apply to throttle rules"));
            }
            let status = rule.status.unwrap_or(DEFAULT_BLOCK_STATUS);
            let status = parse::block_status(status).map_err(|e| rule_error("status", e))?;
            Ok(Action::Block { status })
        }
        RuleAction::Throttle => {
            if rule.status.is_some_and(|s| s != THROTTLE_STATUS) {
                return Err(rule_error("status", "a throttle always answers 429"));
            }
            let rate = rule
                .rate
                .as_deref()
                .ok_or_else(|| rule_error("rate", "a throttle rule needs a rate, like \"10/s\""))?;
            let per_hour =
                parse::rate_per_hour(rate).map_err(|e: ParseError| rule_error("rate", e))?;
            let burst = rule.burst.unwrap_or(Action::default_burst(per_hour)).max(1);
            Ok(Action::Throttle { per_hour, burst })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY_MS: u64 = 86_400_000;

    fn policy(toml_text: &str) -> Result<Policy, PolicyError> {
        let config: PolicyConfig = toml::from_str(toml_text).unwrap();
        Policy::from_config(&config, 30 * DAY_MS)
    }

    fn alert(detector: &str, severity: Severity, consumer: u8) -> PolicyAlert<'_> {
        PolicyAlert {
            id: 17,
            detector,
            severity,
            consumer: ConsumerId([consumer; 16]),
        }
    }

    const RULES: &str = r#"
        mode = "enforce"
        allowlist = ["07070707070707070707070707070707"]
        [[rule]]
        detector = "enumeration"
        min_severity = "high"
        action = "block"
        ttl = "1h"
        [[rule]]
        detector = "any"
        min_severity = "medium"
        action = "throttle"
        rate = "600/m"
        ttl = "30m"
    "#;

    #[test]
    fn a_high_enumeration_alert_blocks_its_consumer_for_the_rules_ttl() {
        let policy = policy(RULES).unwrap();
        assert_eq!(policy.mode, Mode::Enforce);
        let decided = policy
            .decide(&alert("enumeration", Severity::High, 1))
            .unwrap();
        assert_eq!(decided.subject, Subject::Consumer(ConsumerId([1; 16])));
        assert_eq!(decided.action, Action::Block { status: 403 });
        assert_eq!(decided.ttl_ms, 3_600_000);
        assert_eq!(decided.reason, "alert 17 (enumeration, high)");
        assert_eq!(decided.created_by, "policy");
    }

    #[test]
    fn the_first_matching_rule_wins_and_any_matches_every_detector() {
        let policy = policy(RULES).unwrap();
        let medium = policy
            .decide(&alert("enumeration", Severity::Medium, 1))
            .unwrap();
        let expected = Action::Throttle {
            per_hour: 36_000,
            burst: 10,
        };
        assert_eq!(medium.action, expected);
        let other = policy
            .decide(&alert("volume_surge", Severity::High, 1))
            .unwrap();
        assert_eq!(other.action, expected);
    }

    #[test]
    fn an_alert_below_every_rules_severity_makes_no_decision() {
        let policy = policy(RULES).unwrap();
        assert_eq!(policy.decide(&alert("enumeration", Severity::Low, 1)), None);
    }

    #[test]
    fn an_allowlisted_consumer_is_never_decided_on() {
        let policy = policy(RULES).unwrap();
        assert!(policy.allows(&ConsumerId([7; 16])));
        assert_eq!(
            policy.decide(&alert("enumeration", Severity::High, 7)),
            None
        );
        assert!(policy.protects(&Subject::Consumer(ConsumerId([7; 16]))));
    }

    #[test]
    fn the_default_policy_monitors_and_decides_nothing() {
        let policy = policy("").unwrap();
        assert_eq!(policy.mode, Mode::Monitor);
        assert_eq!(
            policy.decide(&alert("enumeration", Severity::High, 1)),
            None
        );
    }

    #[test]
    fn a_bad_rule_is_refused_naming_its_key() {
        let cases = [
            ("detector = \"enumeraton\"\nmin_severity = \"high\"\naction = \"block\"\nttl = \"1h\"",
             "policy.rule[0].detector"),
            ("detector = \"any\"\nmin_severity = \"high\"\naction = \"block\"\nttl = \"1x\"",
             "policy.rule[0].ttl"),
            ("detector = \"any\"\nmin_severity = \"high\"\naction = \"block\"\nttl = \"90d\"",
             "policy.rule[0].ttl"),
            ("detector = \"any\"\nmin_severity = \"high\"\naction = \"throttle\"\nttl = \"1h\"",
             "policy.rule[0].rate"),
            ("detector = \"any\"\nmin_severity = \"high\"\naction = \"block\"\nstatus = 200\n\
              ttl = \"1h\"", "policy.rule[0].status"),
        ];
        for (rule, key) in cases {
            let err = policy(&format!("[[rule]]\n{rule}")).unwrap_err();
            assert_eq!(err.key, key, "{err}");
        }
        let err = policy("allowlist = [\"nothex\"]").unwrap_err();
        assert_eq!(err.key, "policy.allowlist[0]");
    }

    #[test]
    fn an_unknown_severity_or_action_is_refused_by_the_config_parser() {
        let bad = "[[rule]]\ndetector = \"any\"\nmin_severity = \"huge\"\naction = \"block\"\n\
                   ttl = \"1h\"";
        assert!(toml::from_str::<PolicyConfig>(bad).is_err());
    }
}

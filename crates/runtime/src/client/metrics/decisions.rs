//! The metrics of the decision logs, pure over folded decisions.

use super::{ratio, Reviews};
use crate::client::decisions::Decision;
use serde::Serialize;
use society_core::governance::Level;
use std::collections::BTreeMap;

/// One case's share of decisions that asked for approval.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CaseRate {
    /// The case (null: decisions outside any case).
    pub case: Option<String>,
    pub decisions: u64,
    /// Decisions with an `approval_requested` record.
    pub asked: u64,
    pub rate: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CaseConfidence {
    pub case: Option<String>,
    /// Decisions with a confidence score.
    pub scored: u64,
    pub avg_confidence: Option<f64>,
}

/// Resolved and approved decisions of one level and type.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApprovalCount {
    pub level: String,
    pub decision_type: String,
    pub resolved: u64,
    pub approved: u64,
}

#[derive(Debug, Default)]
pub(super) struct Folded {
    pub distribution: BTreeMap<String, u64>,
    pub approval_rate: BTreeMap<String, BTreeMap<String, f64>>,
    pub approval_counts: Vec<ApprovalCount>,
    pub request_rate_by_case: Vec<CaseRate>,
    pub confidence_by_case: Vec<CaseConfidence>,
    pub revisions_per_decision: Option<f64>,
    pub reviews: Reviews,
    pub unreviewed_autonomous: u64,
}

/// `decisions` in assessment order.
pub(super) fn fold(decisions: &[Decision]) -> Folded {
    let mut f = Folded::default();
    for level in [
        Level::Autonomous,
        Level::Collaborative,
        Level::RequiresApproval,
    ] {
        f.distribution.insert(level.as_str().to_string(), 0);
    }
    // (level, type) → (resolved, approved)
    let mut counts: BTreeMap<(String, String), (u64, u64)> = BTreeMap::new();
    // Cases in order of their first decision.
    let mut cases: Vec<Option<String>> = Vec::new();
    let mut per_case: BTreeMap<Option<String>, (u64, u64, u64, f64)> = BTreeMap::new();
    let (mut roots, mut revisions) = (0u64, 0u64);
    for d in decisions {
        *f.distribution.entry(d.level.clone()).or_default() += 1;
        if let Some(r) = &d.resolved {
            let c = counts
                .entry((d.level.clone(), d.decision_type.clone()))
                .or_default();
            c.0 += 1;
            c.1 += u64::from(r.approved);
        }
        if !per_case.contains_key(&d.case) {
            cases.push(d.case.clone());
        }
        let c = per_case.entry(d.case.clone()).or_default();
        c.0 += 1;
        c.1 += u64::from(d.asked_approval);
        if let Some(conf) = d.confidence {
            c.2 += 1;
            c.3 += conf;
        }
        if d.parent.is_some() {
            revisions += 1;
        } else {
            roots += 1;
        }
        match &d.reviewed {
            Some(r) if r.ok => f.reviews.ok += 1,
            Some(_) => f.reviews.vetoed += 1,
            None => {}
        }
        f.unreviewed_autonomous += u64::from(d.unreviewed_autonomous());
    }
    for ((level, kind), (resolved, approved)) in counts {
        if let Some(rate) = ratio(approved as f64, resolved as f64) {
            f.approval_rate
                .entry(level.clone())
                .or_default()
                .insert(kind.clone(), rate);
        }
        f.approval_counts.push(ApprovalCount {
            level,
            decision_type: kind,
            resolved,
            approved,
        });
    }
    for case in cases {
        let (n, asked, scored, sum) = per_case[&case];
        f.request_rate_by_case.push(CaseRate {
            case: case.clone(),
            decisions: n,
            asked,
            rate: ratio(asked as f64, n as f64).unwrap_or(0.0),
        });
        f.confidence_by_case.push(CaseConfidence {
            case,
            scored,
            avg_confidence: ratio(sum, scored as f64),
        });
    }
    f.revisions_per_decision = ratio(revisions as f64, roots as f64);
    f
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::client::decisions::{Resolved, Reviewed};

    fn decision(id: &str, case: &str, level: &str, asked: bool, conf: f64) -> Decision {
        Decision {
            id: id.into(),
            agent: "director".into(),
            ts: String::new(),
            case: Some(case.into()),
            decision_type: "lighting".into(),
            level: level.into(),
            rule: None,
            confidence: Some(conf),
            plan: String::new(),
            revision: None,
            parent: None,
            approval_request: None,
            asked_approval: asked,
            debated: false,
            resolved: None,
            reviewed: None,
        }
    }

    #[test]
    fn rates_by_case_keep_the_order_of_first_decisions() {
        let mut ds = vec![
            decision("a", "ep-2", "requires_approval", true, 0.5),
            decision("b", "ep-1", "autonomous", false, 0.9),
            decision("c", "ep-2", "autonomous", false, 0.7),
        ];
        ds[0].resolved = Some(Resolved {
            ts: String::new(),
            approved: false,
            approver: Some("orchestrator".into()),
            outcome: Some("revise".into()),
        });
        ds[1].resolved = Some(Resolved {
            ts: String::new(),
            approved: true,
            approver: Some("self".into()),
            outcome: Some("executed".into()),
        });
        ds[2].resolved = ds[1].resolved.clone();
        ds[2].reviewed = Some(Reviewed {
            ts: String::new(),
            ok: false,
        });
        let mut rev = decision("d", "ep-2", "collaborative", false, 0.6);
        rev.parent = Some("a".into());
        ds.push(rev);
        let f = fold(&ds);
        let order: Vec<_> = f
            .request_rate_by_case
            .iter()
            .map(|c| c.case.clone())
            .collect();
        assert_eq!(order, [Some("ep-2".into()), Some("ep-1".into())]);
        assert_eq!(
            f.request_rate_by_case[0].rate, 0.333333333,
            "1 of 3, rounded"
        );
        assert_eq!(f.request_rate_by_case[1].rate, 0.0);
        assert_eq!(f.confidence_by_case[0].avg_confidence, Some(0.6));
        assert_eq!(f.distribution["autonomous"], 2);
        assert_eq!(f.distribution["collaborative"], 1);
        assert_eq!(f.distribution["requires_approval"], 1);
        assert_eq!(f.approval_rate["requires_approval"]["lighting"], 0.0);
        assert_eq!(f.approval_rate["autonomous"]["lighting"], 1.0);
        assert!(!f.approval_rate.contains_key("collaborative"), "unresolved");
        assert_eq!(f.revisions_per_decision, Some(0.333333333), "d of a, b, c");
        assert_eq!(f.reviews, Reviews { ok: 0, vetoed: 1 });
        assert_eq!(f.unreviewed_autonomous, 1, "b only: c was reviewed");
    }
}

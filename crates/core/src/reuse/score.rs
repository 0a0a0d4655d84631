//! How well a folder's experience matches a new purpose (SOCIETY O4):
//!
//! ```text
//! domain×10 + skill×5 + technology×3 + success_rate×5 + recency + min(cases/10, 5)
//! ```
//!
//! * **domain**: the purpose's tags (`--tag`) the folder has worked in (the
//!   tags of its earlier purposes), each once;
//! * **skill**: the purpose's words (its text and tags) found in the names
//!   of the folder's skills (`skills/review-checklist.md` → `review`,
//!   `checklist`);
//! * **technology**: the purpose's words found in the folder's earlier
//!   purposes' texts and the message types it has handled
//!   (`code_review` → `code`, `review`);
//! * **success_rate**: handled / consumed, 0..1;
//! * **recency**: +5 if active in the last 7 days, +2 in the last 30;
//! * **experience**: messages consumed / 10, at most 5.
//!
//! Words are lowercased runs of letters and digits of at least three
//! characters, minus a few stop words. A folder is a match only if one of
//! domain, skill or technology matched: experience in another domain is no
//! reason to reuse a folder (O4: a new folder when the domain differs).
//! Pure: the caller gathers the [`Profile`]s.

use serde::Serialize;
use std::collections::BTreeSet;

/// What a new purpose asks for.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub purpose: String,
    pub tags: Vec<String>,
}

/// What a candidate folder has to offer.
#[derive(Debug, Clone, Default)]
pub struct Profile {
    pub tags: Vec<String>,
    pub skills: Vec<String>,
    pub purposes: Vec<String>,
    pub message_types: Vec<String>,
    pub success_rate: f64,
    /// Messages consumed, ever.
    pub cases: u64,
    /// Days since last active; `None` if never.
    pub idle_days: Option<f64>,
}

/// One term of a score: its points and what earned them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Term {
    pub points: f64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub matched: Vec<String>,
}

/// A score broken down by term.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Score {
    pub domain: Term,
    pub skill: Term,
    pub technology: Term,
    pub success_rate: Term,
    pub recency: Term,
    pub experience: Term,
    pub total: f64,
    /// Whether domain, skill or technology matched at all.
    pub relevant: bool,
}

pub const DOMAIN: f64 = 10.0;
pub const SKILL: f64 = 5.0;
pub const TECHNOLOGY: f64 = 3.0;
pub const SUCCESS: f64 = 5.0;

const STOP: &[&str] = &[
    "the", "and", "for", "with", "from", "into", "that", "this", "our", "all", "new", "are", "its",
    "was", "will", "about",
];

/// The words of `text` that count.
pub fn words(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .map(str::to_lowercase)
        .filter(|w| w.chars().count() >= 3 && !STOP.contains(&w.as_str()))
        .collect()
}

fn term(per: f64, matched: BTreeSet<String>) -> Term {
    Term {
        points: per * matched.len() as f64,
        matched: matched.into_iter().collect(),
    }
}

/// Scores one candidate.
pub fn score(q: &Query, p: &Profile) -> Score {
    let qtags: BTreeSet<String> = q.tags.iter().map(|t| t.to_lowercase()).collect();
    let ptags: BTreeSet<String> = p.tags.iter().map(|t| t.to_lowercase()).collect();
    let mut qwords = words(&q.purpose);
    for t in &q.tags {
        qwords.extend(words(t));
    }
    let bag =
        |items: &[String]| -> BTreeSet<String> { items.iter().flat_map(|s| words(s)).collect() };
    let skill_words = bag(&p.skills);
    let mut tech_words = bag(&p.purposes);
    tech_words.extend(bag(&p.message_types));

    let domain = term(DOMAIN, qtags.intersection(&ptags).cloned().collect());
    let skill = term(SKILL, qwords.intersection(&skill_words).cloned().collect());
    let technology = term(
        TECHNOLOGY,
        qwords.intersection(&tech_words).cloned().collect(),
    );
    let rate = p.success_rate.clamp(0.0, 1.0);
    let success_rate = Term {
        points: rate * SUCCESS,
        matched: Vec::new(),
    };
    let recency = Term {
        points: match p.idle_days {
            Some(d) if d <= 7.0 => 5.0,
            Some(d) if d <= 30.0 => 2.0,
            _ => 0.0,
        },
        matched: Vec::new(),
    };
    let experience = Term {
        points: (p.cases as f64 / 10.0).min(5.0),
        matched: Vec::new(),
    };
    let relevant =
        !(domain.matched.is_empty() && skill.matched.is_empty() && technology.matched.is_empty());
    let total = domain.points
        + skill.points
        + technology.points
        + success_rate.points
        + recency.points
        + experience.points;
    Score {
        domain,
        skill,
        technology,
        success_rate,
        recency,
        experience,
        total,
        relevant,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(purpose: &str, tags: &[&str]) -> Query {
        Query {
            purpose: purpose.into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
        }
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn each_term_by_hand() {
        let p = Profile {
            tags: s(&["Legal", "contracts"]),
            skills: s(&["review-checklist.md", "tone"]),
            purposes: s(&["review the NDA drafts"]),
            message_types: s(&["code_review", "draft"]),
            success_rate: 0.8,
            cases: 23,
            idle_days: Some(3.0),
        };
        let sc = score(
            &q("Review supplier contracts and drafts", &["legal", "tax"]),
            &p,
        );
        assert_eq!(sc.domain.matched, s(&["legal"]));
        assert_eq!(sc.domain.points, 10.0);
        // purpose words: review, supplier, contracts, drafts, legal, tax
        assert_eq!(sc.skill.matched, s(&["review"]));
        assert_eq!(sc.skill.points, 5.0);
        assert_eq!(sc.technology.matched, s(&["drafts", "review"]));
        assert_eq!(sc.technology.points, 6.0);
        assert_eq!(sc.success_rate.points, 4.0);
        assert_eq!(sc.recency.points, 5.0);
        assert!((sc.experience.points - 2.3).abs() < 1e-9);
        assert!((sc.total - (10.0 + 5.0 + 6.0 + 4.0 + 5.0 + 2.3)).abs() < 1e-9);
        assert!(sc.relevant);
    }

    #[test]
    fn recency_and_experience_bounds() {
        let table = [
            (Some(0.5), 5.0),
            (Some(7.0), 5.0),
            (Some(8.0), 2.0),
            (Some(30.0), 2.0),
            (Some(31.0), 0.0),
            (None, 0.0),
        ];
        for (idle, want) in table {
            let p = Profile {
                idle_days: idle,
                ..Profile::default()
            };
            assert_eq!(
                score(&Query::default(), &p).recency.points,
                want,
                "{idle:?}"
            );
        }
        for (cases, want) in [(0, 0.0), (10, 1.0), (49, 4.9), (50, 5.0), (5000, 5.0)] {
            let p = Profile {
                cases,
                ..Profile::default()
            };
            let got = score(&Query::default(), &p).experience.points;
            assert!((got - want).abs() < 1e-9, "{cases}: {got}");
        }
    }

    #[test]
    fn busy_but_unrelated_is_not_relevant() {
        let p = Profile {
            tags: s(&["finance"]),
            purposes: s(&["quarterly accounts"]),
            success_rate: 1.0,
            cases: 500,
            idle_days: Some(0.0),
            ..Profile::default()
        };
        let sc = score(&q("write a poem", &["poetry"]), &p);
        assert!(!sc.relevant);
        assert_eq!(sc.total, 15.0);
    }

    #[test]
    fn the_domain_expert_beats_the_busy_generalist() {
        let expert = Profile {
            tags: s(&["legal"]),
            purposes: s(&["contract review"]),
            success_rate: 0.5,
            cases: 5,
            idle_days: Some(20.0),
            ..Profile::default()
        };
        let busy = Profile {
            tags: s(&["marketing"]),
            purposes: s(&["contract templates"]),
            success_rate: 1.0,
            cases: 400,
            idle_days: Some(0.0),
            ..Profile::default()
        };
        let query = q("review a contract", &["legal"]);
        let (a, b) = (score(&query, &expert), score(&query, &busy));
        assert!(a.total > b.total, "{} vs {}", a.total, b.total);
    }

    #[test]
    fn words_skip_short_and_stop_words() {
        let w: Vec<String> = words("The API for a new Payments-service, v2!")
            .into_iter()
            .collect();
        assert_eq!(w, s(&["api", "payments", "service"]));
    }
}

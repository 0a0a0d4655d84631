//! Recall ranking, pure: BM25 over a memory's text and tags, scaled up for
//! recent memories. Everything is a function of the documents' term counts,
//! their timestamps and `now`, so a ranking can be explained number by number
//! (`society memory AGENT query TEXT` prints the parts).
//!
//! * Terms: lowercase runs of letters and digits (`"Dragon's-fire"` →
//!   `dragon`, `s`, `fire`).
//! * A tag's terms count [`TAG_WEIGHT`] times (BM25F with one weighted
//!   field): `tf = text_count + TAG_WEIGHT × tag_count`, and the document
//!   length is weighted the same way.
//! * `bm25 = Σ over distinct query terms of idf × tf × (K1 + 1) / (tf + K1 ×
//!   (1 − B + B × len / avg_len))`, with `idf = ln(1 + (N − n + 0.5) / (n + 0.5))`
//!   (N memories, n of them holding the term).
//! * `recency = 0.5 ^ (age / HALF_LIFE)` (1 for a memory made now, ½ a
//!   half-life ago), and `score = bm25 × (1 + RECENCY_WEIGHT × recency)`: a
//!   new memory is worth at most 1.5 times an old one of equal relevance,
//!   so recency reorders close matches but never makes an unrelated memory
//!   relevant. Memories matching no query term are not recalled.
//! * A query with no terms recalls the most recent memories (score = recency).
//! * Ties: the newer memory first, then the later one in the file.

use std::collections::BTreeMap;

/// BM25 term-frequency saturation.
pub const K1: f64 = 1.2;
/// BM25 length normalisation.
pub const B: f64 = 0.75;
/// How many text occurrences one occurrence in a tag is worth.
pub const TAG_WEIGHT: f64 = 2.0;
/// How much a brand-new memory is lifted (`score = bm25 × (1 + w × recency)`).
pub const RECENCY_WEIGHT: f64 = 0.5;
/// The age at which the recency lift halves: 7 days, in milliseconds.
pub const HALF_LIFE_MS: f64 = 7.0 * 24.0 * 3600.0 * 1000.0;

/// The terms of a text, in order, with repeats.
pub fn terms(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// Term counts of a text.
pub fn counts<'a>(texts: impl IntoIterator<Item = &'a str>) -> BTreeMap<String, u32> {
    let mut out = BTreeMap::new();
    for text in texts {
        for t in terms(text) {
            *out.entry(t).or_insert(0) += 1;
        }
    }
    out
}

/// What ranking needs of one memory.
#[derive(Debug, Clone, Copy)]
pub struct DocTerms<'a> {
    pub text: &'a BTreeMap<String, u32>,
    pub tags: &'a BTreeMap<String, u32>,
    /// When it was remembered (Unix ms).
    pub ts_ms: u64,
}

impl DocTerms<'_> {
    fn tf(&self, term: &str) -> f64 {
        f64::from(self.text.get(term).copied().unwrap_or(0))
            + TAG_WEIGHT * f64::from(self.tags.get(term).copied().unwrap_or(0))
    }
    fn len(&self) -> f64 {
        // Summed as f64: counts come from a file (the index) and may be huge.
        self.text.values().map(|n| f64::from(*n)).sum::<f64>()
            + TAG_WEIGHT * self.tags.values().map(|n| f64::from(*n)).sum::<f64>()
    }
}

/// One recalled memory and how its score was made.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    /// Index into the documents given.
    pub doc: usize,
    pub score: f64,
    pub bm25: f64,
    pub recency: f64,
    /// The query terms it holds.
    pub matched: Vec<String>,
}

/// `0.5 ^ (age / HALF_LIFE)`; a timestamp in the future counts as now.
pub fn recency(ts_ms: u64, now_ms: u64) -> f64 {
    let age = now_ms.saturating_sub(ts_ms) as f64;
    0.5f64.powf(age / HALF_LIFE_MS)
}

/// The best `k` documents for `query` at `now_ms`, best first.
pub fn rank(docs: &[DocTerms<'_>], query: &str, k: usize, now_ms: u64) -> Vec<Scored> {
    let mut q = terms(query);
    q.sort();
    q.dedup();
    let n = docs.len() as f64;
    let avg_len = if docs.is_empty() {
        1.0
    } else {
        (docs.iter().map(DocTerms::len).sum::<f64>() / n).max(f64::MIN_POSITIVE)
    };
    let idf: Vec<f64> = q
        .iter()
        .map(|t| {
            let holding = docs.iter().filter(|d| d.tf(t) > 0.0).count() as f64;
            (1.0 + (n - holding + 0.5) / (holding + 0.5)).ln()
        })
        .collect();
    let mut scored: Vec<Scored> = docs
        .iter()
        .enumerate()
        .filter_map(|(i, d)| {
            let r = recency(d.ts_ms, now_ms);
            if q.is_empty() {
                return Some(Scored {
                    doc: i,
                    score: r,
                    bm25: 0.0,
                    recency: r,
                    matched: Vec::new(),
                });
            }
            let norm = 1.0 - B + B * d.len() / avg_len;
            let mut bm25 = 0.0;
            let mut matched = Vec::new();
            for (t, idf) in q.iter().zip(&idf) {
                let tf = d.tf(t);
                if tf > 0.0 {
                    bm25 += idf * tf * (K1 + 1.0) / (tf + K1 * norm);
                    matched.push(t.clone());
                }
            }
            if matched.is_empty() {
                return None;
            }
            Some(Scored {
                doc: i,
                score: bm25 * (1.0 + RECENCY_WEIGHT * r),
                bm25,
                recency: r,
                matched,
            })
        })
        .collect();
    scored.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(docs[b.doc].ts_ms.cmp(&docs[a.doc].ts_ms))
            .then(b.doc.cmp(&a.doc))
    });
    scored.truncate(k);
    scored
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: u64 = 24 * 3600 * 1000;
    const NOW: u64 = 1_000 * DAY;

    type Counts = BTreeMap<String, u32>;
    struct Corpus(Vec<(Counts, Counts, u64)>);

    impl Corpus {
        fn new(docs: &[(&str, &[&str], u64)]) -> Corpus {
            Corpus(
                docs.iter()
                    .map(|(text, tags, age_days)| {
                        (
                            counts([*text]),
                            counts(tags.iter().copied()),
                            NOW - age_days * DAY,
                        )
                    })
                    .collect(),
            )
        }
        fn rank(&self, query: &str, k: usize) -> Vec<Scored> {
            let docs: Vec<DocTerms<'_>> = self
                .0
                .iter()
                .map(|(text, tags, ts_ms)| DocTerms {
                    text,
                    tags,
                    ts_ms: *ts_ms,
                })
                .collect();
            rank(&docs, query, k, NOW)
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-5
    }

    /// Expected values worked out by hand (see the comments), not by the code.
    #[test]
    fn a_tag_counts_double_and_repeats_saturate() {
        // All made now: recency 1, every score is bm25 × 1.5.
        let c = Corpus::new(&[
            ("the dragon sleeps", &[], 0),     // len 3, tf 1
            ("a dragon and a dragon", &[], 0), // len 5, tf 2
            ("castle walls", &["dragon"], 0),  // len 2 + 2×1 = 4, tf 2×1 = 2
            ("bread recipe", &[], 0),          // len 2, no match
        ]);
        // N = 4, n = 3: idf = ln(1 + 1.5/3.5) = 0.356675; avg len = 14/4 = 3.5.
        // doc 0: norm = 0.25 + 0.75×3/3.5 = 0.892857; 1×2.2/(1 + 1.2×0.892857) = 1.062069
        // doc 1: norm = 0.25 + 0.75×5/3.5 = 1.321429; 2×2.2/(2 + 1.2×1.321429) = 1.227092
        // doc 2: norm = 0.25 + 0.75×4/3.5 = 1.107143; 2×2.2/(2 + 1.2×1.107143) = 1.321888
        let hits = c.rank("Dragon", 10);
        let order: Vec<usize> = hits.iter().map(|h| h.doc).collect();
        assert_eq!(order, vec![2, 1, 0], "the tagged memory first, bread never");
        let idf = 0.356_675;
        for (hit, part) in hits.iter().zip([1.321_888, 1.227_092, 1.062_069]) {
            assert!(close(hit.bm25, idf * part), "{hit:?} vs {}", idf * part);
            assert!(close(hit.recency, 1.0), "{hit:?}");
            assert!(close(hit.score, idf * part * 1.5), "{hit:?}");
            assert_eq!(hit.matched, vec!["dragon".to_string()]);
        }
        assert_eq!(c.rank("dragon", 2).len(), 2, "top-k");
        assert!(c.rank("unicorn", 10).is_empty(), "no term matches: nothing");
    }

    #[test]
    fn recency_lifts_a_close_match_but_not_a_weaker_old_one() {
        let c = Corpus::new(&[
            ("dragon fire", &[], 0),         // len 2, tf 1, recency 1
            ("dragon fire", &[], 14),        // two half-lives: recency 0.25
            ("dragon dragon fire", &[], 70), // ten half-lives: recency 1/1024
            ("bread", &[], 0),
        ]);
        // N = 4, n = 3: idf = 0.356675; avg len = (2+2+3+1)/4 = 2.
        // docs 0, 1: norm = 1; 1×2.2/(1 + 1.2) = 1 → bm25 0.356675
        //   scores 0.356675 × 1.5 = 0.535012 and × 1.125 = 0.401259
        // doc 2: norm = 0.25 + 0.75×1.5 = 1.375; 4.4/(2 + 1.65) = 1.205479
        //   → bm25 0.429963, score × (1 + 0.5/1024) = 0.430173
        let hits = c.rank("dragon", 10);
        let got: Vec<(usize, f64)> = hits.iter().map(|h| (h.doc, h.score)).collect();
        let want = [(0, 0.535_012), (2, 0.430_173), (1, 0.401_259)];
        assert_eq!(got.len(), 3, "{got:?}");
        for ((doc, score), (want_doc, want_score)) in got.iter().zip(want) {
            assert_eq!(*doc, want_doc, "{got:?}");
            assert!(close(*score, want_score), "{got:?}");
        }
        assert!(close(hits[2].recency, 0.25), "{:?}", hits[2]);
        // Two terms: idf("fire") is the same as idf("dragon") (n = 3), and the
        // bread memory still matches nothing.
        let both = c.rank("fire DRAGON", 10);
        assert_eq!(both[0].doc, 0);
        assert_eq!(
            both[0].matched,
            vec!["dragon".to_string(), "fire".to_string()]
        );
        assert!(close(both[0].bm25, 2.0 * 0.356_675), "{:?}", both[0]);
    }

    #[test]
    fn an_empty_query_recalls_the_newest_and_ties_go_to_the_newer() {
        let c = Corpus::new(&[("old", &[], 30), ("new", &[], 1), ("newest", &[], 0)]);
        let order: Vec<usize> = c.rank("  ", 2).iter().map(|h| h.doc).collect();
        assert_eq!(order, vec![2, 1]);
        let c = Corpus::new(&[("same words", &[], 3), ("same words", &[], 3)]);
        let order: Vec<usize> = c.rank("words", 2).iter().map(|h| h.doc).collect();
        assert_eq!(
            order,
            vec![1, 0],
            "equal scores and ages: the later line first"
        );
    }

    #[test]
    fn terms_are_lowercase_alphanumeric_runs() {
        assert_eq!(
            terms("Dragon's-fire, 2nd  ÉTÉ"),
            ["dragon", "s", "fire", "2nd", "été"]
        );
    }
}

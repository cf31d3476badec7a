//! Deciding a request against the policy: the effective entitlement, the price, and
//! every counter (entitlement limit, budget caps up the hierarchy) the request charges.

use std::collections::BTreeMap;

use super::{CapLimitDef, EntitlementGrant, FeatureDef, FeatureKind, LimitDef, Policy};
use crate::ledger::{LimitCharge, Measure, Price, Timestamp};
use crate::period::{Anchor, Window, window};

/// The level of a budget cap, in the order Reserve checks them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CapLevel {
    Customer,
    Team,
    User,
    Agent,
}

impl CapLevel {
    pub fn name(&self) -> &'static str {
        match self {
            CapLevel::Customer => "customer",
            CapLevel::Team => "team",
            CapLevel::User => "user",
            CapLevel::Agent => "agent",
        }
    }
}

/// Who inside the customer makes the request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subject {
    pub team: Option<String>,
    pub user: Option<String>,
    pub agent: Option<String>,
}

impl Subject {
    fn at(&self, level: CapLevel) -> Option<&str> {
        match level {
            CapLevel::Customer => None,
            CapLevel::Team => self.team.as_deref(),
            CapLevel::User => self.user.as_deref(),
            CapLevel::Agent => self.agent.as_deref(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionView {
    pub plan: String,
    pub since: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeatureValue {
    Number(i64),
    Choice(String),
}

/// A feature as it applies to one customer now.
#[derive(Debug, Clone, PartialEq)]
pub struct EffectiveFeature {
    pub id: String,
    pub kind: FeatureKind,
    pub enabled: bool,
    pub value: Option<FeatureValue>,
    pub meter: Option<String>,
    pub limit: Option<LimitDef>,
    /// Where the deciding value comes from: `plan/pro`, `entitlement/launch-promo`.
    pub source: String,
    pub fail_open: bool,
}

pub struct Request<'a> {
    pub customer: &'a str,
    pub subscription: Option<&'a SubscriptionView>,
    pub subject: &'a Subject,
    pub feature: &'a str,
    pub dimensions: &'a BTreeMap<String, String>,
    pub units: u64,
    pub now: Timestamp,
}

/// Why a request is refused before any counter is looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denial {
    NoSubscription,
    NoEntitlement {
        feature: String,
    },
    /// The plan prices the feature by `dimension`, and no line matches the usage (its
    /// value of the dimension, `None` when it gives none) and there is no default line.
    NotPriced {
        plan: String,
        feature: String,
        dimension: String,
        value: Option<String>,
    },
}

impl Denial {
    /// Why, in words, for decisions and ingest rejections.
    pub fn message(&self, customer: &str) -> String {
        match self {
            Denial::NoSubscription => format!("customer {customer} has no plan"),
            Denial::NoEntitlement { feature } => {
                format!("the plan of customer {customer} does not include {feature}")
            }
            Denial::NotPriced {
                plan,
                feature,
                dimension,
                value,
            } => {
                let asked = match value {
                    Some(value) => format!("has no rate for {dimension}={value}"),
                    None => format!("the usage gives no {dimension}"),
                };
                format!(
                    "plan {plan} prices {feature} by {dimension}, and {asked} (nor a line \
                     without a dimension): not priced, so refused"
                )
            }
        }
    }
}

/// What a limit in a request is, for decisions and their reasons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LimitSource {
    Entitlement { feature: String },
    Cap { name: String, level: CapLevel },
}

#[derive(Debug, Clone, PartialEq)]
pub struct PlannedLimit {
    pub charge: LimitCharge,
    pub source: LimitSource,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    pub feature: EffectiveFeature,
    /// The rate of the usage (`None`: the plan has no rate card line for the feature, so its
    /// usage costs no credits).
    pub price: Option<Price>,
    /// The price of the requested units.
    pub credits: u64,
    /// Counters to charge, entitlement first, then caps customer > team > user > agent.
    pub limits: Vec<PlannedLimit>,
}

impl Policy {
    /// Decides everything about a request that does not need the ledger.
    pub fn evaluate(&self, request: &Request<'_>) -> Result<Evaluation, Denial> {
        let Some(subscription) = request.subscription else {
            return Err(Denial::NoSubscription);
        };
        let no_entitlement = || Denial::NoEntitlement {
            feature: request.feature.to_string(),
        };
        let feature = self
            .effective_feature(
                request.customer,
                Some(subscription),
                request.feature,
                request.now,
            )
            .filter(|f| f.enabled)
            .ok_or_else(no_entitlement)?;
        let price = self.price(&subscription.plan, request.feature, request.dimensions)?;
        let credits = price.map_or(0, |p| p.cost(request.units).unwrap_or(u64::MAX));
        let mut limits = Vec::new();
        if feature.kind == FeatureKind::Metered
            && let Some(def) = feature.limit
        {
            let anchor = if def.calendar {
                Anchor::Calendar
            } else {
                Anchor::At(subscription.since)
            };
            limits.push(PlannedLimit {
                charge: LimitCharge {
                    counter: format!("ent/{}/{}", request.customer, request.feature),
                    window: window(def.period, anchor, request.now),
                    limit: def.amount,
                    measure: Measure::Units,
                    amount: request.units,
                    enforce: def.hard && def.amount.is_some(),
                },
                source: LimitSource::Entitlement {
                    feature: request.feature.to_string(),
                },
            });
        }
        for cap in &self.caps {
            if !cap.customers.is_empty() && !cap.customers.iter().any(|c| c == request.customer) {
                continue;
            }
            if let Some((name, value)) = &cap.dimension
                && request.dimensions.get(name) != Some(value)
            {
                continue;
            }
            let subject = match cap.level {
                CapLevel::Customer => None,
                level => match request.subject.at(level) {
                    Some(s) if cap.subjects.is_empty() || cap.subjects.iter().any(|x| x == s) => {
                        Some(s)
                    }
                    _ => continue,
                },
            };
            let (limit, measure, amount) = match &cap.limit {
                CapLimitDef::MicroCredits(limit) => (*limit, Measure::Credits, credits),
                CapLimitDef::Units { feature, units } if feature == request.feature => {
                    (*units, Measure::Units, request.units)
                }
                CapLimitDef::Units { .. } => continue,
            };
            let counter = match subject {
                None => format!("cap/{}/{}", cap.name, request.customer),
                Some(s) => format!(
                    "cap/{}/{}/{}:{s}",
                    cap.name,
                    request.customer,
                    cap.level.name()
                ),
            };
            limits.push(PlannedLimit {
                charge: LimitCharge {
                    counter,
                    window: window(cap.period, Anchor::Calendar, request.now),
                    limit: Some(limit),
                    measure,
                    amount,
                    enforce: cap.enforce,
                },
                source: LimitSource::Cap {
                    name: cap.name.clone(),
                    level: cap.level,
                },
            });
        }
        Ok(Evaluation {
            feature,
            price,
            credits,
            limits,
        })
    }

    /// The rate card line for a feature's usage with these dimensions: the line of the
    /// usage's dimension value, else the line without a dimension. `None`: the plan prices
    /// nothing of the feature. A feature priced by a dimension, whose usage no line matches,
    /// is refused (`NotPriced`), never free: a model added to the product without a rate
    /// must not cost nothing.
    pub fn price(
        &self,
        plan: &str,
        feature: &str,
        dimensions: &BTreeMap<String, String>,
    ) -> Result<Option<Price>, Denial> {
        let Some(lines) = self.plans.get(plan).and_then(|p| p.rates.get(feature)) else {
            return Ok(None);
        };
        let matching = lines.iter().find(|line| match &line.dimension {
            Some((name, value)) => dimensions.get(name) == Some(value),
            None => true,
        });
        match (matching, lines.first().and_then(|l| l.dimension.as_ref())) {
            (Some(line), _) => Ok(Some(line.price)),
            // Validation keeps every line of a feature on one dimension.
            (None, Some((dimension, _))) => Err(Denial::NotPriced {
                plan: plan.to_string(),
                feature: feature.to_string(),
                dimension: dimension.clone(),
                value: dimensions.get(dimension).cloned(),
            }),
            (None, None) => Ok(None),
        }
    }

    /// The feature as the plan and every active entitlement make it; the most generous
    /// value wins. `None`: neither grants it.
    pub fn effective_feature(
        &self,
        customer: &str,
        subscription: Option<&SubscriptionView>,
        feature: &str,
        now: Timestamp,
    ) -> Option<EffectiveFeature> {
        let plan = subscription.and_then(|s| self.plans.get(&s.plan));
        let base = plan.and_then(|p| p.features.get(feature).map(|def| (p, def)));
        let mut effective =
            base.map(|(p, def)| from_def(feature, def, &format!("plan/{}", p.name)));
        let choices: &[String] = base.map_or(&[], |(_, def)| def.choices.as_slice());
        let grants = subscription
            .and_then(|s| self.plan_grants.get(&s.plan))
            .into_iter()
            .flatten()
            .chain(self.customer_grants.get(customer).into_iter().flatten())
            .filter(|g| g.feature == feature && active(g, now));
        for grant in grants {
            let kind = self
                .features
                .get(feature)
                .copied()
                .unwrap_or(FeatureKind::Boolean);
            let current = effective.get_or_insert_with(|| EffectiveFeature {
                id: feature.to_string(),
                kind,
                enabled: false,
                value: None,
                meter: None,
                limit: None,
                source: format!("entitlement/{}", grant.name),
                fail_open: false,
            });
            merge(current, grant, choices);
        }
        effective
    }

    /// Every feature the customer has something of, sorted by id.
    pub fn effective_features(
        &self,
        customer: &str,
        subscription: Option<&SubscriptionView>,
        now: Timestamp,
    ) -> Vec<EffectiveFeature> {
        let mut ids: Vec<&String> = Vec::new();
        if let Some(plan) = subscription.and_then(|s| self.plans.get(&s.plan)) {
            ids.extend(plan.features.keys());
        }
        let plan_grants = subscription.and_then(|s| self.plan_grants.get(&s.plan));
        for grant in plan_grants
            .into_iter()
            .flatten()
            .chain(self.customer_grants.get(customer).into_iter().flatten())
        {
            ids.push(&grant.feature);
        }
        ids.sort();
        ids.dedup();
        ids.into_iter()
            .filter_map(|id| self.effective_feature(customer, subscription, id, now))
            .collect()
    }

    /// Whether every plan that has the feature lets `Check` fail open (what is known when
    /// the customer's plan cannot be read).
    pub fn fails_open_everywhere(&self, feature: &str) -> bool {
        let mut defs = self
            .plans
            .values()
            .filter_map(|p| p.features.get(feature))
            .peekable();
        defs.peek().is_some() && defs.all(|d| d.fail_open)
    }

    /// The window of a metered entitlement's counter at `now`.
    pub fn entitlement_window(def: &LimitDef, since: Timestamp, now: Timestamp) -> Window {
        let anchor = if def.calendar {
            Anchor::Calendar
        } else {
            Anchor::At(since)
        };
        window(def.period, anchor, now)
    }
}

fn from_def(id: &str, def: &FeatureDef, source: &str) -> EffectiveFeature {
    EffectiveFeature {
        id: id.to_string(),
        kind: def.kind,
        enabled: def.kind != FeatureKind::Boolean || def.enabled,
        value: def.value.clone(),
        meter: def.meter.clone(),
        limit: def.limit,
        source: source.to_string(),
        fail_open: def.fail_open,
    }
}

fn active(grant: &EntitlementGrant, now: Timestamp) -> bool {
    grant.window.0.is_none_or(|start| start <= now.0)
        && grant.window.1.is_none_or(|end| now.0 < end)
}

/// Makes `current` at least as generous as `grant`.
fn merge(current: &mut EffectiveFeature, grant: &EntitlementGrant, choices: &[String]) {
    let source = format!("entitlement/{}", grant.name);
    if grant.enabled == Some(true) && !current.enabled {
        current.enabled = true;
        current.source = source.clone();
    }
    if let Some(value) = &grant.value {
        let better = match (&current.value, value) {
            (None, _) => true,
            (Some(FeatureValue::Number(a)), FeatureValue::Number(b)) => b > a,
            (Some(FeatureValue::Choice(a)), FeatureValue::Choice(b)) => {
                let rank = |c: &String| choices.iter().position(|x| x == c);
                rank(b) > rank(a)
            }
            _ => false,
        };
        if better {
            current.value = Some(value.clone());
            current.enabled = true;
            current.source = source.clone();
        }
    }
    if let Some(limit) = grant.limit {
        current.enabled = true;
        let better = match current.limit {
            None => true,
            Some(have) => match (have.amount, limit.amount) {
                (None, _) => false,
                (Some(_), None) => true,
                (Some(a), Some(b)) => b > a,
            },
        };
        // Generous on each count: the larger amount, and soft (allow and report) when either
        // side is soft, so an add-on never makes a limit stricter than the plan's.
        let soft = current.limit.is_some_and(|have| !have.hard) || !limit.hard;
        if better {
            current.limit = Some(limit);
            current.source = source;
        }
        if let Some(merged) = current.limit.as_mut() {
            merged.hard = merged.hard && !soft;
        }
    }
}

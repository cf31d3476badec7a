//! How many customers subscribe to each plan, over every partition of this process: what
//! a pod reports to the operator (annotation `tollgate.dev/plan-subscribers`) so that a
//! deleted Plan is released only when nobody uses it.

use std::collections::BTreeMap;

use super::{Runtime, ServiceError};
use crate::policy::Policy;

impl Runtime {
    /// Subscribers per plan in this process's partitions. Every plan of `policy` is
    /// present (0 when nobody subscribes), and so is every plan customers still subscribe
    /// to that `policy` no longer has. Fails when a partition cannot answer: a count that
    /// leaves out a partition would under-report.
    pub async fn plan_subscribers(
        &self,
        policy: &Policy,
    ) -> Result<BTreeMap<String, u64>, ServiceError> {
        let mut total: BTreeMap<String, u64> =
            policy.plans.keys().map(|plan| (plan.clone(), 0)).collect();
        for (partition, engine) in self.partitions.engines().into_iter().enumerate() {
            let counts = engine.read(|ledger| ledger.plan_subscribers()).await;
            for (plan, n) in self.partitions.watch(partition, counts)? {
                let slot = total.entry(plan).or_insert(0);
                *slot = slot.saturating_add(n);
            }
        }
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::collections::BTreeMap;

    use crate::testing::{TWO_PLANS, runtime, subscribe};

    #[tokio::test]
    async fn counts_every_partition_and_lists_unused_plans_with_zero() {
        let t = runtime(TWO_PLANS, 4);
        let policy = t.runtime.policy();
        let none = t.runtime.plan_subscribers(&policy).await.unwrap();
        assert_eq!(
            none,
            BTreeMap::from([("free".to_string(), 0), ("pro".to_string(), 0)])
        );
        // Ten customers spread over the four partitions, seven on pro, three on free.
        for i in 0..10 {
            let plan = if i < 7 { "pro" } else { "free" };
            subscribe(&t.runtime, &format!("cus_{i}"), plan).await;
        }
        // One customer without a subscription is not counted.
        t.runtime
            .upsert_customer("cus_idle", "idle", "upsert-idle")
            .await
            .unwrap();
        let partitions_used: std::collections::BTreeSet<u32> = (0..10)
            .map(|i| crate::engine::partition_of(&format!("cus_{i}"), 4))
            .collect();
        assert!(partitions_used.len() > 1, "{partitions_used:?}");
        let counts = t.runtime.plan_subscribers(&policy).await.unwrap();
        assert_eq!(
            counts,
            BTreeMap::from([("free".to_string(), 3), ("pro".to_string(), 7)])
        );
    }

    #[tokio::test]
    async fn a_plan_gone_from_the_policy_is_still_reported_while_customers_use_it() {
        let t = runtime(TWO_PLANS, 2);
        subscribe(&t.runtime, "cus_free", "free").await;
        let only_pro = crate::catalog::load_yaml(
            "apiVersion: tollgate.dev/v1alpha1\nkind: Plan\nmetadata: {name: pro}\nspec:\n  features:\n    - {id: chat, kind: boolean, enabled: true}\n",
        )
        .unwrap();
        let counts = t.runtime.plan_subscribers(&only_pro).await.unwrap();
        assert_eq!(
            counts,
            BTreeMap::from([("free".to_string(), 1), ("pro".to_string(), 0)])
        );
    }
}

//! How close a service's deadlines are, for the operations port: by tenant and kind, how many
//! open items are overdue and how many fall due within one and within three working days, the
//! working days counted by the calendar (never a weekday guess).

use std::collections::BTreeMap;

use creditmesh_domain::calendar::{Calendar, Layers, cst_date, parse_iso_date};
use creditmesh_storage::StorageError;
use creditmesh_storage::sqlx::{self, Row};
use time::Date;

use crate::service::{Gauge, ServiceEnv};

/// The working days ahead the gauges look.
pub const WITHIN: [u32; 2] = [1, 3];

/// How many open items of a tenant and kind fall due on one day (ISO date).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    pub tenant: String,
    pub kind: String,
    pub due: String,
    pub count: u64,
}

/// `creditmesh_deadlines_overdue` (due before `today`) and `creditmesh_deadlines_due` with
/// `within` 1 and 3 (due from `today` to the first, or the third, working day after it) for
/// each tenant and kind that has any. A date that does not parse, or that the calendar cannot
/// place, is counted nowhere.
pub fn gauges(calendar: &Calendar, today: Date, items: &[Due]) -> Vec<Gauge> {
    let ends: Vec<(u32, Date)> = WITHIN
        .iter()
        .filter_map(|&n| {
            let d = calendar.deadline(today, n, Layers::Xinjiang).ok()?;
            Some((n, d.due))
        })
        .collect();
    let mut overdue: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    let mut due: BTreeMap<(&str, &str, u32), u64> = BTreeMap::new();
    for item in items {
        let Ok(date) = parse_iso_date(&item.due) else {
            continue;
        };
        let key = (item.tenant.as_str(), item.kind.as_str());
        if date < today {
            *overdue.entry(key).or_default() += item.count;
            continue;
        }
        for &(n, end) in &ends {
            if date <= end {
                *due.entry((key.0, key.1, n)).or_default() += item.count;
            }
        }
    }
    let labels =
        |tenant: &str, kind: &str| vec![("tenant", tenant.to_owned()), ("kind", kind.to_owned())];
    let mut out: Vec<Gauge> = overdue
        .into_iter()
        .map(|((tenant, kind), n)| Gauge {
            name: "creditmesh_deadlines_overdue",
            help: "Open items past the day they were due, by tenant and kind",
            labels: labels(tenant, kind),
            value: n as f64,
        })
        .collect();
    out.extend(due.into_iter().map(|((tenant, kind, n), count)| {
        let mut labels = labels(tenant, kind);
        labels.push(("within", n.to_string()));
        Gauge {
            name: "creditmesh_deadlines_due",
            help: "Open items due from today to the first (within=1) or third (within=3) working day after it",
            labels,
            value: count as f64,
        }
    }));
    out
}

/// The gauges of the open items `sql` selects (columns `tenant`, `kind`, `due`, one row per
/// item) from the service's database, counted from today in China Standard Time. The
/// database counts them by day, so that a scrape reads a row per tenant, kind and day.
pub async fn read(env: &ServiceEnv, sql: &'static str) -> Result<Vec<Gauge>, StorageError> {
    let today =
        cst_date(env.store.clock.now_micros()).map_err(|e| StorageError::Other(e.to_string()))?;
    let by_day = format!(
        "SELECT tenant, kind, due, COUNT(*) FROM ({sql}) AS open_items GROUP BY tenant, kind, due"
    );
    let mut conn = env.store.db.acquire().await?;
    let rows = sqlx::query(sqlx::AssertSqlSafe(by_day))
        .fetch_all(&mut *conn)
        .await?;
    let items = rows
        .iter()
        .map(|r| {
            Ok(Due {
                tenant: r.try_get(0)?,
                kind: r.try_get(1)?,
                due: r.try_get(2)?,
                count: r.try_get::<i64, _>(3)?.max(0) as u64,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok(gauges(&env.calendar, today, &items))
}

/// [`read`] as a service's `gauges`, a failure logged and reported as nothing.
pub fn reported(
    env: ServiceEnv,
    sql: &'static str,
) -> futures::future::BoxFuture<'static, Vec<Gauge>> {
    Box::pin(async move {
        read(&env, sql).await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "deadline gauges were not read");
            Vec::new()
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    fn due(tenant: &str, kind: &str, due: &str) -> Due {
        Due {
            tenant: tenant.into(),
            kind: kind.into(),
            due: due.into(),
            count: 1,
        }
    }

    fn value(gauges: &[Gauge], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        gauges
            .iter()
            .find(|g| {
                g.name == name
                    && g.labels.len() == labels.len()
                    && labels
                        .iter()
                        .all(|(k, v)| g.labels.iter().any(|(gk, gv)| gk == k && gv == v))
            })
            .map(|g| g.value)
    }

    #[test]
    fn working_days_come_from_the_calendar_across_a_holiday() {
        // Thursday 2026-09-24: the Mid-Autumn Festival is off from Friday the 25th to Sunday
        // the 27th, so the first working day after it is Monday the 28th and the third
        // Wednesday the 30th (a weekday guess would say Friday and Tuesday).
        let calendar = Calendar::builtin();
        let today = date!(2026 - 09 - 24);
        let items = [
            due("653100", "filing", "2026-09-23"),
            due("653100", "filing", "2026-09-24"),
            due("653100", "filing", "2026-09-27"),
            due("653100", "filing", "2026-09-28"),
            due("653100", "filing", "2026-09-30"),
            due("653100", "filing", "2026-10-08"),
            due("650100", "filing", "2026-09-25"),
            due("650100", "change", "not a date"),
        ];
        let g = gauges(&calendar, today, &items);
        let k = |t, w| {
            value(
                &g,
                "creditmesh_deadlines_due",
                &[("tenant", t), ("kind", "filing"), ("within", w)],
            )
        };
        assert_eq!(
            value(
                &g,
                "creditmesh_deadlines_overdue",
                &[("tenant", "653100"), ("kind", "filing")]
            ),
            Some(1.0)
        );
        assert_eq!(k("653100", "1"), Some(3.0), "{g:?}");
        assert_eq!(k("653100", "3"), Some(4.0), "{g:?}");
        assert_eq!(k("650100", "1"), Some(1.0), "{g:?}");
        assert!(
            g.iter()
                .all(|x| !x.labels.contains(&("kind", "change".into())))
        );
    }
}

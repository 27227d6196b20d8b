//! The price table: AWS's on-demand list prices, one row per region and item, with the unit, the
//! date the price was read and where (`prices/aws.csv`, compiled in; `--prices FILE` reads
//! another of the same form). Plain CSV so that a script can refresh it from the AWS Price List.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::error::Error;

/// The table hcctl ships (compiled in, so the binary needs no file at run time).
pub const BUILTIN: &str = include_str!("../../prices/aws.csv");

/// Every item an estimate may price: its key and the unit the table must state for it.
pub const ITEMS: &[(&str, &str)] = &[
    ("fargate.vcpu_hour", "vCPU-hour"),
    ("fargate.gb_hour", "GB-hour"),
    ("efs.standard_gb_month", "GB-month"),
    ("logs.ingest_gb", "GB"),
    ("logs.storage_gb_month", "GB-month"),
    ("cloudwatch.alarm_month", "alarm-month"),
    ("cloudwatch.metric_month", "metric-month"),
    ("backup.efs_warm_gb_month", "GB-month"),
    ("backup.efs_cold_gb_month", "GB-month"),
    ("backup.s3_gb_month", "GB-month"),
    ("s3.standard_gb_month", "GB-month"),
    ("s3.put_requests_1000", "1,000 requests"),
    ("s3.get_requests_1000", "1,000 requests"),
    ("secretsmanager.secret_month", "secret-month"),
    ("kms.key_month", "key-month"),
    ("sns.email_notification", "notification"),
    ("sns.https_notification", "notification"),
    ("scheduler.invocation", "invocation"),
    ("cloudmap.instance_month", "instance-month"),
    ("route53.hosted_zone_month", "hosted-zone-month"),
    ("vpc.public_ipv4_hour", "IP-hour"),
];

/// One row of the table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Price {
    pub region: String,
    pub key: String,
    pub unit: String,
    /// US dollars per unit.
    pub usd: f64,
    /// When the price was read (YYYY-MM-DD).
    pub as_of: String,
    /// Where it was read.
    pub source: String,
}

/// The prices of one region, by key.
#[derive(Debug, Clone)]
pub struct Prices {
    pub region: String,
    /// Where the table came from: `built-in` or the file given.
    pub table: String,
    by_key: BTreeMap<String, Price>,
}

impl Prices {
    /// The region's prices from the built-in table, or from `file`.
    pub fn load(file: Option<&Path>, region: &str) -> Result<Prices, Error> {
        match file {
            None => Prices::parse(BUILTIN, "built-in", region),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    Error::usage(format!(
                        "cannot read the price table {}: {e}",
                        path.display()
                    ))
                })?;
                Prices::parse(&text, &path.display().to_string(), region)
            }
        }
    }

    /// A table's text: every row checked, then the region's rows kept. A region the table does
    /// not have, or an item it lacks for the region, is a usage error saying what to do.
    pub fn parse(text: &str, table: &str, region: &str) -> Result<Prices, Error> {
        let mut reader = csv::ReaderBuilder::new()
            .comment(Some(b'#'))
            .trim(csv::Trim::All)
            .from_reader(text.as_bytes());
        let mut regions = std::collections::BTreeSet::new();
        let mut by_key = BTreeMap::new();
        for (i, row) in reader.deserialize::<Price>().enumerate() {
            let row = row.map_err(|e| {
                Error::usage(format!(
                    "price table {table}: row {}: {e} (columns: region,key,unit,usd,as_of,source)",
                    i + 1
                ))
            })?;
            let Some((_, unit)) = ITEMS.iter().find(|(k, _)| *k == row.key) else {
                return Err(Error::usage(format!(
                    "price table {table}: unknown item '{}' ({} are priced)",
                    row.key,
                    ITEMS.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(", ")
                )));
            };
            if row.unit != *unit {
                return Err(Error::usage(format!(
                    "price table {table}: {} {}: the unit is '{}', expected '{unit}'",
                    row.region, row.key, row.unit
                )));
            }
            if !row.usd.is_finite() || row.usd < 0.0 {
                return Err(Error::usage(format!(
                    "price table {table}: {} {}: {} is not a price",
                    row.region, row.key, row.usd
                )));
            }
            regions.insert(row.region.clone());
            if row.region == region {
                by_key.insert(row.key.clone(), row);
            }
        }
        if by_key.is_empty() {
            return Err(Error::usage(format!(
                "the price table ({table}) has no prices for region {region} (it has {}): give a \
                 table that does with --prices FILE",
                if regions.is_empty() {
                    "none".to_string()
                } else {
                    regions.into_iter().collect::<Vec<_>>().join(", ")
                }
            )));
        }
        let missing: Vec<&str> = ITEMS
            .iter()
            .map(|(k, _)| *k)
            .filter(|k| !by_key.contains_key(*k))
            .collect();
        if !missing.is_empty() {
            return Err(Error::usage(format!(
                "the price table ({table}) lacks {} for region {region}: add them, or give a \
                 complete table with --prices FILE",
                missing.join(", ")
            )));
        }
        Ok(Prices {
            region: region.to_string(),
            table: table.to_string(),
            by_key,
        })
    }

    /// The price of an item (every item of [`ITEMS`] is there once loaded).
    pub fn get(&self, key: &str) -> &Price {
        // Loading checked that every item is present; an unknown key is a bug caught by the
        // unit tests, so fall back to a zero price rather than panic.
        self.by_key.get(key).unwrap_or(&ZERO)
    }

    /// The oldest date any price was read: what the estimate says its prices are as of.
    pub fn as_of(&self) -> String {
        self.by_key
            .values()
            .map(|p| p.as_of.as_str())
            .min()
            .unwrap_or("unknown")
            .to_string()
    }

    /// The items whose price stands in for one not read for this region.
    pub fn stand_ins(&self) -> Vec<String> {
        self.by_key
            .values()
            .filter(|p| p.source.starts_with("stand-in:"))
            .map(|p| p.key.clone())
            .collect()
    }

    /// The sources, each once.
    pub fn sources(&self) -> Vec<String> {
        let mut s: Vec<String> = self.by_key.values().map(|p| p.source.clone()).collect();
        s.sort();
        s.dedup();
        s
    }
}

static ZERO: Price = Price {
    region: String::new(),
    key: String::new(),
    unit: String::new(),
    usd: 0.0,
    as_of: String::new(),
    source: String::new(),
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_table_prices_every_item_in_both_supported_regions() {
        for region in ["eu-west-3", "us-east-1"] {
            let p = Prices::parse(BUILTIN, "built-in", region).expect("complete");
            for (key, unit) in ITEMS {
                assert_eq!(p.get(key).unit, *unit, "{region} {key}");
                assert!(p.get(key).usd > 0.0, "{region} {key}");
            }
            assert!(p.as_of().starts_with("20"), "{}", p.as_of());
        }
    }

    #[test]
    fn a_region_the_table_lacks_is_a_usage_error_naming_it_and_prices() {
        let e = Prices::parse(BUILTIN, "built-in", "ap-south-2").expect_err("no such region");
        assert_eq!(e.code(), 2);
        let m = e.to_string();
        assert!(m.contains("ap-south-2") && m.contains("--prices"), "{m}");
        assert!(m.contains("eu-west-3") && m.contains("us-east-1"), "{m}");
    }

    #[test]
    fn bad_rows_are_refused_with_their_place() {
        let head = "region,key,unit,usd,as_of,source\n";
        let e = Prices::parse(
            &format!("{head}eu-west-3,kms.key_month,key-month,x,2026-01-01,s\n"),
            "t",
            "eu-west-3",
        )
        .expect_err("not a number");
        assert!(e.to_string().contains("row 1"), "{e}");
        let e = Prices::parse(
            &format!("{head}eu-west-3,kms.key_month,GB,1,2026-01-01,s\n"),
            "t",
            "eu-west-3",
        )
        .expect_err("wrong unit");
        assert!(e.to_string().contains("expected 'key-month'"), "{e}");
        let e = Prices::parse(
            &format!("{head}eu-west-3,kms.key_month,key-month,1,2026-01-01,s\n"),
            "t",
            "eu-west-3",
        )
        .expect_err("incomplete");
        assert!(e.to_string().contains("fargate.vcpu_hour"), "{e}");
    }
}

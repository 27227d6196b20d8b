//! MongoDB's access point on the file system (EFS): the only way the mongo task mounts it (the
//! task definition names it, with IAM authorization). Every file operation through it runs as
//! the mongo image's user, uid/gid 999, inside its own root directory `/mongo`, created by EFS
//! with mode 0700 — the rest of the file system is out of reach. Access points cannot be
//! changed: one that differs is replaced (the data stays on the file system). Kept with the file
//! system by destroy, deleted with it by `--delete-data`.

use aws_sdk_efs::types::{AccessPointDescription, CreationInfo, PosixUser, RootDirectory, Tag};
use aws_sdk_efs::Client;

use super::{Action, Context, Kind, Resource, Step};
use crate::aws::{tag_changes, AwsError};
use crate::config::Config;

pub const KIND: Kind = Kind::new("access_point", "access point");

/// The mongo image's `mongodb` user and group.
pub const MONGO_UID: i64 = 999;
/// The access point's root directory, and its mode.
pub const ROOT_DIRECTORY: &str = "/mongo";
pub const ROOT_MODE: &str = "0700";

/// An access point's identity and settings, as EFS describes it (or as hcctl wants it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub uid: i64,
    pub gid: i64,
    pub path: String,
    /// `(uid, gid, mode)` EFS creates the root directory with.
    pub creation: Option<(i64, i64, String)>,
}

impl Settings {
    pub fn desired() -> Settings {
        Settings {
            uid: MONGO_UID,
            gid: MONGO_UID,
            path: ROOT_DIRECTORY.into(),
            creation: Some((MONGO_UID, MONGO_UID, ROOT_MODE.into())),
        }
    }

    fn describe(&self) -> Vec<String> {
        let mut lines = vec![
            format!("runs as uid {} gid {}", self.uid, self.gid),
            format!("root directory {}", self.path),
        ];
        if let Some((u, g, m)) = &self.creation {
            lines.push(format!("created {u}:{g} mode {m}"));
        }
        lines
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub id: String,
    pub arn: String,
    pub settings: Settings,
    pub tags: std::collections::BTreeMap<String, String>,
}

/// The access point's `Name` tag, by which hcctl finds it.
pub fn name(config: &Config) -> String {
    config.resource_name("mongo")
}

fn observed_of(ap: &AccessPointDescription) -> Observed {
    Observed {
        id: ap.access_point_id().unwrap_or_default().to_string(),
        arn: ap.access_point_arn().unwrap_or_default().to_string(),
        settings: Settings {
            uid: ap.posix_user().map_or(-1, |p| p.uid()),
            gid: ap.posix_user().map_or(-1, |p| p.gid()),
            path: ap
                .root_directory()
                .and_then(|r| r.path())
                .unwrap_or("/")
                .to_string(),
            creation: ap
                .root_directory()
                .and_then(|r| r.creation_info())
                .map(|c| (c.owner_uid(), c.owner_gid(), c.permissions().to_string())),
        },
        tags: ap
            .tags()
            .iter()
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect(),
    }
}

/// The access point named `name` on file system `fs` (read-only).
pub async fn observe(client: &Client, fs: &str, name: &str) -> Result<Option<Observed>, AwsError> {
    let out = client
        .describe_access_points()
        .file_system_id(fs)
        .send()
        .await
        .map_err(|e| AwsError::new(format!("listing the access points of {fs}"), &e))?;
    Ok(out
        .access_points()
        .iter()
        .find(|ap| {
            ap.name() == Some(name)
                || ap
                    .tags()
                    .iter()
                    .any(|t| t.key() == "Name" && t.value() == name)
        })
        .map(observed_of))
}

pub fn desired_tags(config: &Config) -> std::collections::BTreeMap<String, String> {
    let mut tags = config.tags.clone();
    tags.insert("Name".into(), name(config));
    tags
}

/// What deploy will do (pure).
pub fn changes(config: &Config, observed: Option<&Observed>) -> Step {
    let want = Settings::desired();
    let name = name(config);
    let Some(o) = observed else {
        return Step::new(KIND, &name, Action::Create, want.describe());
    };
    let mut lines: Vec<String> = Vec::new();
    if o.settings != want {
        lines.push(format!(
            "settings: {} → {} (access points cannot be changed: replaced, the data stays)",
            o.settings.describe().join(", "),
            want.describe().join(", ")
        ));
    }
    let tags = tag_changes(&o.tags, &desired_tags(config));
    if lines.is_empty() && !tags.is_empty() {
        // Tags alone: still a replacement (EFS tags it by resource id; the id changes anyway on
        // any other change, and keeping one code path keeps it simple).
        lines.push("tags differ: replaced".into());
    }
    lines.extend(tags);
    Step::compared(KIND, &name, Action::Replace, lines)
}

async fn delete(client: &Client, id: &str) -> Result<(), AwsError> {
    match client
        .delete_access_point()
        .access_point_id(id)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_access_point_not_found()) =>
        {
            Ok(())
        }
        Err(e) => Err(AwsError::new(format!("deleting access point {id}"), &e)),
    }
}

/// The access point, for the engine.
pub struct AccessPoint;

impl Resource for AccessPoint {
    type Item = Option<Observed>;

    async fn observe_all(cx: &mut Context<'_>) -> Result<Vec<Self::Item>, AwsError> {
        let observed = match &cx.outputs.file_system_id {
            Some(fs) => observe(&cx.aws.efs, fs, &name(cx.config)).await?,
            None => None,
        };
        if let Some(o) = &observed {
            if o.settings == Settings::desired() {
                cx.outputs.access_point_id = Some(o.id.clone());
                cx.outputs.access_point_arn = Some(o.arn.clone());
            }
        }
        Ok(vec![observed])
    }

    fn step(cx: &Context<'_>, observed: &Self::Item) -> Step {
        changes(cx.config, observed.as_ref())
    }

    async fn apply_step(cx: &mut Context<'_>, observed: &Self::Item) -> Result<String, AwsError> {
        let client = &cx.aws.efs;
        let name = name(cx.config);
        let Some(fs) = cx.outputs.file_system_id.clone() else {
            return Err(AwsError::other(
                format!("creating access point {name}"),
                "the file system does not exist (a bug in hcctl's order)",
            ));
        };
        if let Some(o) = observed {
            delete(client, &o.id).await?;
        }
        let want = Settings::desired();
        let build = |e| AwsError::other(format!("building access point {name}"), e);
        let mut root = RootDirectory::builder().path(&want.path);
        if let Some((u, g, m)) = &want.creation {
            root = root.creation_info(
                CreationInfo::builder()
                    .owner_uid(*u)
                    .owner_gid(*g)
                    .permissions(m)
                    .build()
                    .map_err(build)?,
            );
        }
        let tags = desired_tags(cx.config)
            .iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build().map_err(build))
            .collect::<Result<Vec<_>, _>>()?;
        let out = client
            .create_access_point()
            .client_token(format!("{name}-{}", std::process::id()))
            .file_system_id(&fs)
            .posix_user(
                PosixUser::builder()
                    .uid(want.uid)
                    .gid(want.gid)
                    .build()
                    .map_err(build)?,
            )
            .root_directory(root.build())
            .set_tags(Some(tags))
            .send()
            .await
            .map_err(|e| AwsError::new(format!("creating access point {name}"), &e))?;
        let id = out.access_point_id().unwrap_or_default().to_string();
        cx.outputs.access_point_id = Some(id.clone());
        cx.outputs.access_point_arn = out.access_point_arn().map(str::to_string);
        Ok(id)
    }

    fn removal(cx: &Context<'_>, observed: &Self::Item) -> Step {
        let name = name(cx.config);
        match (observed, cx.delete_data) {
            (None, _) => Step::new(KIND, &name, Action::Absent, vec![]),
            (Some(o), false) => Step::new(
                KIND,
                &name,
                Action::Keep,
                vec![format!("{}: kept with the file system", o.id)],
            ),
            (Some(o), true) => Step::new(KIND, &name, Action::Delete, vec![o.id.clone()]),
        }
    }

    async fn remove(cx: &Context<'_>, observed: &Self::Item) -> Result<(), AwsError> {
        match observed {
            Some(o) => delete(&cx.aws.efs, &o.id).await,
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_access_point_that_differs_is_replaced_and_one_that_matches_is_left() {
        let config = crate::config::tests_support::example_config();
        let o = Observed {
            id: "fsap-1".into(),
            arn: "arn:ap".into(),
            settings: Settings::desired(),
            tags: desired_tags(&config),
        };
        assert_eq!(changes(&config, Some(&o)).action, Action::Unchanged);
        let mut root = o.clone();
        root.settings.path = "/".into();
        root.settings.creation = None;
        let step = changes(&config, Some(&root));
        assert_eq!(step.action, Action::Replace);
        assert!(
            step.changes[0].contains("root directory / → "),
            "{:?}",
            step.changes
        );
        assert_eq!(changes(&config, None).action, Action::Create);
    }
}

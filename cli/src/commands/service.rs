//! `coop service install|uninstall|status`: `coop up` as a systemd user service that starts
//! at login, so a member needs no terminal left open (docs/APP.md).
//!
//! The unit goes to `$XDG_CONFIG_HOME/systemd/user/coop.service` (else
//! `~/.config/systemd/user/`). Where there is no systemd (`systemctl` missing, or not
//! Linux) the unit is still written on request with `--dry-run` semantics and the command
//! says plainly what to do instead.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use serde_json::json;

use crate::app::{App, Report};

/// The unit's file name.
pub(crate) const UNIT: &str = "coop.service";

use crate::cli::ServiceAction as Action;

/// Where user units live.
pub(crate) fn unit_path() -> Result<PathBuf> {
    let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => {
            let home =
                std::env::var_os("HOME").context("neither XDG_CONFIG_HOME nor HOME is set")?;
            PathBuf::from(home).join(".config")
        }
    };
    Ok(base.join("systemd").join("user").join(UNIT))
}

/// The unit text for this `coop` binary and data dir.
pub(crate) fn unit_text(exe: &Path, data_dir: &Path) -> String {
    format!(
        "# Written by `coop service install`; remove with `coop service uninstall`.\n\
         [Unit]\n\
         Description=coop node (neighbourhood co-op ledger) and its app on 127.0.0.1\n\
         After=network-online.target\n\
         Wants=network-online.target\n\
         \n\
         [Service]\n\
         Type=simple\n\
         ExecStart=\"{}\" --data-dir \"{}\" up\n\
         Restart=on-failure\n\
         RestartSec=5\n\
         \n\
         [Install]\n\
         WantedBy=default.target\n",
        exe.display(),
        data_dir.display()
    )
}

/// Whether a systemd user manager answers (not merely whether `systemctl` is installed: a
/// container has the tool without the manager).
fn systemctl() -> bool {
    cfg!(target_os = "linux")
        && Command::new("systemctl")
            .args(["--user", "show-environment"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}

fn run_systemctl(args: &[&str]) -> Result<String> {
    let out = Command::new("systemctl")
        .arg("--user")
        .args(args)
        .output()
        .context("cannot run systemctl")?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() && args[0] != "is-active" && args[0] != "is-enabled" {
        bail!(
            "systemctl --user {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(text)
}

pub(crate) fn service(app: &App, action: Action, dry_run: bool) -> Result<Report> {
    let path = unit_path()?;
    let exe = std::env::current_exe().context("cannot find the coop executable")?;
    let data_dir =
        std::path::absolute(app.dir.root()).unwrap_or_else(|_| app.dir.root().to_path_buf());
    let has_systemd = systemctl();
    let no_systemd =
        "this system has no systemd user manager (systemctl); start `coop up` at login \
                      with your desktop's autostart settings instead";
    match action {
        Action::Install => {
            let unit = unit_text(&exe, &data_dir);
            if dry_run {
                return Ok(Report::new(
                    json!({ "unit_path": path, "unit": unit, "written": false }),
                    format!("Would write {}:\n{unit}", path.display()),
                ));
            }
            if !has_systemd {
                bail!("{no_systemd}");
            }
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("cannot create {}", parent.display()))?;
            }
            std::fs::write(&path, &unit)
                .with_context(|| format!("cannot write {}", path.display()))?;
            run_systemctl(&["daemon-reload"])?;
            run_systemctl(&["enable", "--now", UNIT])?;
            Ok(Report::new(
                json!({ "unit_path": path, "unit": unit, "written": true }),
                format!(
                    "Installed {}: coop up now starts at login and runs now. Open the app with `coop ui`.",
                    path.display()
                ),
            ))
        }
        Action::Uninstall => {
            let existed = path.exists();
            if dry_run {
                return Ok(Report::new(
                    json!({ "unit_path": path, "removed": false, "installed": existed }),
                    format!("Would stop the service and remove {}", path.display()),
                ));
            }
            if has_systemd && existed {
                run_systemctl(&["disable", "--now", UNIT])?;
            }
            if existed {
                std::fs::remove_file(&path)
                    .with_context(|| format!("cannot remove {}", path.display()))?;
                if has_systemd {
                    run_systemctl(&["daemon-reload"])?;
                }
            }
            Ok(Report::new(
                json!({ "unit_path": path, "removed": existed }),
                if existed {
                    format!(
                        "Removed {}; coop up no longer starts at login.",
                        path.display()
                    )
                } else {
                    format!("No service installed ({} does not exist).", path.display())
                },
            ))
        }
        Action::Status => {
            let installed = path.exists();
            let (active, enabled) = if has_systemd && installed {
                (
                    Some(run_systemctl(&["is-active", UNIT])?),
                    Some(run_systemctl(&["is-enabled", UNIT])?),
                )
            } else {
                (None, None)
            };
            let mut text = if installed {
                format!("Installed: {}", path.display())
            } else {
                format!("Not installed ({} does not exist)", path.display())
            };
            match (&active, &enabled) {
                (Some(a), Some(e)) => text.push_str(&format!("\nsystemd: {a}, {e}")),
                _ if !has_systemd => text.push_str(&format!("\nNote: {no_systemd}.")),
                _ => {}
            }
            Ok(Report::new(
                json!({
                    "unit_path": path,
                    "installed": installed,
                    "systemd": has_systemd,
                    "active": active,
                    "enabled": enabled,
                }),
                text,
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_unit_runs_coop_up_for_the_data_dir() {
        let u = unit_text(
            Path::new("/usr/bin/coop"),
            Path::new("/home/a/.local/share/coop"),
        );
        assert!(
            u.contains("ExecStart=\"/usr/bin/coop\" --data-dir \"/home/a/.local/share/coop\" up\n")
        );
        assert!(u.contains("WantedBy=default.target"));
        assert!(u.contains("Restart=on-failure"));
    }
}

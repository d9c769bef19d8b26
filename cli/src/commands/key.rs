//! The identity key: `coop key backup`, `restore` and `forget` (docs/CLI.md, "Keys"; the
//! backup format is in docs/PROTOCOL.md, "Identity-key backup").

use coop_model::query::Family;
use std::path::Path;

use anyhow::{bail, Context, Result};
use coop_node::keys;
use rand::RngCore;
use serde_json::json;

use crate::app::{App, Report};
use crate::cli::KeyCommand;

pub(crate) fn key(app: &App, cmd: KeyCommand) -> Result<Report> {
    match cmd {
        KeyCommand::Backup {
            out,
            passphrase_file,
        } => backup(app, &out, passphrase_file.as_deref()),
        KeyCommand::Restore {
            file,
            passphrase_file,
            name,
        } => restore(app, &file, passphrase_file.as_deref(), name.as_deref()),
        KeyCommand::Forget => forget(app),
    }
}

/// The passphrase: the first line of `file`, or typed at the terminal (twice when `new`).
fn passphrase(file: Option<&Path>, new: bool) -> Result<String> {
    if let Some(f) = file {
        let text = std::fs::read_to_string(f)
            .with_context(|| format!("cannot read the passphrase file {}", f.display()))?;
        let line = text.lines().next().unwrap_or("").to_string();
        if line.is_empty() {
            bail!("the passphrase file {} is empty", f.display());
        }
        return Ok(line);
    }
    let p = rpassword::prompt_password("Passphrase: ")
        .context("cannot read a passphrase from the terminal (use --passphrase-file FILE)")?;
    if new {
        let again = rpassword::prompt_password("Passphrase again: ")
            .context("cannot read a passphrase from the terminal")?;
        if again != p {
            bail!("the two passphrases differ; nothing was written");
        }
    }
    Ok(p)
}

fn backup(app: &App, out: &Path, pfile: Option<&Path>) -> Result<Report> {
    // The identity key, or on a recovered member's device the key the recovery bound them
    // to (docs/RULES.md R19).
    let (identity, member) = coop_node::device::signer(&app.dir)?;
    if out.exists() {
        bail!("{} exists; choose a new file for the backup", out.display());
    }
    let pass = passphrase(pfile, true)?;
    let mut salt = [0u8; 16];
    let mut nonce = [0u8; 12];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let text = keys::seal_backup_for(&identity, member, &pass, salt, nonce, keys::Cost::default())?;
    keys::write_backup(out, &text)?;
    Ok(Report::new(
        json!({ "file": out.display().to_string(), "member": member }),
        format!(
            "Wrote the identity key of member {} to {}, encrypted under your passphrase.\n\
             Keep it off this machine (a USB stick in a drawer, a printout): with it and the\n\
             passphrase you can pair new devices even if every device is lost.\n",
            member.short(),
            out.display()
        ),
    ))
}

fn restore(app: &App, file: &Path, pfile: Option<&Path>, name: Option<&str>) -> Result<Report> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    // Checks the format before asking for anything.
    let member = keys::backup_member(&text)?;
    let pass = passphrase(pfile, false)?;
    let (identity, whose) = keys::open_backup_for(&text, &pass)?;
    let fresh = !app.dir.is_initialized();
    if fresh && identity.member_id() != whose {
        bail!(
            "{} holds the recovery key of member {}: restore it into a data dir of theirs (one \
             that ran `coop device recover-request`, or a device paired with them)",
            file.display(),
            whose.short()
        );
    }
    if fresh {
        // Every device is gone: a new data dir for the member, with a new device key.
        let Some(name) = name else {
            bail!(
                "{} is a new data dir: give your display name with --name NAME",
                app.dir.root().display()
            );
        };
        let mut device = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut device);
        app.dir.init(name, identity.seed(), device)?;
    } else {
        keys::restore_key(&app.dir, &identity, whose)?;
    }
    let next = if fresh {
        "Next: `coop join CODE` with an invite from any member: this new device joins as you."
    } else {
        "This device can approve new devices again (`coop device approve CODE`)."
    };
    Ok(Report::new(
        json!({ "member": member, "new_data_dir": fresh }),
        format!(
            "Restored the identity key of member {}.\n{next}\n",
            member.short()
        ),
    ))
}

fn forget(app: &App) -> Result<Report> {
    let me = app.me()?;
    let device = app.dir.device()?.device_id();
    let state = app.backend()?.view(Family::Members)?.into_state();
    let certified = state.devices.get(&device).is_some_and(|i| i.member == me);
    keys::forget_identity(&app.dir, certified)?;
    Ok(Report::new(
        json!({ "member": me, "device": device }),
        "Removed the identity key from this device; it goes on acting for you through its\n\
         certificate. To pair or revoke devices, use a device that holds the key, or\n\
         `coop key restore FILE` from your backup.\n",
    ))
}

//! The data directory: keys (0600), the member's configuration, the store, the API socket.
//!
//! ```text
//! <dir>/identity.key   member identity key seed, hex (0600); absent on a device that acts
//!                      through its certificate only (paired, or after `coop key forget`)
//! <dir>/member.pub     the member id, hex: whose data dir this is, with or without the key
//! <dir>/machine.id     a hash of the machine id the device was made on (see `device`)
//! <dir>/pairing.json   a paired device's approved certificate until it is written
//! <dir>/device.key     this device's key seed, hex (0600); never leaves the machine
//! <dir>/config.json    display name, community, LAN key, peers, listen addresses, app port
//! <dir>/store/         the sled store (see `store`)
//! <dir>/api.sock       the local API while `coop up` runs (0600; docs/API.md)
//! <dir>/store.manifest what the store must hold (see `store`, docs/PROTOCOL.md §9)
//! <dir>/store.snapshot a cache of the Automerge document (see `snapshot`, docs/PROTOCOL.md §9)
//! <dir>/store.derived  a cache of the derived state (docs/PROTOCOL.md §9)
//! <dir>/store.decoded  a cache of the log's decoded changes (docs/PROTOCOL.md §9)
//! <dir>/peers.json     the peer store: addresses that worked (see `peerstore`)
//! ```

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use coop_model::{CommunityId, DeviceKey, IdentityKey};
use serde::{Deserialize, Serialize};

use crate::error::NodeError;

/// Version of `config.json`.
pub const CONFIG_VERSION: u32 = 1;

/// What this member's node is configured with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// Format version.
    pub version: u32,
    /// The member's display name.
    pub display_name: String,
    /// The community joined or founded, once there is one.
    pub community: Option<CommunityId>,
    /// The LAN pre-shared key (hex, 32 bytes), when the community uses one.
    pub psk: Option<String>,
    /// Peers to dial (multiaddrs).
    #[serde(default)]
    pub peers: Vec<String>,
    /// Addresses to listen on (multiaddrs); empty means the default.
    #[serde(default)]
    pub listen: Vec<String>,
    /// The loopback port the app's API is served on, chosen once and kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ui_port: Option<u16>,
    /// The TCP port the node listens on for peers, chosen once (by the OS, the first time
    /// a listen address asks for port 0) and kept, so peers find it again after a restart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen_port: Option<u16>,
    /// Community relays (multiaddrs ending in `/p2p/<relay peer id>`), from invites and
    /// `coop peer add --relay`.
    #[serde(default)]
    pub relays: Vec<String>,
}

/// A data directory on disk.
#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    /// The directory at `root` (not created until [`DataDir::init`]).
    pub fn new(root: impl Into<PathBuf>) -> DataDir {
        DataDir { root: root.into() }
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }
    /// The store directory.
    pub fn store_path(&self) -> PathBuf {
        self.root.join("store")
    }
    /// The local API's socket (docs/API.md).
    pub fn api_socket(&self) -> PathBuf {
        self.root.join("api.sock")
    }
    fn config_path(&self) -> PathBuf {
        self.root.join("config.json")
    }

    /// Whether `coop init` (or `coop device complete`) has run here.
    pub fn is_initialized(&self) -> bool {
        (self.root.join("identity.key").exists() || self.root.join("member.pub").exists())
            && self.config_path().exists()
    }

    /// The member this data dir acts for: from the identity key when the device holds it,
    /// else from `member.pub` (a device acting through its certificate).
    pub fn member(&self) -> Result<coop_model::MemberId, NodeError> {
        if self.root.join("identity.key").exists() {
            return Ok(self.identity()?.member_id());
        }
        let path = self.root.join("member.pub");
        if !path.exists() {
            return Err(NodeError::NotInitialized(self.root.clone()));
        }
        let text = fs::read_to_string(&path).map_err(|e| NodeError::io(&path, e))?;
        let mut id = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut id).map_err(|_| {
            NodeError::Corrupt(format!("{} is not a 32-byte hex id", path.display()))
        })?;
        Ok(coop_model::MemberId(id))
    }

    /// Records the member id in `member.pub` (public; replaced atomically).
    pub fn remember_member(&self, member: &coop_model::MemberId) -> Result<(), NodeError> {
        let path = self.root.join("member.pub");
        let tmp = self.root.join("member.pub.tmp");
        fs::write(&tmp, hex::encode(member.0)).map_err(|e| NodeError::io(&tmp, e))?;
        fs::rename(&tmp, &path).map_err(|e| NodeError::io(&path, e))
    }

    /// Creates the directory with fresh keys from the given seeds (the caller draws them
    /// from the OS RNG). Refuses to overwrite an existing identity.
    pub fn init(
        &self,
        display_name: &str,
        identity_seed: [u8; 32],
        device_seed: [u8; 32],
    ) -> Result<Config, NodeError> {
        if self.root.join("identity.key").exists() {
            return Err(NodeError::AlreadyInitialized(self.root.clone()));
        }
        let name = display_name.trim();
        if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
            return Err(NodeError::InvalidInput(
                "display name must be 1-64 printable characters".into(),
            ));
        }
        fs::create_dir_all(&self.root).map_err(|e| NodeError::io(&self.root, e))?;
        // The data dir holds keys and the LAN key: owner only.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&self.root, fs::Permissions::from_mode(0o700))
                .map_err(|e| NodeError::io(&self.root, e))?;
        }
        write_secret(&self.root.join("identity.key"), &hex::encode(identity_seed))?;
        write_secret(&self.root.join("device.key"), &hex::encode(device_seed))?;
        self.remember_member(&IdentityKey::from_seed(identity_seed).member_id())?;
        let config = Config {
            version: CONFIG_VERSION,
            display_name: name.to_string(),
            community: None,
            psk: None,
            peers: Vec::new(),
            listen: Vec::new(),
            ui_port: None,
            listen_port: None,
            relays: Vec::new(),
        };
        self.save_config(&config)?;
        Ok(config)
    }

    /// Reads the configuration.
    pub fn config(&self) -> Result<Config, NodeError> {
        if !self.is_initialized() {
            return Err(NodeError::NotInitialized(self.root.clone()));
        }
        let path = self.config_path();
        let text = fs::read_to_string(&path).map_err(|e| NodeError::io(&path, e))?;
        let c: Config = serde_json::from_str(&text)
            .map_err(|e| NodeError::Corrupt(format!("{}: {e}", path.display())))?;
        if c.version != CONFIG_VERSION {
            return Err(NodeError::Corrupt(format!(
                "{}: unsupported version {}",
                path.display(),
                c.version
            )));
        }
        Ok(c)
    }

    /// Writes the configuration atomically (write to a temp file, fsync, rename).
    pub fn save_config(&self, config: &Config) -> Result<(), NodeError> {
        let path = self.config_path();
        let tmp = self.root.join("config.json.tmp");
        let text =
            serde_json::to_string_pretty(config).map_err(|e| NodeError::Corrupt(e.to_string()))?;
        // The config carries the LAN pre-shared key: 0600 like the keys.
        let mut opts = fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp).map_err(|e| NodeError::io(&tmp, e))?;
        f.write_all(text.as_bytes())
            .map_err(|e| NodeError::io(&tmp, e))?;
        f.sync_all().map_err(|e| NodeError::io(&tmp, e))?;
        fs::rename(&tmp, &path).map_err(|e| NodeError::io(&path, e))?;
        Ok(())
    }

    /// The member's identity key.
    pub fn identity(&self) -> Result<IdentityKey, NodeError> {
        let path = self.root.join("identity.key");
        if !path.exists() && self.root.join("member.pub").exists() {
            return Err(NodeError::InvalidInput(format!(
                "this device holds no identity key (it acts through its certificate); \
                 run this on a device that does, or `coop key restore FILE` here ({})",
                self.root.display()
            )));
        }
        Ok(IdentityKey::from_seed(read_seed(&path)?))
    }

    /// This device's key.
    pub fn device(&self) -> Result<DeviceKey, NodeError> {
        Ok(DeviceKey::from_seed(read_seed(
            &self.root.join("device.key"),
        )?))
    }
}

/// Writes a new file readable by its owner only; refuses to replace an existing one.
pub(crate) fn write_secret(path: &Path, text: &str) -> Result<(), NodeError> {
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(|e| NodeError::io(path, e))?;
    f.write_all(text.as_bytes())
        .map_err(|e| NodeError::io(path, e))?;
    f.sync_all().map_err(|e| NodeError::io(path, e))
}

fn read_seed(path: &Path) -> Result<[u8; 32], NodeError> {
    let text = fs::read_to_string(path).map_err(|e| NodeError::io(path, e))?;
    let mut seed = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut seed)
        .map_err(|_| NodeError::Corrupt(format!("{} is not a 32-byte hex key", path.display())))?;
    Ok(seed)
}

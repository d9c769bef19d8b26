//! The visibility setting of a member's balance and history. Rules: docs/RULES.md,
//! "Privacy".

use super::layout::{record_layout, Word};
use super::Visibility;

record_layout! {
    /// The author's visibility setting; the latest in total order wins.
    "visibility" => pub struct VisibilitySetting {
        /// Who may see the author's balance and history.
        level: Visibility = Word,
    }
}

impl VisibilitySetting {
    pub(crate) fn summary(&self) -> String {
        format!("visibility set to {}", self.level)
    }
}

// ---- Derivation rules (docs/RULES.md) ----

use crate::envelope::Refusal;
use crate::fold::{Ctx, Derived, Past, Rule};
use crate::ids::MemberId;

impl Rule for VisibilitySetting {
    fn apply(
        &self,
        d: &mut Derived,
        _graph: Past<'_>,
        _c: &Ctx<'_>,
        author: MemberId,
    ) -> Result<(), Refusal> {
        let VisibilitySetting { level } = self;
        d.set_visibility(author, *level)
    }
}

impl Derived {
    /// `visibility`: the author's setting; the latest in total order wins. Only admitted
    /// members get here (causal authorization refuses everyone else `not_a_member`).
    pub(crate) fn set_visibility(
        &mut self,
        author: MemberId,
        level: Visibility,
    ) -> Result<(), Refusal> {
        if let Some(m) = self.state.members.get_mut(&author) {
            m.visibility = level;
        }
        Ok(())
    }
}

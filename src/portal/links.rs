//! The three mailed-link journeys (registration links 1 and 2, password reset, e-mail
//! change) share one landing: a GET that says what the link would do and consumes
//! nothing — mail scanners follow links — before the member's POST opens it.

use super::Portal;
use crate::error::Error;
use crate::flow::LinkStatus;
use crate::observe::{self, StepName};

use crate::flow::{recovery, registration};
use crate::token::{
    EmailChangeLinkToken, FlowHandle, MailedLink, PasswordResetLinkToken, RegistrationLinkToken,
    VerificationLinkToken,
};

impl Portal {
    /// The GET of a link landing: what `token` would do now. Digests are separated by
    /// purpose, so a link of one kind never finds another kind's flow.
    /// It runs in the step's span, counted under `name`, like the driven steps.
    pub(super) async fn inspect_link<T: MailedLink>(
        &self,
        name: StepName,
        token: &T,
    ) -> Result<LinkStatus, Error> {
        observe::step(name, async {
            let loaded = self.load(&self.flow_load(token)).await?;
            let now = self.now();
            Ok(match loaded.found() {
                Some((found, digest)) => found.value.state.link_status(digest, now),
                None => LinkStatus::Invalid,
            })
        })
        .await
    }

    /// R2, GET of link 1: what the link would do, consuming nothing (mail scanners
    /// follow links).
    pub async fn inspect_registration_link(
        &self,
        token: &RegistrationLinkToken,
    ) -> Result<LinkStatus, Error> {
        self.inspect_link(StepName::InspectRegistrationLink, token)
            .await
    }

    /// R2, POST of 【本人確認ページへ】: consumes link 1 and binds the flow to this
    /// browser. Keep the returned handle in the browser (cookie or hidden field).
    pub async fn open_registration_link(
        &self,
        token: &RegistrationLinkToken,
    ) -> Result<FlowHandle, Error> {
        let load = self.flow_load(token);
        self.decide(StepName::OpenRegistrationLink, &load, |loaded, env, rng| {
            registration::open(loaded.found(), env, rng)
        })
        .await
    }

    /// R4, GET of link 2: what the link would do, consuming nothing.
    pub async fn inspect_verification_link(
        &self,
        token: &VerificationLinkToken,
    ) -> Result<LinkStatus, Error> {
        self.inspect_link(StepName::InspectVerificationLink, token)
            .await
    }

    /// GET of the reset link: what it would do, consuming nothing (mail scanners follow
    /// links).
    pub async fn inspect_password_reset_link(
        &self,
        token: &PasswordResetLinkToken,
    ) -> Result<LinkStatus, Error> {
        self.inspect_link(StepName::InspectPasswordResetLink, token)
            .await
    }

    /// POST of the reset link: consumes it (single use, SEC-38) and binds the reset to
    /// this browser. Keep the returned handle in the browser (cookie or hidden field) for
    /// [`Portal::complete_password_reset`].
    pub async fn open_password_reset_link(
        &self,
        token: &PasswordResetLinkToken,
    ) -> Result<FlowHandle, Error> {
        let load = self.flow_with_account_load(token);
        let step_name = StepName::OpenPasswordResetLink;
        self.decide(step_name, &load, |loaded, env, rng| {
            recovery::open_reset(loaded.found(), loaded.view(), env, rng)
        })
        .await
    }

    /// GET of the address-confirmation link: what it would do, consuming nothing (mail
    /// scanners follow links).
    pub async fn inspect_email_change_link(
        &self,
        token: &EmailChangeLinkToken,
    ) -> Result<LinkStatus, Error> {
        self.inspect_link(StepName::InspectEmailChangeLink, token)
            .await
    }
}

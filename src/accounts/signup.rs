//! Accounts coming into being: self-registration and its confirmation, invitations,
//! accounts created by an operator and their activation.
use std::net::IpAddr;

use super::*;

impl AccountService {
    // ------------------------------------------------------------------ registration

    /// Self-registration. The answer is the same whether or not the address has an account:
    /// a new address gets a confirmation link, an existing one a "someone tried" notice.
    /// Registering again while the address is not confirmed sends a new link (the previous one
    /// dies; rate-limited). Each link carries the password chosen with it, so whoever owns the
    /// mailbox ends up with the password of the registration they confirm (a stranger who
    /// registered the address first cannot keep a password on it).
    #[allow(clippy::too_many_arguments)]
    pub async fn register(
        &self,
        email: &str,
        password: &SecretString,
        name: &str,
        accept_terms: bool,
        newsletter: bool,
        lang: Lang,
        ip: IpAddr,
    ) -> AccountResult<()> {
        match self.registration() {
            Registration::Open => {}
            Registration::InviteOnly => return Err(AccountError::NotAllowed("register.invite_only")),
            Registration::Closed => return Err(AccountError::NotAllowed("register.closed")),
        }
        let email = Email::parse(email).map_err(|_| AccountError::Invalid("register.email_invalid"))?;
        let name = parse_display_name(name).map_err(|_| AccountError::Invalid("register.name_invalid"))?;
        if !accept_terms {
            return Err(AccountError::Invalid("register.terms_required"));
        }
        self.policy(password, email.as_str())?;
        // Hashing first, for everyone: the answer takes as long for a known address.
        let hash = self.auth.hash_password(password).await?;
        if !self.allow_issue(TokenKind::EmailVerification, &email.lookup_key(), Some(ip)).await? {
            return Ok(());
        }
        let existing = self.user_by_email(email.as_str()).await?;
        if let Some(pending) = existing
            .as_ref()
            .filter(|u| u.status == UserStatus::Pending && !u.email_verified && u.terms_version.is_some())
        {
            let lang = self.lang_of(Some(pending), lang);
            let (raw, token) = self.new_link_token(
                TokenKind::EmailVerification,
                Some(pending.id),
                serde_json::json!({ "password_hash": hash }),
            );
            let mail = self.verification_mail(lang, pending.email.as_str(), name.as_deref(), &raw)?;
            self.stores.accounts.apply(vec![AccountOp::InsertToken(token), AccountOp::Enqueue(mail)]).await?;
            self.sent();
            tracing::info!(user_id = %pending.id, "registration repeated before confirmation: new link sent");
            return Ok(());
        }
        if let Some(existing) = existing {
            let lang = self.lang_of(Some(&existing), lang);
            let (raw, reset) = self.new_link_token(TokenKind::PasswordReset, Some(existing.id), serde_json::json!({}));
            let mail = self.compose(
                lang,
                Mail {
                    to: existing.email.as_str(),
                    name: existing.name.as_deref(),
                    kind: "already_registered",
                    paragraphs: vec![
                        self.p(lang, "mail.already_registered.body"),
                        self.p(lang, "mail.already_registered.hint"),
                    ],
                    action: Some(self.link("/password/reset/confirm", &raw)),
                    code: None,
                    expiry: Some(self.expiry_text(lang, TokenKind::PasswordReset)),
                },
            )?;
            self.stores.accounts.apply(vec![AccountOp::InsertToken(reset), AccountOp::Enqueue(mail)]).await?;
            self.sent();
            tracing::info!("registration attempted for an existing account: notice sent");
            return Ok(());
        }
        let id = UserId::new_random();
        let (raw, token) =
            self.new_link_token(TokenKind::EmailVerification, Some(id), serde_json::json!({ "password_hash": hash }));
        let mail = self.verification_mail(lang, email.as_str(), name.as_deref(), &raw)?;
        let new = NewUser {
            email: email.clone(),
            name,
            password_hash: Some(hash),
            status: UserStatus::Pending,
            is_admin: false,
        };
        let consents = SignupConsents { terms_version: Some(self.settings.accounts.terms_version.clone()), newsletter };
        let locale = ProfileUpdate { name: new.name.clone(), locale: Some(lang.code().to_owned()), time_zone: None };
        match self
            .stores
            .accounts
            .create_account(
                id,
                new,
                &consents,
                vec![
                    AccountOp::SetProfile { user: id, profile: locale },
                    AccountOp::InsertToken(token),
                    AccountOp::Enqueue(mail),
                ],
            )
            .await
        {
            Ok(_) => {}
            // Registered at the same moment by another request: same answer.
            Err(StoreError::Conflict { constraint: "users_email" }) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        self.sent();
        tracing::info!(user_id = %id, "account registered, confirmation sent");
        Ok(())
    }

    fn verification_mail(&self, lang: Lang, to: &str, name: Option<&str>, raw: &str) -> AccountResult<OutboxMessage> {
        self.compose(
            lang,
            Mail {
                to,
                name,
                kind: "verify",
                paragraphs: vec![self.p(lang, "mail.verify.body")],
                action: Some(self.link("/register/verify", raw)),
                code: None,
                expiry: Some(self.expiry_text(lang, TokenKind::EmailVerification)),
            },
        )
    }

    /// The account a verification link is for (to show before confirming).
    pub async fn verification_target(&self, raw: &str) -> AccountResult<User> {
        let t = self.live_token(TokenKind::EmailVerification, raw).await?;
        self.user(t.user_id.ok_or(AccountError::TokenInvalid)?).await
    }

    /// Confirms the address: the account becomes active.
    pub async fn verify_email(&self, raw: &str) -> AccountResult<User> {
        let t = self.live_token(TokenKind::EmailVerification, raw).await?;
        let user = t.user_id.ok_or(AccountError::TokenInvalid)?;
        let u = self.user(user).await?;
        let mut ops = vec![AccountOp::ConsumeToken { digest: t.digest.clone() }, AccountOp::SetEmailVerified { user }];
        if let Some(hash) = t.data_str("password_hash") {
            ops.push(AccountOp::SetPassword { user, hash: hash.to_owned() });
        }
        if u.status == UserStatus::Pending {
            ops.push(AccountOp::SetStatus { user, status: UserStatus::Active });
        }
        self.stores.accounts.apply(ops).await.map_err(Self::map_conflict)?;
        tracing::info!(user_id = %user, "email address verified");
        self.events.emit(user, "user.verified", serde_json::json!({"user": user, "email": u.email.as_str()}));
        self.user(user).await
    }

    // ------------------------------------------------------------------ invitations

    /// Invites `email`; returns the invitation and its link (also mailed).
    pub async fn invite(
        &self,
        email: &str,
        name: Option<&str>,
        org: Option<&InviteOrg>,
        resource: Option<&str>,
        invited_by: Option<UserId>,
        lang: Lang,
    ) -> AccountResult<(Invitation, String)> {
        let email = Email::parse(email).map_err(|_| AccountError::Invalid("register.email_invalid"))?;
        let name = match name {
            Some(n) => parse_display_name(n).map_err(|_| AccountError::Invalid("register.name_invalid"))?,
            None => None,
        };
        let clean = |v: Option<&str>| -> AccountResult<Option<String>> {
            match v.map(str::trim).filter(|s| !s.is_empty()) {
                None => Ok(None),
                Some(s) if s.len() <= 200 && !s.chars().any(|c| c.is_control() || c.is_whitespace()) => {
                    Ok(Some(s.to_owned()))
                }
                Some(_) => Err(AccountError::Invalid("invite.invalid")),
            }
        };
        let resource = clean(resource)?;
        let raw = tokens::random_token();
        let id = uuid::Uuid::new_v4();
        let expires_at =
            self.clock.now().plus_secs(i64::try_from(self.settings.accounts.invitation_ttl_secs).unwrap_or(604_800));
        let inviter = match invited_by {
            Some(u) => self.stores.users.user_by_id(u).await?,
            None => None,
        };
        let existing = self.user_by_email(email.as_str()).await?;
        let lang = self.lang_of(existing.as_ref(), lang);
        let mail = self.invitation_mail(
            lang,
            email.as_str(),
            name.as_deref(),
            inviter.as_ref(),
            org.map(|o| o.name.as_str()),
            resource.as_deref(),
            &raw,
        )?;
        let inv = NewInvitation {
            id,
            email: email.clone(),
            name,
            org: org.map(|o| o.name.clone()),
            org_id: org.map(|o| o.id),
            org_role: org.map(|o| o.role),
            resource,
            invited_by,
            token_digest: tokens::digest(&raw),
            expires_at,
        };
        self.stores.accounts.create_invitation(&inv, vec![AccountOp::Enqueue(mail)]).await?;
        self.sent();
        let created = self.stores.accounts.invitation(id).await?.ok_or(AccountError::NoAccount)?;
        tracing::info!(invitation = %id, "invitation sent");
        Ok((created, self.link("/invite", &raw)))
    }

    #[allow(clippy::too_many_arguments)]
    fn invitation_mail(
        &self,
        lang: Lang,
        to: &str,
        name: Option<&str>,
        inviter: Option<&User>,
        org: Option<&str>,
        resource: Option<&str>,
        raw: &str,
    ) -> AccountResult<OutboxMessage> {
        let mut paragraphs = vec![match inviter {
            Some(i) => {
                self.pf(lang, "mail.invitation.body", &[("inviter", i.name.as_deref().unwrap_or(i.email.as_str()))])
            }
            None => self.p(lang, "mail.invitation.body_anonymous"),
        }];
        if let Some(o) = org {
            paragraphs.push(self.pf(lang, "mail.invitation.org", &[("org", o)]));
        }
        if let Some(r) = resource {
            paragraphs.push(self.pf(lang, "mail.invitation.resource", &[("resource", r)]));
        }
        self.compose(
            lang,
            Mail {
                to,
                name,
                kind: "invitation",
                paragraphs,
                action: Some(self.link("/invite", raw)),
                code: None,
                expiry: Some(self.pf(
                    lang,
                    "mail.expires_days",
                    &[("n", &(self.settings.accounts.invitation_ttl_secs / 86400).max(1).to_string())],
                )),
            },
        )
    }

    pub async fn invitations(&self, limit: i64) -> AccountResult<Vec<Invitation>> {
        Ok(self.stores.accounts.list_invitations(limit).await?)
    }

    pub async fn revoke_invitation(&self, id: uuid::Uuid) -> AccountResult<bool> {
        Ok(self.stores.accounts.revoke_invitation(id, self.clock.now()).await?)
    }

    /// A new link for a pending invitation (the old link dies, the expiry restarts).
    pub async fn resend_invitation(&self, id: uuid::Uuid, lang: Lang) -> AccountResult<(Invitation, String)> {
        let inv = self.stores.accounts.invitation(id).await?.ok_or(AccountError::TokenInvalid)?;
        let raw = tokens::random_token();
        let inviter = match inv.invited_by {
            Some(u) => self.stores.users.user_by_id(u).await?,
            None => None,
        };
        let mail = self.invitation_mail(
            lang,
            &inv.email,
            inv.name.as_deref(),
            inviter.as_ref(),
            inv.org.as_deref(),
            inv.resource.as_deref(),
            &raw,
        )?;
        let expires_at =
            self.clock.now().plus_secs(i64::try_from(self.settings.accounts.invitation_ttl_secs).unwrap_or(604_800));
        self.stores
            .accounts
            .reissue_invitation(id, &tokens::digest(&raw), expires_at, vec![AccountOp::Enqueue(mail)])
            .await
            .map_err(|e| if matches!(e, StoreError::NotFound) { AccountError::TokenInvalid } else { e.into() })?;
        self.sent();
        let inv = self.stores.accounts.invitation(id).await?.ok_or(AccountError::TokenInvalid)?;
        Ok((inv, self.link("/invite", &raw)))
    }

    /// The pending invitation of a link.
    pub async fn invitation_of_link(&self, raw: &str) -> AccountResult<Invitation> {
        if raw.is_empty() || raw.len() > 64 {
            return Err(AccountError::TokenInvalid);
        }
        match self.stores.accounts.invitation_by_token(&tokens::digest(raw)).await? {
            Some(i) if i.status(self.clock.now()) == "pending" => Ok(i),
            _ => Err(AccountError::TokenInvalid),
        }
    }

    /// Accepts an invitation. No account for the address: one is created, verified (the link
    /// proves the mailbox) and signed in, without a password. An account exists: the browser
    /// must be signed in to it; the resource is attached.
    pub async fn accept_invitation(&self, raw: &str, signed_in: Option<UserId>) -> AccountResult<InvitationOutcome> {
        let inv = self.invitation_of_link(raw).await?;
        let existing = self.user_by_email(&inv.email).await?;
        let resource_op = |user: UserId| {
            let resource =
                inv.resource.clone().map(|r| AccountOp::AddResource { user, resource: r, invitation: Some(inv.id) });
            let org = inv.org_id.map(|org| AccountOp::JoinOrg {
                org,
                user,
                role: inv.org_role.unwrap_or(crate::domain::org::OrgRole::Member),
            });
            resource.into_iter().chain(org)
        };
        match (existing, signed_in) {
            (Some(u), Some(me)) if u.id == me => {
                let mut ops = vec![AccountOp::AcceptInvitation { id: inv.id, user: me }];
                ops.extend(resource_op(me));
                self.stores.accounts.apply(ops).await.map_err(Self::map_conflict)?;
                tracing::info!(invitation = %inv.id, user_id = %me, "invitation accepted by an existing account");
                Ok(InvitationOutcome::Attached)
            }
            (Some(u), None) => Ok(InvitationOutcome::SignInFirst { email: u.email.to_string() }),
            (_, Some(me)) => {
                let current = self.user(me).await?;
                Ok(InvitationOutcome::OtherAccount { email: current.email.to_string() })
            }
            (None, None) => {
                let email = Email::parse(&inv.email).map_err(|_| AccountError::TokenInvalid)?;
                let id = UserId::new_random();
                let mut ops = vec![
                    AccountOp::AcceptInvitation { id: inv.id, user: id },
                    AccountOp::SetEmailVerified { user: id },
                ];
                ops.extend(resource_op(id));
                let new = NewUser {
                    email,
                    name: inv.name.clone(),
                    password_hash: None,
                    status: UserStatus::Active,
                    is_admin: false,
                };
                let u = match self.stores.accounts.create_account(id, new, &SignupConsents::default(), ops).await {
                    Ok(u) => u,
                    Err(StoreError::Conflict { constraint: "users_email" }) => {
                        return Ok(InvitationOutcome::SignInFirst { email: inv.email.clone() })
                    }
                    Err(e) => return Err(Self::map_conflict(e)),
                };
                let u = self.user(u.id).await?;
                tracing::info!(invitation = %inv.id, user_id = %u.id, "account created from an invitation");
                let data = serde_json::json!({"user": u.id, "email": u.email.as_str(), "via": "invitation"});
                self.events.emit(u.id, "user.created", data);
                Ok(InvitationOutcome::Created(Box::new(self.authenticated(u, Amr::Email))))
            }
        }
    }

    // ------------------------------------------------------------------ operator-created accounts

    /// An account created by an operator. With a password: active at once. Without: pending,
    /// and an activation link is mailed (returned too); the user chooses the password.
    pub async fn create_by_operator(
        &self,
        email: &str,
        name: Option<&str>,
        password: Option<&SecretString>,
        admin: bool,
    ) -> AccountResult<(User, Option<String>)> {
        self.create_by_operator_with(UserId::new_random(), email, name, password, admin, Vec::new()).await
    }

    /// [`Self::create_by_operator`], with more steps for the new account (its membership of an
    /// organization, their audit entries) in the same transaction: all or nothing.
    pub async fn create_by_operator_with(
        &self,
        id: UserId,
        email: &str,
        name: Option<&str>,
        password: Option<&SecretString>,
        admin: bool,
        then: Vec<AccountOp>,
    ) -> AccountResult<(User, Option<String>)> {
        let email = Email::parse(email).map_err(|_| AccountError::Invalid("register.email_invalid"))?;
        let name = match name {
            Some(n) => parse_display_name(n).map_err(|_| AccountError::Invalid("register.name_invalid"))?,
            None => None,
        };
        let (hash, status) = match password {
            Some(p) => {
                self.policy(p, email.as_str())?;
                (Some(self.auth.hash_password(p).await?), UserStatus::Active)
            }
            None => (None, UserStatus::Pending),
        };
        let mut ops = Vec::new();
        let mut link = None;
        if status == UserStatus::Pending {
            let (raw, token) = self.new_link_token(TokenKind::Activation, Some(id), serde_json::json!({}));
            let lang = Lang::En;
            ops.push(AccountOp::InsertToken(token));
            ops.push(AccountOp::Enqueue(self.activation_mail(lang, email.as_str(), name.as_deref(), &raw)?));
            link = Some(self.link("/activate", &raw));
        }
        ops.extend(then);
        let new = NewUser { email, name, password_hash: hash, status, is_admin: admin };
        let u = self.stores.accounts.create_account(id, new, &SignupConsents::default(), ops).await.map_err(
            |e| match e {
                StoreError::Conflict { constraint: "users_email" } => AccountError::NotAllowed("exists"),
                other => other.into(),
            },
        )?;
        self.sent();
        Ok((u, link))
    }

    fn activation_mail(&self, lang: Lang, to: &str, name: Option<&str>, raw: &str) -> AccountResult<OutboxMessage> {
        self.compose(
            lang,
            Mail {
                to,
                name,
                kind: "activation",
                paragraphs: vec![self.p(lang, "mail.activation.body")],
                action: Some(self.link("/activate", raw)),
                code: None,
                expiry: Some(self.expiry_text(lang, TokenKind::Activation)),
            },
        )
    }

    /// A new activation link for a pending account (the previous one dies); mailed and returned.
    pub async fn activation_link(&self, email: &str) -> AccountResult<(User, String)> {
        let u = self.user_by_email(email).await?.ok_or(AccountError::NoAccount)?;
        if u.status != UserStatus::Pending {
            return Err(AccountError::NotAllowed("not_pending"));
        }
        let lang = self.lang_of(Some(&u), Lang::En);
        let (raw, token) = self.new_link_token(TokenKind::Activation, Some(u.id), serde_json::json!({}));
        let mail = self.activation_mail(lang, u.email.as_str(), u.name.as_deref(), &raw)?;
        self.stores.accounts.apply(vec![AccountOp::InsertToken(token), AccountOp::Enqueue(mail)]).await?;
        self.sent();
        Ok((u, self.link("/activate", &raw)))
    }

    pub async fn activation_target(&self, raw: &str) -> AccountResult<User> {
        let t = self.live_token(TokenKind::Activation, raw).await?;
        self.user(t.user_id.ok_or(AccountError::TokenInvalid)?).await
    }

    /// The user chooses the password: active, verified, signed in.
    pub async fn activate(&self, raw: &str, password: &SecretString) -> AccountResult<Authenticated> {
        let t = self.live_token(TokenKind::Activation, raw).await?;
        let u = self.user(t.user_id.ok_or(AccountError::TokenInvalid)?).await?;
        self.policy(password, u.email.as_str())?;
        let hash = self.auth.hash_password(password).await?;
        self.stores
            .accounts
            .apply(vec![
                AccountOp::ConsumeToken { digest: t.digest },
                AccountOp::SetPassword { user: u.id, hash },
                AccountOp::SetEmailVerified { user: u.id },
                AccountOp::SetStatus { user: u.id, status: UserStatus::Active },
            ])
            .await
            .map_err(Self::map_conflict)?;
        let u = self.user(u.id).await?;
        tracing::info!(user_id = %u.id, "account activated");
        Ok(self.authenticated(u, Amr::Pwd))
    }
}

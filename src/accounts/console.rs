//! What a signed-in user does with their account: profile, password, email and phone,
//! sessions and history, export, deletion.
use std::net::IpAddr;

use super::*;

impl AccountService {
    // ------------------------------------------------------------------ the console

    pub async fn profile(&self, user: UserId) -> AccountResult<User> {
        self.user(user).await
    }

    /// The account, if it still exists.
    pub async fn find(&self, user: UserId) -> AccountResult<Option<User>> {
        Ok(self.stores.users.user_by_id(user).await?)
    }

    /// Accounts in creation order (operators).
    pub async fn list(&self, limit: i64, offset: i64) -> AccountResult<Vec<User>> {
        Ok(self.stores.users.list_users(limit.clamp(1, 100_000), offset.max(0)).await?)
    }

    /// Applications the user consented to: (client, scope, since).
    pub async fn applications(&self, user: UserId) -> AccountResult<Vec<(crate::domain::Client, String, UnixTime)>> {
        Ok(self.stores.consents.consents_of(user).await?)
    }

    /// Withdraws consent for an application: the consent is forgotten and every grant the
    /// user gave it is revoked (its refresh and access tokens stop working).
    pub async fn withdraw_consent(&self, user: UserId, client: &crate::domain::ClientId) -> AccountResult<()> {
        self.stores.consents.delete_consent(user, client).await?;
        self.stores.grants.revoke_user_client_grants(user, client, self.clock.now()).await?;
        tracing::info!(user_id = %user, client_id = %client, "consent withdrawn");
        Ok(())
    }

    pub async fn update_profile(&self, user: UserId, name: &str, locale: &str, time_zone: &str) -> AccountResult<()> {
        let name = parse_display_name(name).map_err(|_| AccountError::Invalid("register.name_invalid"))?;
        let locale = match locale.trim() {
            "" => None,
            l => Some(Lang::parse(l).ok_or(AccountError::Invalid("account.locale_invalid"))?.code().to_owned()),
        };
        let tz = time_zone.trim();
        let time_zone = if tz.is_empty() {
            None
        } else if valid_time_zone(tz) {
            Some(tz.to_owned())
        } else {
            return Err(AccountError::Invalid("account.time_zone_invalid"));
        };
        self.stores
            .accounts
            .apply(vec![AccountOp::SetProfile { user, profile: ProfileUpdate { name, locale, time_zone } }])
            .await?;
        Ok(())
    }

    pub async fn set_locale(&self, user: UserId, lang: Lang) -> AccountResult<()> {
        let u = self.user(user).await?;
        let profile = ProfileUpdate { name: u.name, locale: Some(lang.code().to_owned()), time_zone: u.time_zone };
        self.stores.accounts.apply(vec![AccountOp::SetProfile { user, profile }]).await?;
        Ok(())
    }

    /// Whether the account has a password (accounts made by federation, an invitation taken
    /// with a passkey... have none until they set one).
    pub async fn has_password(&self, u: &User) -> AccountResult<bool> {
        Ok(self
            .stores
            .users
            .credentials_by_email(&u.email.lookup_key())
            .await?
            .is_some_and(|c| c.user.id == u.id && c.password_hash.is_some()))
    }

    /// Changes the password (the current one is required when there is one); the other
    /// sessions end; a notice is sent.
    /// Needs a recent sign-in, and the current password when the account has one (accounts
    /// made from an invitation have none).
    pub async fn change_password(
        &self,
        user: UserId,
        current: &SecretString,
        new: &SecretString,
        current_sid: &str,
        auth_time: UnixTime,
    ) -> AccountResult<()> {
        let u = self.user(user).await?;
        // A sensitive change: a recent sign-in, and the current password when there is one.
        if !self.recent(auth_time) {
            return Err(AccountError::Reauthenticate);
        }
        if self.auth.check_user_password(&u, current).await? == Some(false) {
            return Err(AccountError::Invalid("account.current_wrong"));
        }
        self.policy(new, u.email.as_str())?;
        let hash = self.auth.hash_password(new).await?;
        let lang = self.lang_of(Some(&u), Lang::En);
        let grants = self.session_grants_of(user, Some(current_sid)).await?;
        self.stores
            .accounts
            .apply(
                self.with_logout_jobs(
                    &grants,
                    vec![
                        AccountOp::SetPassword { user, hash },
                        AccountOp::EndSessions { user, except: Some(current_sid.to_owned()) },
                        AccountOp::Enqueue(self.password_changed_mail(&u, lang)?),
                    ],
                )
                .await,
            )
            .await?;
        self.sent();
        self.oidc.sessions_ended(&grants);
        tracing::info!(user_id = %user, "password changed; other sessions ended");
        Ok(())
    }

    /// Where the email change stands.
    pub async fn email_change_step(&self, user: UserId) -> AccountResult<EmailChangeStep> {
        let now = self.clock.now();
        if let Some(t) = self.stores.accounts.live_code(user, TokenKind::EmailChangeNew, now).await? {
            return Ok(EmailChangeStep::New { new_email: t.email.unwrap_or_default() });
        }
        if let Some(t) = self.stores.accounts.live_code(user, TokenKind::EmailChangeCurrent, now).await? {
            return Ok(EmailChangeStep::Current { new_email: t.email.unwrap_or_default() });
        }
        Ok(EmailChangeStep::Start)
    }

    fn code_mail(
        &self,
        lang: Lang,
        to: &str,
        name: Option<&str>,
        kind: &'static str,
        code: &str,
        body: String,
    ) -> AccountResult<OutboxMessage> {
        self.compose(
            lang,
            Mail {
                to,
                name,
                kind,
                paragraphs: vec![body],
                action: None,
                code: Some(code.to_owned()),
                expiry: Some(self.expiry_text(lang, TokenKind::EmailChangeCurrent)),
            },
        )
    }

    /// Step 1: a code to the current address, for `new_email`.
    pub async fn start_email_change(
        &self,
        user: UserId,
        new_email: &str,
        ip: IpAddr,
        auth_time: UnixTime,
    ) -> AccountResult<()> {
        if !self.recent(auth_time) {
            return Err(AccountError::Reauthenticate);
        }
        let u = self.user(user).await?;
        let new = Email::parse(new_email).map_err(|_| AccountError::Invalid("register.email_invalid"))?;
        if new.lookup_key() == u.email.lookup_key() {
            return Err(AccountError::Invalid("email_change.same"));
        }
        if !self.allow_issue(TokenKind::EmailChangeCurrent, &u.email.lookup_key(), Some(ip)).await? {
            return Err(AccountError::Throttled);
        }
        let lang = self.lang_of(Some(&u), Lang::En);
        let (code, token) =
            self.new_code(TokenKind::EmailChangeCurrent, user, Some(new.to_string()), serde_json::json!({}));
        let body = self.pf(lang, "mail.email_code_current.body", &[("email", new.as_str())]);
        let mail = self.code_mail(lang, u.email.as_str(), u.name.as_deref(), "email_code_current", &code, body)?;
        self.stores.accounts.apply(vec![AccountOp::InsertToken(token), AccountOp::Enqueue(mail)]).await?;
        self.sent();
        Ok(())
    }

    /// Checks a code of `kind`; a wrong one counts (the code dies after a few).
    async fn check_code(&self, user: UserId, kind: TokenKind, code: &str) -> AccountResult<AccountToken> {
        let now = self.clock.now();
        let Some(t) = self.stores.accounts.live_code(user, kind, now).await? else {
            return Err(AccountError::TokenInvalid);
        };
        let code = code.trim();
        let digest = code_digest(&self.secret, kind, user, code);
        if code.len() != 6 || !tokens::constant_time_eq(digest.as_bytes(), t.digest.as_bytes()) {
            let attempts = self.stores.accounts.code_failed(user, kind, now).await?;
            return Err(if attempts >= crate::domain::account::CODE_MAX_ATTEMPTS {
                AccountError::TokenInvalid
            } else {
                AccountError::CodeWrong
            });
        }
        Ok(t)
    }

    /// Step 2: the current address's code is right; a code goes to the new address.
    pub async fn confirm_email_current(&self, user: UserId, code: &str) -> AccountResult<()> {
        let t = self.check_code(user, TokenKind::EmailChangeCurrent, code).await?;
        let u = self.user(user).await?;
        let new_email = t.email.clone().unwrap_or_default();
        let lang = self.lang_of(Some(&u), Lang::En);
        let (code, token) =
            self.new_code(TokenKind::EmailChangeNew, user, Some(new_email.clone()), serde_json::json!({}));
        let body = self.p(lang, "mail.email_code_new.body");
        let mail = self.code_mail(lang, &new_email, u.name.as_deref(), "email_code_new", &code, body)?;
        self.stores
            .accounts
            .apply(vec![
                AccountOp::ConsumeToken { digest: t.digest },
                AccountOp::InsertToken(token),
                AccountOp::Enqueue(mail),
            ])
            .await
            .map_err(Self::map_conflict)?;
        self.sent();
        Ok(())
    }

    /// Step 3: the new address's code is right: the address changes, the old one is told,
    /// the other sessions end.
    pub async fn confirm_email_new(&self, user: UserId, code: &str, current_sid: &str) -> AccountResult<()> {
        let t = self.check_code(user, TokenKind::EmailChangeNew, code).await?;
        let u = self.user(user).await?;
        let new = Email::parse(t.email.as_deref().unwrap_or("")).map_err(|_| AccountError::TokenInvalid)?;
        let lang = self.lang_of(Some(&u), Lang::En);
        let notice = self.compose(
            lang,
            Mail {
                to: u.email.as_str(),
                name: u.name.as_deref(),
                kind: "email_changed",
                paragraphs: vec![
                    self.pf(lang, "mail.email_changed.body", &[("email", new.as_str())]),
                    self.p(lang, "mail.email_changed.hint"),
                ],
                action: None,
                code: None,
                expiry: None,
            },
        )?;
        let grants = self.session_grants_of(user, Some(current_sid)).await?;
        self.stores
            .accounts
            .apply(
                self.with_logout_jobs(
                    &grants,
                    vec![
                        AccountOp::ConsumeToken { digest: t.digest },
                        AccountOp::ChangeEmail { user, email: new },
                        AccountOp::EndSessions { user, except: Some(current_sid.to_owned()) },
                        AccountOp::Enqueue(notice),
                    ],
                )
                .await,
            )
            .await
            .map_err(|e| match e {
                StoreError::Conflict { constraint: "users_email" } => AccountError::Invalid("email_change.taken"),
                other => Self::map_conflict(other),
            })?;
        self.sent();
        self.oidc.sessions_ended(&grants);
        tracing::info!(user_id = %user, "email address changed");
        Ok(())
    }

    pub async fn cancel_email_change(&self, user: UserId) -> AccountResult<()> {
        let now = self.clock.now();
        let mut ops = Vec::new();
        for kind in [TokenKind::EmailChangeCurrent, TokenKind::EmailChangeNew] {
            if let Some(t) = self.stores.accounts.live_code(user, kind, now).await? {
                ops.push(AccountOp::ConsumeToken { digest: t.digest });
            }
        }
        if !ops.is_empty() {
            self.stores.accounts.apply(ops).await.map_err(Self::map_conflict)?;
        }
        Ok(())
    }

    pub fn pow_challenge(&self, user: UserId) -> String {
        pow::challenge(&self.secret, user, self.clock.now())
    }

    pub fn pow_difficulty(&self) -> u32 {
        self.settings.accounts.pow_difficulty
    }

    /// The pending phone number (a code was sent to it), if any.
    pub async fn pending_phone(&self, user: UserId) -> AccountResult<Option<String>> {
        Ok(self.stores.accounts.live_code(user, TokenKind::PhoneCode, self.clock.now()).await?.and_then(|t| t.email))
    }

    /// Sends an SMS code to `phone` after checking the proof of work.
    pub async fn start_phone(
        &self,
        user: UserId,
        phone: &str,
        challenge: &str,
        nonce: &str,
        ip: IpAddr,
    ) -> AccountResult<()> {
        let phone = parse_phone(phone).ok_or(AccountError::Invalid("phone.invalid"))?;
        let now = self.clock.now();
        pow::verify(&self.secret, user, now, challenge, nonce, self.pow_difficulty())
            .map_err(|_| AccountError::Invalid("phone.pow_failed"))?;
        let once = EphemeralKey::PowChallenge { digest: tokens::digest(challenge) }.to_string();
        let ttl = Duration::from_secs(u64::try_from(pow::MAX_AGE_SECS + 60).unwrap_or(660));
        if !self.stores.ephemeral.put_if_absent(&once, b"1", ttl).await? {
            return Err(AccountError::Invalid("phone.pow_failed"));
        }
        let u = self.user(user).await?;
        if !self.allow_issue(TokenKind::PhoneCode, &u.email.lookup_key(), Some(ip)).await? {
            return Err(AccountError::Throttled);
        }
        let lang = self.lang_of(Some(&u), Lang::En);
        let (code, token) = self.new_code(TokenKind::PhoneCode, user, Some(phone.clone()), serde_json::json!({}));
        let sms =
            OutboxMessage::Sms(SmsMessage { to: phone, body: self.pf(lang, "sms.phone_code", &[("code", &code)]) });
        self.stores.accounts.apply(vec![AccountOp::InsertToken(token), AccountOp::Enqueue(sms)]).await?;
        self.sent();
        Ok(())
    }

    pub async fn verify_phone(&self, user: UserId, code: &str) -> AccountResult<()> {
        let t = self.check_code(user, TokenKind::PhoneCode, code).await?;
        let phone = t.email.clone();
        self.stores
            .accounts
            .apply(vec![
                AccountOp::ConsumeToken { digest: t.digest },
                AccountOp::SetPhone { user, phone, verified: true },
            ])
            .await
            .map_err(Self::map_conflict)?;
        tracing::info!(user_id = %user, "phone number verified");
        Ok(())
    }

    pub async fn sessions(&self, user: UserId) -> AccountResult<Vec<AuthSessionRecord>> {
        let now = self.clock.now();
        Ok(self
            .stores
            .auth_sessions
            .sessions_of(user)
            .await?
            .into_iter()
            .filter(|s| s.ended_at.is_none() && s.idle_expires_at > now && s.expires_at > now)
            .collect())
    }

    /// Ends one of the user's sessions (its grants revoked, relying parties told).
    pub async fn revoke_session(&self, user: UserId, sid: &str) -> AccountResult<()> {
        let mine = self.stores.auth_sessions.auth_session(sid).await?.is_some_and(|s| s.user_id == user);
        if !mine {
            return Err(AccountError::TokenInvalid);
        }
        self.oidc.end_session(sid).await;
        Ok(())
    }

    pub async fn revoke_other_sessions(&self, user: UserId, current_sid: &str) -> AccountResult<()> {
        let grants = self.session_grants_of(user, Some(current_sid)).await?;
        self.stores
            .accounts
            .apply(
                self.with_logout_jobs(
                    &grants,
                    vec![AccountOp::EndSessions { user, except: Some(current_sid.to_owned()) }],
                )
                .await,
            )
            .await?;
        self.oidc.sessions_ended(&grants);
        Ok(())
    }

    /// Ends every session of the account (an admin's action), with its back-channel logout
    /// notices and the audit entry in one transaction; returns how many sessions were open.
    pub async fn revoke_all_sessions(&self, user: UserId, actor: &str) -> AccountResult<usize> {
        self.user(user).await?;
        let open = self.sessions(user).await?.len();
        let grants = self.session_grants_of(user, None).await?;
        let ops = vec![
            AccountOp::EndSessions { user, except: None },
            AccountOp::Audit {
                action: "sessions.revoked".into(),
                subject: user.to_string(),
                actor: Some(actor.to_owned()),
                detail: Some(serde_json::json!({"sessions": open}).to_string()),
                org: None,
                outcome: crate::domain::account::AuditOutcome::Success,
            },
        ];
        self.stores.accounts.apply(self.with_logout_jobs(&grants, ops).await).await?;
        self.oidc.sessions_ended(&grants);
        tracing::info!(user_id = %user, actor, open, "every session of the account ended by an admin");
        Ok(open)
    }

    pub async fn record_login(&self, user: UserId, success: bool, method: &str, ip: IpAddr, user_agent: Option<&str>) {
        let e = LoginEvent {
            at: self.clock.now(),
            success,
            method: method.to_owned(),
            ip: Some(ip.to_string()),
            user_agent: user_agent.map(|s| s.chars().take(300).collect()),
        };
        if let Err(err) = self.stores.accounts.record_login(user, &e).await {
            tracing::warn!(error = %err, "could not record the sign-in in the history");
        }
        let kind = if success { "login.succeeded" } else { "login.failed" };
        self.audit_login(kind, &user.to_string(), serde_json::json!({"method": method})).await;
        self.events.emit(user, kind, serde_json::json!({"user": user, "method": method, "ip": e.ip}));
    }

    /// A failed password sign-in: recorded in the account's history when the account exists.
    pub async fn record_login_failure(&self, email: &str, ip: IpAddr, user_agent: Option<&str>) {
        match self.user_by_email(email).await {
            Ok(Some(u)) => self.record_login(u.id, false, "pwd", ip, user_agent).await,
            // An address nobody has: audited without it (the log holds no one's typo).
            Ok(None) => {
                self.audit_login("login.failed", "unknown", serde_json::json!({"method": "pwd", "account": "unknown"}))
                    .await
            }
            Err(e) => tracing::warn!(error = %e, "could not look up a failed sign-in's account"),
        }
    }

    /// A sign-in or a failed one in the audit log (IP and user agent come from the request).
    async fn audit_login(&self, action: &str, subject: &str, detail: serde_json::Value) {
        let outcome = crate::domain::account::AuditOutcome::of_action(action);
        self.audit_entry(action, subject, subject, None, detail, outcome).await
    }

    /// An audit entry of its own (best effort: a failure is logged), for what changes nothing
    /// else: sign-ins, refusals. IP and user agent come from the request.
    pub async fn audit_entry(
        &self,
        action: &str,
        subject: &str,
        actor: &str,
        org: Option<crate::domain::OrgId>,
        detail: serde_json::Value,
        outcome: crate::domain::account::AuditOutcome,
    ) {
        let op = AccountOp::Audit {
            action: action.to_owned(),
            subject: subject.to_owned(),
            actor: Some(actor.to_owned()),
            detail: Some(detail.to_string()),
            org,
            outcome,
        };
        if let Err(e) = self.stores.accounts.apply(vec![op]).await {
            tracing::warn!(error = %e, action, "could not write an audit entry");
        }
    }

    pub async fn login_history(&self, user: UserId) -> AccountResult<Vec<LoginEvent>> {
        Ok(self.stores.accounts.login_history(user, 50).await?)
    }

    /// Everything held about the user, as JSON (RGPD art. 15 and 20).
    pub async fn export(&self, user: UserId) -> AccountResult<serde_json::Value> {
        let u = self.user(user).await?;
        let consents: Vec<_> = self
            .stores
            .consents
            .consents_of(user)
            .await?
            .into_iter()
            .map(|(c, scope, at)| serde_json::json!({"client_id": c.client_id.to_string(), "client_name": c.name, "scope": scope, "granted_at": at.0}))
            .collect();
        let sessions: Vec<_> = self
            .stores
            .auth_sessions
            .sessions_of(user)
            .await?
            .into_iter()
            .map(|s| {
                serde_json::json!({
                    "signed_in_at": s.auth_time.0, "last_seen": s.last_seen.0, "ended_at": s.ended_at.map(|t| t.0),
                    "amr": s.amr, "acr": s.acr, "ip": s.ip, "user_agent": s.user_agent,
                })
            })
            .collect();
        let invitations = self.stores.accounts.invitations_for(&u.email.lookup_key()).await?;
        let mut memberships = Vec::new();
        for m in self.stores.orgs.memberships_of(user).await? {
            let roles: Vec<_> = self
                .stores
                .orgs
                .member(m.org.id, user)
                .await?
                .map(|x| {
                    x.roles.into_iter().map(|r| serde_json::json!({"client_id": r.client_id, "name": r.name})).collect()
                })
                .unwrap_or_default();
            memberships.push(serde_json::json!({
                "org": {"id": m.org.id, "slug": m.org.slug, "name": m.org.name}, "role": m.role, "roles": roles,
            }));
        }
        Ok(serde_json::json!({
            "exported_at": self.clock.now().0,
            "issuer": self.issuer(),
            "profile": u,
            "resources": self.stores.accounts.resources_of(user).await?,
            "consents": consents,
            "sessions": sessions,
            "login_history": self.stores.accounts.login_history(user, 1000).await?,
            "invitations": invitations,
            "memberships": memberships,
            "identities": self.stores.federation.identities_of(user).await?.into_iter().map(|l| serde_json::json!({
                "connection": l.connection, "subject": l.subject, "email": l.email, "linked_at": l.created_at.0, "last_login_at": l.last_login_at.0,
            })).collect::<Vec<_>>(),
        }))
    }

    /// Deletes the account for good, in one transaction: profile, credentials, sessions,
    /// grants and tokens, consents, history. Relying parties are told by back-channel logout;
    /// the audit log keeps a pseudonymous id only. `auth_time`: the session's last sign-in
    /// (None for operators).
    pub async fn delete(
        &self,
        user: UserId,
        confirm_email: Option<&str>,
        auth_time: Option<UnixTime>,
        actor: &str,
    ) -> AccountResult<()> {
        let u = self.user(user).await?;
        if auth_time.is_some_and(|at| !self.recent(at)) {
            return Err(AccountError::Reauthenticate);
        }
        if let Some(typed) = confirm_email {
            if lookup_key(typed) != u.email.lookup_key() {
                return Err(AccountError::Invalid("delete.mismatch"));
            }
        }
        let lang = self.lang_of(Some(&u), Lang::En);
        let goodbye = self.compose(
            lang,
            Mail {
                to: u.email.as_str(),
                name: u.name.as_deref(),
                kind: "deleted",
                paragraphs: vec![self.p(lang, "mail.deleted.body")],
                action: None,
                code: None,
                expiry: None,
            },
        )?;
        let pseudonym = self.pseudonym(user);
        let mut ops = vec![
            AccountOp::Audit {
                action: "account.deleted".into(),
                subject: pseudonym.clone(),
                actor: Some(actor.to_owned()),
                detail: None,
                org: None,
                outcome: crate::domain::account::AuditOutcome::Success,
            },
            AccountOp::Enqueue(goodbye),
        ];
        ops.extend(self.user_deleted_events(user, &pseudonym).await?);
        ops.push(AccountOp::DeleteUser { user, pseudonym });
        let grants = self.session_grants_of(user, None).await?;
        let ops = self.with_logout_jobs(&grants, ops).await;
        self.stores.accounts.apply(ops).await?;
        self.sent();
        self.oidc.sessions_ended(&grants);
        tracing::info!(subject = %self.pseudonym(user), "account deleted");
        Ok(())
    }

    /// `user.deleted` for each organization the user belongs to (its webhooks and live
    /// stream), written with the deletion: the memberships go with the account. It carries the
    /// account's id and audit pseudonym, never its address.
    async fn user_deleted_events(&self, user: UserId, pseudonym: &str) -> AccountResult<Vec<AccountOp>> {
        let data = serde_json::json!({"user": user, "pseudonym": pseudonym});
        let now = self.clock.now();
        let mut ops = Vec::new();
        for m in self.stores.orgs.memberships_of(user).await? {
            let hooks = self.stores.webhooks.webhooks_of(m.org.id).await?;
            ops.extend(crate::webhooks::event_ops(&hooks, m.org.id, "user.deleted", data.clone(), now));
        }
        Ok(ops)
    }

    /// A sign-in recent enough for sensitive changes (`accounts.recent_auth_secs`).
    pub fn recent(&self, auth_time: UnixTime) -> bool {
        let recent = i64::try_from(self.settings.accounts.recent_auth_secs).unwrap_or(300);
        auth_time.secs_until(self.clock.now()) <= recent
    }

    /// Suspends (every session and refresh token ends, sign-in refused) or resumes an account.
    pub async fn set_suspended(&self, user: UserId, suspended: bool, actor: &str) -> AccountResult<User> {
        let u = self.user(user).await?;
        let audit = AccountOp::Audit {
            action: if suspended { "account.suspended" } else { "account.resumed" }.into(),
            subject: user.to_string(),
            actor: Some(actor.to_owned()),
            detail: None,
            org: None,
            outcome: crate::domain::account::AuditOutcome::Success,
        };
        if suspended {
            let grants = self.session_grants_of(user, None).await?;
            self.stores
                .accounts
                .apply(
                    self.with_logout_jobs(
                        &grants,
                        vec![
                            AccountOp::SetStatus { user, status: UserStatus::Suspended },
                            AccountOp::EndSessions { user, except: None },
                            AccountOp::RevokeAllGrants { user },
                            audit,
                        ],
                    )
                    .await,
                )
                .await?;
            self.oidc.sessions_ended(&grants);
            tracing::info!(user_id = %user, "account suspended; every session ended");
        } else {
            // Back to active, unless it never was (no password and no confirmed address yet).
            let has_password = self.has_password(&u).await?;
            let status = match u.status {
                UserStatus::Suspended if has_password || u.email_verified => UserStatus::Active,
                UserStatus::Suspended => UserStatus::Pending,
                other => other,
            };
            self.stores.accounts.apply(vec![AccountOp::SetStatus { user, status }, audit]).await?;
            tracing::info!(user_id = %user, "account resumed");
        }
        self.user(user).await
    }

    /// Removes every second factor and recovery code of the account (an operator's reset for a
    /// user who lost them): audited, and the user is told by mail.
    pub async fn reset_factors(&self, user: UserId, actor: &str) -> AccountResult<()> {
        let u = self.user(user).await?;
        let lang = self.lang_of(Some(&u), Lang::En);
        let notice = self.compose(
            lang,
            Mail {
                to: u.email.as_str(),
                name: u.name.as_deref(),
                kind: "mfa_reset",
                paragraphs: vec![self.p(lang, "mail.mfa_reset.body"), self.p(lang, "mail.mfa_reset.hint")],
                action: None,
                code: None,
                expiry: None,
            },
        )?;
        self.stores
            .accounts
            .apply(vec![
                AccountOp::RemoveFactors { user },
                AccountOp::Audit {
                    action: "mfa.reset".into(),
                    subject: user.to_string(),
                    actor: Some(actor.to_owned()),
                    detail: None,
                    org: None,
                    outcome: crate::domain::account::AuditOutcome::Success,
                },
                AccountOp::Enqueue(notice),
            ])
            .await?;
        self.sent();
        tracing::info!(user_id = %user, actor, "second factors reset by an operator");
        Ok(())
    }

    /// A stable pseudonym of a user id (HMAC with the server secret): the audit log can tell
    /// events of one account apart without holding who it was.
    pub fn pseudonym(&self, user: UserId) -> String {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.secret) else { return String::new() };
        mac.update(b"guichet-pseudonym\0");
        mac.update(user.to_string().as_bytes());
        format!("anon-{}", &hex::encode(mac.finalize().into_bytes())[..24])
    }

    /// Messages not delivered yet.
    pub async fn outbox_pending(&self) -> AccountResult<i64> {
        Ok(self.stores.journal.outbox_pending().await?)
    }
}

//! Getting back in: password reset and the emailed sign-in link.
use std::net::IpAddr;

use super::*;

impl AccountService {
    // ------------------------------------------------------------------ password reset

    /// Sends a reset link when the address has an account (same answer otherwise).
    pub async fn request_reset(&self, email: &str, lang: Lang, ip: IpAddr) -> AccountResult<()> {
        let Some(u) = self.user_by_email(email).await? else { return Ok(()) };
        if u.status == UserStatus::Suspended {
            return Ok(());
        }
        if !self.allow_issue(TokenKind::PasswordReset, &u.email.lookup_key(), Some(ip)).await? {
            return Ok(());
        }
        let lang = self.lang_of(Some(&u), lang);
        let (raw, token) = self.new_link_token(TokenKind::PasswordReset, Some(u.id), serde_json::json!({}));
        let mail = self.compose(
            lang,
            Mail {
                to: u.email.as_str(),
                name: u.name.as_deref(),
                kind: "reset",
                paragraphs: vec![self.p(lang, "mail.reset.body"), self.p(lang, "mail.reset.ignore")],
                action: Some(self.link("/password/reset/confirm", &raw)),
                code: None,
                expiry: Some(self.expiry_text(lang, TokenKind::PasswordReset)),
            },
        )?;
        self.stores.accounts.apply(vec![AccountOp::InsertToken(token), AccountOp::Enqueue(mail)]).await?;
        self.sent();
        tracing::info!(user_id = %u.id, "password reset link sent");
        Ok(())
    }

    pub async fn reset_target(&self, raw: &str) -> AccountResult<User> {
        let t = self.live_token(TokenKind::PasswordReset, raw).await?;
        self.user(t.user_id.ok_or(AccountError::TokenInvalid)?).await
    }

    /// Sets the new password; every session and refresh token of the account dies; a notice
    /// is sent. (The link proves the mailbox: a pending account becomes active.)
    pub async fn reset_password(&self, raw: &str, password: &SecretString) -> AccountResult<User> {
        let t = self.live_token(TokenKind::PasswordReset, raw).await?;
        let u = self.user(t.user_id.ok_or(AccountError::TokenInvalid)?).await?;
        self.policy(password, u.email.as_str())?;
        let hash = self.auth.hash_password(password).await?;
        let lang = self.lang_of(Some(&u), Lang::En);
        let notice = self.password_changed_mail(&u, lang)?;
        let grants = self.session_grants_of(u.id, None).await?;
        let mut ops = vec![
            AccountOp::ConsumeToken { digest: t.digest },
            AccountOp::SetPassword { user: u.id, hash },
            AccountOp::SetEmailVerified { user: u.id },
            AccountOp::EndSessions { user: u.id, except: None },
            AccountOp::RevokeAllGrants { user: u.id },
            AccountOp::Enqueue(notice),
        ];
        if u.status == UserStatus::Pending {
            ops.push(AccountOp::SetStatus { user: u.id, status: UserStatus::Active });
        }
        let ops = self.with_logout_jobs(&grants, ops).await;
        self.stores.accounts.apply(ops).await.map_err(Self::map_conflict)?;
        self.sent();
        self.oidc.sessions_ended(&grants);
        tracing::info!(user_id = %u.id, "password reset: every session ended");
        Ok(u)
    }

    pub(super) fn password_changed_mail(&self, u: &User, lang: Lang) -> AccountResult<OutboxMessage> {
        self.compose(
            lang,
            Mail {
                to: u.email.as_str(),
                name: u.name.as_deref(),
                kind: "password_changed",
                paragraphs: vec![
                    self.p(lang, "mail.password_changed.body"),
                    self.p(lang, "mail.password_changed.hint"),
                ],
                action: None,
                code: None,
                expiry: None,
            },
        )
    }

    /// Grants of the user's open sessions (all but `except`): whom to tell at logout. Read
    /// before the change, because a deletion takes the grants with it.
    pub(super) async fn session_grants_of(&self, user: UserId, except: Option<&str>) -> AccountResult<Vec<Grant>> {
        let mut out = Vec::new();
        for s in self.stores.auth_sessions.sessions_of(user).await? {
            if s.ended_at.is_none() && Some(s.sid.as_str()) != except {
                out.extend(self.stores.grants.session_grants(&s.sid).await?);
            }
        }
        Ok(out)
    }

    // ------------------------------------------------------------------ emailed sign-in link

    /// Sends a sign-in link bound to this browser when the address has an active account.
    pub async fn request_login_link(
        &self,
        email: &str,
        browser: &str,
        return_to: &str,
        lang: Lang,
        ip: IpAddr,
    ) -> AccountResult<()> {
        let Some(u) = self.user_by_email(email).await? else { return Ok(()) };
        if u.status != UserStatus::Active {
            return Ok(());
        }
        if !self.allow_issue(TokenKind::LoginLink, &u.email.lookup_key(), Some(ip)).await? {
            return Ok(());
        }
        let lang = self.lang_of(Some(&u), lang);
        let data = serde_json::json!({ "browser": tokens::digest(browser), "return_to": return_to });
        let (raw, token) = self.new_link_token(TokenKind::LoginLink, Some(u.id), data);
        let mail = self.compose(
            lang,
            Mail {
                to: u.email.as_str(),
                name: u.name.as_deref(),
                kind: "login_link",
                paragraphs: vec![self.p(lang, "mail.login_link.body")],
                action: Some(self.link("/login/link", &raw)),
                code: None,
                expiry: Some(self.expiry_text(lang, TokenKind::LoginLink)),
            },
        )?;
        self.stores.accounts.apply(vec![AccountOp::InsertToken(token), AccountOp::Enqueue(mail)]).await?;
        self.sent();
        Ok(())
    }

    /// Signs in with an emailed link, from the browser that asked for it only (another browser
    /// does not spend it). Returns who and where to go.
    pub async fn use_login_link(&self, raw: &str, browser: &str) -> AccountResult<(Authenticated, String)> {
        let t = self.live_token(TokenKind::LoginLink, raw).await?;
        let bound = t.data_str("browser").unwrap_or("");
        if browser.is_empty() || !tokens::constant_time_eq(bound.as_bytes(), tokens::digest(browser).as_bytes()) {
            return Err(AccountError::NotAllowed("link.other_browser"));
        }
        let user = t.user_id.ok_or(AccountError::TokenInvalid)?;
        let return_to = t.data_str("return_to").unwrap_or("/").to_owned();
        self.stores
            .accounts
            .apply(vec![AccountOp::ConsumeToken { digest: t.digest }, AccountOp::SetEmailVerified { user }])
            .await
            .map_err(Self::map_conflict)?;
        let u = self.user(user).await?;
        if u.status != UserStatus::Active {
            return Err(AccountError::Auth(AuthError::NotActive(u.status)));
        }
        Ok((self.authenticated(u, Amr::Email), return_to))
    }

    pub(super) fn authenticated(&self, user: User, amr: Amr) -> Authenticated {
        Authenticated { user, amr: vec![amr], acr: None, auth_time: self.clock.now(), idp: None }
    }
}

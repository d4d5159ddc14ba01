//! Who this browser is signed in as, and the actions that change it.
//!
//! Signing in or out changes who the socket is, which the server learns
//! only at the upgrade (the cookie rides it): the page forgets the guest's
//! chat session, nickname and unsent messages, and reloads. A socket the
//! server closed because its sign-in ended ("signed out") does the same
//! and comes back at the sign-in dialog; one refused because the server
//! takes no guests opens that dialog.

use super::{Chat, NICK_KEY, OUTBOX_KEY, SESSION_KEY, forget, load, store};
use crate::net::{account, socket::Status};
use leptos::{prelude::*, task::spawn_local};

/// Who is signed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Account {
    /// Not known yet (asking the server).
    Checking,
    /// Nobody: a guest.
    Guest,
    /// This account.
    Signed {
        /// Its name (the socket's nickname).
        name: String,
    },
}

/// The close reason of a socket whose sign-in ended (the server's).
pub const SIGNED_OUT: &str = "signed out";
/// The start of the close reason of a server that takes no guests.
pub const GUESTS_DENIED: &str = "sign in to chat here";
/// sessionStorage key of what the sign-in dialog says after a reload.
const NOTICE_KEY: &str = "chat.signin-notice";

/// Forgets what belonged to the person who was chatting, and reloads:
/// the socket opens again as whoever the cookie says now.
fn start_over(nick: Option<&str>, notice: Option<&str>) {
    forget(true, SESSION_KEY);
    forget(true, OUTBOX_KEY);
    match nick {
        Some(nick) => store(true, NICK_KEY, nick),
        None => forget(true, NICK_KEY),
    }
    if let Some(notice) = notice {
        store(false, NOTICE_KEY, notice);
    }
    if let Some(window) = web_sys::window() {
        let _ = window.location().reload();
    }
}

impl Chat {
    /// Asks the server who this browser is (at start, and when this tab
    /// takes over from another).
    pub(super) fn check_account(&self) {
        let chat = *self;
        if let Some(notice) = load(false, NOTICE_KEY) {
            forget(false, NOTICE_KEY);
            chat.account_notice.set(Some(notice));
            chat.asking_nick.set(false);
            chat.asking_account.set(true);
        }
        spawn_local(async move {
            let known = match account::me().await {
                Ok(Some(me)) => Account::Signed { name: me.username },
                // Not reachable now: a guest until it says otherwise.
                Ok(None) | Err(_) => Account::Guest,
            };
            if matches!(known, Account::Signed { .. }) {
                chat.asking_nick.try_set(false);
            }
            chat.account.try_set(known);
        });
    }

    /// What the socket's end means for the account: a sign-in that ended
    /// goes back to the sign-in dialog; a server without guests asks for one.
    pub(super) fn on_status(&self, status: &Status) {
        let Status::Offline { reason } = status else {
            return;
        };
        if reason == SIGNED_OUT {
            start_over(None, Some("You were signed out. Sign in again to chat."));
        } else if reason.starts_with(GUESTS_DENIED) {
            self.asking_nick.set(false);
            self.account_notice
                .set(Some("This server needs an account to chat.".into()));
            self.asking_account.set(true);
        }
    }

    /// Signs in (`create`: signs up first) and starts over as that account.
    /// `Err` says why not (the dialog shows it).
    pub fn sign_in(&self, username: String, password: String, create: bool) {
        let chat = *self;
        chat.account_error.set(None);
        chat.account_busy.set(true);
        spawn_local(async move {
            match account::sign_in(&username, &password, create).await {
                Ok(me) => {
                    chat.client().socket().close();
                    start_over(Some(&me.username), None);
                }
                Err(why) => {
                    chat.account_busy.try_set(false);
                    chat.account_error.try_set(Some(why));
                }
            }
        });
    }

    /// Signs out and starts over as a guest.
    pub fn sign_out(&self) {
        let chat = *self;
        spawn_local(async move {
            // Closed first: the server's "signed out" close is for other
            // pages, not for the one that asked.
            chat.client().socket().close();
            match account::sign_out().await {
                Ok(()) => start_over(None, None),
                Err(why) => {
                    chat.note(format!("cannot sign out: {why}"));
                    chat.client().socket().retry_now();
                }
            }
        });
    }
}

//! `server admin create NAME`: makes a server administrator's account in
//! the data directory, with the password read from standard input (one
//! line; never from the command line, where `ps` and shell history see
//! it). The server need not be stopped: SQLite takes the write between
//! its own.

use crate::{
    accounts::{Account, Accounts},
    credentials::password::{self, Hasher},
    names,
};
use std::sync::Arc;

/// Why an administrator could not be made.
#[derive(Debug)]
pub struct Refused(pub String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

/// Makes `raw_name` an administrator with `password` (the same rules as a
/// sign-up: the name's, the password's). Returns the name as registered.
pub async fn create(
    accounts: Arc<dyn Accounts>,
    raw_name: &str,
    password: &str,
) -> Result<String, Refused> {
    let name = names::username(raw_name).map_err(|e| Refused(e.message))?;
    password::check(password, &name).map_err(|weak| Refused(weak.to_string()))?;
    let key = names::nick_key(&name);
    let store = |e: crate::log::StoreError| Refused(format!("the store failed: {e}"));
    if accounts.find(&key).await.map_err(store)?.is_some() {
        return Err(Refused(format!("'{name}' (or a look-alike) is taken")));
    }
    let hash = Hasher::new(1)
        .hash(password)
        .await
        .map_err(|e| Refused(format!("cannot hash the password: {e}")))?;
    let created = accounts
        .create(Account {
            name: name.clone(),
            key,
            hash,
            admin: true,
            disabled: false,
        })
        .await
        .map_err(store)?;
    if created {
        Ok(name)
    } else {
        Err(Refused(format!("'{name}' (or a look-alike) is taken")))
    }
}

/// The password: the first line of `input`, without its line ending.
pub fn password_line(mut input: impl std::io::BufRead) -> std::io::Result<String> {
    let mut line = String::new();
    input.read_line(&mut line)?;
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::MemoryAccounts;

    #[tokio::test]
    async fn makes_an_administrator_once_with_the_sign_up_rules() {
        let accounts: Arc<dyn Accounts> = Arc::new(MemoryAccounts::default());
        let name = create(accounts.clone(), "Root", "tq7-vexa-plum")
            .await
            .expect("created");
        assert_eq!(name, "Root");
        let made = accounts.find("root").await.expect("find").expect("there");
        assert!(made.admin);
        assert!(
            Hasher::new(1)
                .verify("tq7-vexa-plum", Some(&made.hash))
                .await
                .expect("verify")
        );
        let again = create(accounts.clone(), "ROOT", "tq7-vexa-plum").await;
        assert_eq!(
            again.expect_err("taken").0,
            "'ROOT' (or a look-alike) is taken"
        );
        let weak = create(accounts.clone(), "other", "password").await;
        assert!(weak.is_err());
        let guest = create(accounts, "guest-7", "tq7-vexa-plum").await;
        assert_eq!(
            guest.expect_err("guests'").0,
            "names starting with 'guest-' are for guests"
        );
    }

    #[test]
    fn the_password_is_the_first_line() {
        let input = std::io::Cursor::new("s3cret pass\r\nmore\n");
        assert_eq!(password_line(input).expect("read"), "s3cret pass");
    }
}

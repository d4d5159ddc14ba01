//! Rooms' access rules, roles and moderation record in the database, on
//! the accounts' connection.

use super::{SqliteAccounts, accounts::on_blocking};
use crate::{
    access::{ACTIONS_KEPT, Access, Action, Role, RoomAccess},
    log::Read,
};
use rusqlite::{OptionalExtension, params};

impl Access for SqliteAccounts {
    fn create_room(&self, room: &str, access: RoomAccess) -> Read<bool> {
        let room = room.to_owned();
        on_blocking(&self.conn, move |c| {
            let rows = c.execute(
                "INSERT OR IGNORE INTO room_access (room, title, private) VALUES (?1, ?2, ?3)",
                params![room, access.title, access.private],
            )?;
            Ok(rows == 1)
        })
    }

    fn room(&self, room: &str) -> Read<Option<RoomAccess>> {
        let room = room.to_owned();
        on_blocking(&self.conn, move |c| {
            c.query_row(
                "SELECT title, private FROM room_access WHERE room = ?1",
                [room],
                |r| {
                    Ok(RoomAccess {
                        title: r.get(0)?,
                        private: r.get(1)?,
                    })
                },
            )
            .optional()
        })
    }

    fn role(&self, room: &str, key: &str) -> Read<Option<Role>> {
        let (room, key) = (room.to_owned(), key.to_owned());
        on_blocking(&self.conn, move |c| {
            let role: Option<String> = c
                .query_row(
                    "SELECT role FROM room_roles WHERE room = ?1 AND key = ?2",
                    [room, key],
                    |r| r.get(0),
                )
                .optional()?;
            Ok(role.as_deref().and_then(Role::parse))
        })
    }

    fn set_role(&self, room: &str, key: &str, role: Option<Role>) -> Read<()> {
        let (room, key) = (room.to_owned(), key.to_owned());
        on_blocking(&self.conn, move |c| {
            match role {
                Some(role) => c.execute(
                    "INSERT OR REPLACE INTO room_roles (room, key, role) VALUES (?1, ?2, ?3)",
                    params![room, key, role.as_str()],
                )?,
                None => c.execute(
                    "DELETE FROM room_roles WHERE room = ?1 AND key = ?2",
                    [room, key],
                )?,
            };
            Ok(())
        })
    }

    fn private_rooms_of(&self, key: &str) -> Read<Vec<(String, RoomAccess)>> {
        let key = key.to_owned();
        on_blocking(&self.conn, move |c| {
            c.prepare(
                "SELECT a.room, a.title FROM room_roles r JOIN room_access a ON a.room = r.room \
                 WHERE r.key = ?1 AND r.role != 'banned' AND a.private = 1 ORDER BY a.room",
            )?
            .query_map([key], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    RoomAccess {
                        title: r.get(1)?,
                        private: true,
                    },
                ))
            })?
            .collect()
        })
    }

    fn banned_from(&self, key: &str) -> Read<Vec<String>> {
        let key = key.to_owned();
        on_blocking(&self.conn, move |c| {
            c.prepare(
                "SELECT room FROM room_roles WHERE key = ?1 AND role = 'banned' ORDER BY room",
            )?
            .query_map([key], |r| r.get(0))?
            .collect()
        })
    }

    fn record(&self, action: Action) -> Read<()> {
        on_blocking(&self.conn, move |c| {
            c.execute(
                "INSERT INTO moderation (room, at, by, what, whom) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![action.room, action.at, action.by, action.what, action.whom],
            )?;
            c.execute(
                "DELETE FROM moderation WHERE room = ?1 AND id NOT IN \
                 (SELECT id FROM moderation WHERE room = ?1 ORDER BY id DESC LIMIT ?2)",
                params![action.room, ACTIONS_KEPT as i64],
            )?;
            Ok(())
        })
    }

    fn actions(&self, room: &str, limit: usize) -> Read<Vec<Action>> {
        let room = room.to_owned();
        on_blocking(&self.conn, move |c| {
            c.prepare(
                "SELECT room, at, by, what, whom FROM moderation WHERE room = ?1 ORDER BY id DESC LIMIT ?2",
            )?
            .query_map(params![room, limit as i64], |r| {
                Ok(Action {
                    room: r.get(0)?,
                    at: r.get(1)?,
                    by: r.get(2)?,
                    what: r.get(3)?,
                    whom: r.get(4)?,
                })
            })?
            .collect()
        })
    }
}

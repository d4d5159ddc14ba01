//! The views. Each reads [`Chat`](crate::state::Chat) from context and
//! calls its actions; none opens a socket.

mod account;
mod app;
mod banner;
mod composer;
mod members;
mod messages;
mod nick;
mod reply_bar;
mod search;
mod sidebar;

pub use account::{AccountBar, AccountDialog};
pub use app::{App, ChatApp};
pub use banner::Banner;
pub use composer::Composer;
pub use members::Members;
pub use messages::{MessageList, WINDOW, local_time};
pub use nick::NickDialog;
pub use reply_bar::ReplyBar;
pub use search::SearchBox;
pub use sidebar::Sidebar;

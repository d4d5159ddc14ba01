//! Slash commands typed in the composer.

/// What the composer's text asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// A plain message.
    Say(String),
    /// `/nick NAME`
    Nick(String),
    /// `/join ROOM`
    Join(String),
    /// `/leave`
    Leave,
    /// `/ping`
    Ping,
    /// `/myip`
    MyIp,
    /// `/upper TEXT`
    Upper(String),
    /// `/long [TIMEOUT_MS]`
    Long(Option<u32>),
    /// `/help`
    Help,
    /// Something that is not a command, with a message saying why.
    Invalid(String),
}

/// The commands, for `/help`.
pub const HELP: &str = "/nick NAME · /join ROOM · /leave · /ping · /myip · /upper TEXT · /long [TIMEOUT_MS] · //text sends a message starting with /";

/// Reads the composer's text.
pub fn parse(input: &str) -> Command {
    let trimmed = input.trim();
    let Some(rest) = trimmed.strip_prefix('/') else {
        return Command::Say(input.trim_end().to_owned());
    };
    if rest.starts_with('/') {
        // "//text" sends "/text".
        return Command::Say(input.trim_start().trim_end()[1..].to_owned());
    }
    let (name, arg) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    let arg = arg.trim();
    let need = |what: &str| Command::Invalid(format!("/{name} needs {what}"));
    match name.to_lowercase().as_str() {
        "nick" if arg.is_empty() => need("a nickname"),
        "nick" => Command::Nick(arg.to_owned()),
        "join" if arg.is_empty() => need("a room name"),
        "join" => Command::Join(arg.trim_start_matches('#').to_owned()),
        "leave" | "part" => Command::Leave,
        "ping" => Command::Ping,
        "myip" => Command::MyIp,
        "upper" if arg.is_empty() => need("some text"),
        "upper" => Command::Upper(arg.to_owned()),
        "long" if arg.is_empty() => Command::Long(None),
        "long" => match arg.parse::<u32>() {
            Ok(ms) => Command::Long(Some(ms)),
            Err(_) => Command::Invalid("/long takes a timeout in milliseconds".into()),
        },
        "help" | "?" => Command::Help,
        _ => Command::Invalid(format!("unknown command /{name}; try /help")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse() {
        assert_eq!(parse("hello"), Command::Say("hello".into()));
        assert_eq!(
            parse("line one\nline two\n"),
            Command::Say("line one\nline two".into())
        );
        assert_eq!(parse("/nick  Ann Lee "), Command::Nick("Ann Lee".into()));
        assert_eq!(parse("/join #Rust"), Command::Join("Rust".into()));
        assert_eq!(parse("/leave"), Command::Leave);
        assert_eq!(parse("/PING"), Command::Ping);
        assert_eq!(parse("/myip"), Command::MyIp);
        assert_eq!(parse("/upper abc"), Command::Upper("abc".into()));
        assert_eq!(parse("/long"), Command::Long(None));
        assert_eq!(parse("/long 500"), Command::Long(Some(500)));
        assert!(matches!(parse("/long soon"), Command::Invalid(_)));
        assert!(matches!(parse("/nick"), Command::Invalid(_)));
        assert!(matches!(parse("/frobnicate"), Command::Invalid(_)));
        assert_eq!(parse("//shrug"), Command::Say("/shrug".into()));
    }
}

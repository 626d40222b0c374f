//! The names of cache commands, used by middlewares and by disable/enable.

use std::fmt;

macro_rules! commands {
    ($($variant:ident => $name:literal),* $(,)?) => {
        /// A cache command, as seen by middlewares and by [`crate::Cache::disable`].
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum Command {
            $(
                #[doc = concat!("`", $name, "`")]
                $variant,
            )*
        }

        impl Command {
            /// Every command.
            pub const ALL: &'static [Command] = &[$(Command::$variant),*];

            /// The command's name, as in the method name (`get_many`).
            pub fn name(self) -> &'static str {
                match self {
                    $(Command::$variant => $name,)*
                }
            }
        }
    };
}

commands! {
    Get => "get",
    GetMany => "get_many",
    GetRaw => "get_raw",
    Set => "set",
    SetMany => "set_many",
    SetRaw => "set_raw",
    Delete => "delete",
    DeleteMany => "delete_many",
    DeleteMatch => "delete_match",
    Scan => "scan",
    GetMatch => "get_match",
    Exists => "exists",
    Incr => "incr",
    Expire => "expire",
    GetExpire => "get_expire",
    Ping => "ping",
    Clear => "clear",
    GetKeysCount => "get_keys_count",
    GetSize => "get_size",
    SetLock => "set_lock",
    Unlock => "unlock",
    IsLocked => "is_locked",
    GetBits => "get_bits",
    IncrBits => "incr_bits",
    SliceIncr => "slice_incr",
    SetAdd => "set_add",
    SetRemove => "set_remove",
    SetPop => "set_pop",
    Apply => "apply",
}

impl Command {
    fn bit(self) -> u64 {
        1 << (self as u64)
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of commands, as a bit set (cheap to copy and test).
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct CommandSet(u64);

impl CommandSet {
    /// No command.
    pub const EMPTY: CommandSet = CommandSet(0);

    /// Every command.
    pub fn all() -> CommandSet {
        Command::ALL.iter().copied().collect()
    }

    /// Whether `command` is in the set.
    #[inline]
    pub fn contains(self, command: Command) -> bool {
        self.0 & command.bit() != 0
    }

    /// Whether the set is empty.
    #[inline]
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The union of both sets.
    pub fn union(self, other: CommandSet) -> CommandSet {
        CommandSet(self.0 | other.0)
    }

    /// This set without the commands of `other`.
    pub fn difference(self, other: CommandSet) -> CommandSet {
        CommandSet(self.0 & !other.0)
    }

    pub(crate) fn bits(self) -> u64 {
        self.0
    }

    pub(crate) fn from_bits(bits: u64) -> CommandSet {
        CommandSet(bits)
    }
}

impl From<Command> for CommandSet {
    fn from(command: Command) -> Self {
        CommandSet(command.bit())
    }
}

impl<const N: usize> From<[Command; N]> for CommandSet {
    fn from(commands: [Command; N]) -> Self {
        commands.into_iter().collect()
    }
}

impl From<&[Command]> for CommandSet {
    fn from(commands: &[Command]) -> Self {
        commands.iter().copied().collect()
    }
}

impl FromIterator<Command> for CommandSet {
    fn from_iter<I: IntoIterator<Item = Command>>(iter: I) -> Self {
        CommandSet(iter.into_iter().fold(0, |acc, c| acc | c.bit()))
    }
}

impl fmt::Debug for CommandSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries(Command::ALL.iter().filter(|c| self.contains(**c)))
            .finish()
    }
}

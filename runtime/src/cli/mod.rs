//! Client subcommands of the `tollgate` binary (next increment).

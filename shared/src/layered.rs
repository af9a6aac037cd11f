//! One layering rule for both binaries' settings: **flags > environment > config file > defaults**.
//!
//! Defaults, env var names, value parsers and help live only in the clap definition. The config file is a
//! TOML table whose keys are the long flag names (`max-lag-blocks = 10`; `max_lag_blocks` is read the same).
//! It is merged by rewriting it into flags: argv (and the environment) is parsed once to find the file (an
//! arg with id `config`, given by flag or env) and to learn where every arg's value came from; each file key
//! whose arg was *not* given by flag or env becomes `--key=value` (a list becomes one `--key=item` per item);
//! then argv plus those flags is parsed again with the same clap definition. A file value is thus only ever
//! added where neither a flag nor an env var set the arg, so the order holds for every kind of value, and the
//! file's values go through the same parsers, with the same messages, as flags.
//!
//! Switches take part when declared as `action = ArgAction::Set` with a bool parser, `num_args = 0..=1`,
//! `require_equals = true` and `default_missing_value = "true"`: then `--switch` alone is true and
//! `--switch=false`, `ENV=false` and `switch = false` all turn it off. (A clap `SetTrue` flag is supported too,
//! but a file cannot turn it off, and neither can a flag.)
//!
//! The file is added at the level of the (deepest) command that defines `config`: for a top-level `config` the flags
//! are inserted right after the program name (so they stay top-level even before a subcommand); for a
//! subcommand's `config` they are appended (the subcommand must be the last one on the command line).
//! Repeatable args split on their `value_delimiter`, so a list item must not contain that delimiter.
//!
//! [`Source`] keeps argv, so a reload re-runs exactly the same layering over a changed file.

use clap::builder::TypedValueParser;
use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Command, Parser};
use std::collections::BTreeSet;
use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::path::{Path, PathBuf};

/// The id of the arg naming the config file.
pub const CONFIG_ID: &str = "config";
/// Largest config file read: real ones are a few KiB; anything near this is not a config file.
pub const MAX_FILE_BYTES: u64 = 1 << 20;

/// Why settings could not be layered.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    /// The command line or the environment is wrong (or asks for `--help`/`--version`): clap's own error,
    /// to be shown with [`clap::Error::exit`] or its `Display`.
    #[error("{0}")]
    Cli(clap::Error),
    /// The config file cannot be read.
    #[error("cannot read config file {}: {reason}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The config file is not a TOML table.
    #[error("config file {}: {message}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong (toml's message names the line).
        message: String,
    },
    /// One key of the config file is unknown or its value is refused.
    #[error("config file {}: key `{key}`: {message}", path.display())]
    Key {
        /// The file.
        path: PathBuf,
        /// The key as written in the file.
        key: String,
        /// What is wrong.
        message: String,
    },
}

/// What settings are layered from: the command line (program name first) and, optionally, a config file
/// that replaces the one `config` names. Kept by the caller to layer again on reload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    argv: Vec<OsString>,
    file: Option<PathBuf>,
}

/// Parsed settings and where they came from.
#[derive(Debug, Clone)]
pub struct Layered<T> {
    /// The parsed command line, file values included.
    pub value: T,
    /// How to layer the same settings again.
    pub source: Source,
    /// The config file read, if any.
    pub file: Option<PathBuf>,
    set: BTreeSet<String>,
}

impl<T> Layered<T> {
    /// True when the arg `id` (at the level of the command that defines `config`) was given by a flag, an
    /// env var or the file, not left at its default.
    pub fn is_set(&self, id: &str) -> bool {
        self.set.contains(id)
    }
}

/// Layers `argv` (program name first) over the environment, the config file and clap's defaults.
pub fn parse<T: Parser, I: IntoIterator<Item = S>, S: Into<OsString>>(argv: I) -> Result<Layered<T>, LayerError> {
    Source::new(argv).parse()
}

impl Source {
    /// A command line, program name first.
    pub fn new<I: IntoIterator<Item = S>, S: Into<OsString>>(argv: I) -> Source {
        Source { argv: argv.into_iter().map(Into::into).collect(), file: None }
    }

    /// Reads `file` as the config file, whatever `config` says (e.g. `check-config FILE`).
    pub fn with_file(mut self, file: impl Into<PathBuf>) -> Source {
        self.file = Some(file.into());
        self
    }

    /// The command line.
    pub fn argv(&self) -> &[OsString] {
        &self.argv
    }

    /// Layers flags > env > file > defaults. Reads the environment and the file anew on each call.
    pub fn parse<T: Parser>(&self) -> Result<Layered<T>, LayerError> {
        let cmd = T::command();
        // Required args may be given by the file: only the final parse insists on them.
        let first = relax(cmd.clone()).try_get_matches_from(&self.argv).map_err(LayerError::Cli)?;
        let (level, level_matches, depth) = find_level(&cmd, &first);
        let path = self.file.clone().or_else(|| {
            // `try_`: when no command on argv's path defines `config` (e.g. `iotex-injector keygen`), clap's
            // plain getter panics on the unknown id; that case simply has no file.
            level_matches.try_get_raw(CONFIG_ID).ok().flatten().and_then(|mut v| v.next()).map(PathBuf::from)
        });
        let mut argv = self.argv.clone();
        let mut from_file = BTreeSet::new();
        if let Some(path) = &path {
            let table = read_table(path)?;
            let extra = file_args(path, &table, level, level_matches, &mut from_file)?;
            if depth == 0 {
                let at = argv.len().min(1);
                argv.splice(at..at, extra);
            } else {
                argv.extend(extra);
            }
        }
        let fail = |e: clap::Error| match path.as_deref() {
            Some(path) if !from_file.is_empty() => blame(e, path, &from_file),
            _ => LayerError::Cli(e),
        };
        let mut matches = cmd.clone().try_get_matches_from(&argv).map_err(fail)?;
        let set = {
            let (level, level_matches, _) = find_level(&cmd, &matches);
            level
                .get_arguments()
                .map(|a| a.get_id().as_str())
                .filter(|id| {
                    matches!(level_matches.value_source(id), Some(ValueSource::CommandLine | ValueSource::EnvVariable))
                })
                .map(str::to_owned)
                .collect()
        };
        let value = T::from_arg_matches_mut(&mut matches).map_err(fail)?;
        Ok(Layered { value, source: self.clone(), file: path, set })
    }
}

/// `cmd` with no arg required, recursively.
fn relax(cmd: Command) -> Command {
    let names: Vec<String> = cmd.get_subcommands().map(|s| s.get_name().to_owned()).collect();
    let mut cmd = cmd.mut_args(|a| a.required(false));
    for name in names {
        cmd = cmd.mut_subcommand(name, relax);
    }
    cmd
}

/// The deepest command on the path argv chose that defines `config`, its matches and its depth; the top
/// level when none does.
fn find_level<'a>(root: &'a Command, matches: &'a ArgMatches) -> (&'a Command, &'a ArgMatches, usize) {
    let (mut cmd, mut m, mut depth) = (root, matches, 0);
    let mut found = (root, matches, 0);
    loop {
        if cmd.get_arguments().any(|a| a.get_id() == CONFIG_ID) {
            found = (cmd, m, depth);
        }
        let Some((name, sub_m)) = m.subcommand() else { return found };
        let Some(sub) = cmd.find_subcommand(name) else { return found };
        (cmd, m, depth) = (sub, sub_m, depth + 1);
    }
}

fn read_table(path: &Path) -> Result<toml::Table, LayerError> {
    let read_err = |reason: String| LayerError::Read { path: path.to_owned(), reason };
    let file = std::fs::File::open(path).map_err(|e| read_err(e.to_string()))?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes).map_err(|e| read_err(e.to_string()))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(read_err(format!("larger than {MAX_FILE_BYTES} bytes; this is not a config file")));
    }
    let file_err = |message: String| LayerError::File { path: path.to_owned(), message };
    let text = String::from_utf8(bytes).map_err(|_| file_err("not UTF-8 text; a config file is TOML".into()))?;
    // toml bounds its own nesting depth, so a hostile file is an error here, not a stack overflow.
    toml::from_str(&text).map_err(|e| file_err(e.to_string()))
}

/// The flags that carry the file's values for args neither a flag nor an env var set.
fn file_args(
    path: &Path,
    table: &toml::Table,
    level: &Command,
    matches: &ArgMatches,
    from_file: &mut BTreeSet<String>,
) -> Result<Vec<OsString>, LayerError> {
    let mut out = Vec::new();
    for (key, value) in table {
        let key_err = |message: String| LayerError::Key { path: path.to_owned(), key: key.clone(), message };
        let long = key.replace('_', "-");
        if long == CONFIG_ID {
            return Err(key_err("a config file cannot name another config file".into()));
        }
        let arg = level.get_arguments().find(|a| a.get_long() == Some(long.as_str()) && !a.is_hide_set());
        let Some(arg) = arg else {
            return Err(key_err(format!(
                "unknown key{}; keys are the long flag names (see --help)",
                suggest(&long, level)
            )));
        };
        if !from_file.insert(long.clone()) {
            return Err(key_err(format!("`{long}` is given twice (with `-` and with `_`)")));
        }
        if matches!(
            matches.value_source(arg.get_id().as_str()),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        ) {
            continue;
        }
        out.extend(flags_for(&long, value, arg).map_err(key_err)?);
    }
    Ok(out)
}

/// One TOML value as flags for `arg`.
fn flags_for(long: &str, value: &toml::Value, arg: &Arg) -> Result<Vec<OsString>, String> {
    let flag = |v: &str| OsString::from(format!("--{long}={v}"));
    match arg.get_action() {
        ArgAction::SetTrue | ArgAction::SetFalse => {
            let toml::Value::Boolean(b) = value else {
                return Err(format!("is a switch: write `{long} = true` or `{long} = false`"));
            };
            let raise = *b == matches!(arg.get_action(), ArgAction::SetTrue);
            Ok(if raise { vec![OsString::from(format!("--{long}"))] } else { Vec::new() })
        }
        ArgAction::Append => {
            let toml::Value::Array(items) = value else {
                return Err(format!("is a list (the flag is repeatable): write `{long} = [\"…\"]`"));
            };
            if items.is_empty() && arg.get_default_values().iter().next().is_some() {
                // An explicit empty list replaces a default list; one empty value is how a flag says that.
                return Ok(vec![flag("")]);
            }
            items.iter().map(|i| scalar(i).map(|s| flag(&s))).collect()
        }
        _ => {
            if value.is_array() {
                return Err("takes one value, not a list".into());
            }
            Ok(vec![flag(&scalar(value)?)])
        }
    }
}

fn scalar(v: &toml::Value) -> Result<String, String> {
    match v {
        toml::Value::String(s) => Ok(s.clone()),
        toml::Value::Integer(i) => Ok(i.to_string()),
        toml::Value::Float(f) => Ok(f.to_string()),
        toml::Value::Boolean(b) => Ok(b.to_string()),
        toml::Value::Datetime(_) => Err("a TOML date-time is not a value here; quote it as a string".into()),
        toml::Value::Array(_) => Err("lists do not nest".into()),
        toml::Value::Table(_) => Err("must be a plain value, not a table".into()),
    }
}

/// ` (did you mean `x`?)` for the closest long flag name, when one is close.
fn suggest(key: &str, cmd: &Command) -> String {
    let best = cmd
        .get_arguments()
        .filter(|a| !a.is_hide_set())
        .filter_map(Arg::get_long)
        .filter(|l| *l != CONFIG_ID)
        .map(|l| (strsim::levenshtein(key, l), l))
        .min();
    match best {
        Some((d, l)) if d <= 2.max(key.len() / 4) => format!(" (did you mean `{l}`?)"),
        _ => String::new(),
    }
}

/// A parse error after the file's flags were added: the file caused it (argv and env alone parsed), so it
/// names the file and, when it can tell, the key.
fn blame(e: clap::Error, path: &Path, from_file: &BTreeSet<String>) -> LayerError {
    let rendered = e.render().to_string();
    let message = rendered.lines().next().unwrap_or_default().trim().trim_start_matches("error: ").to_owned();
    let by_context = match e.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(s)) => s.trim_start_matches('-').split([' ', '=', '<']).next().map(str::to_owned),
        _ => None,
    };
    let key = by_context
        .filter(|k| from_file.contains(k))
        .or_else(|| from_file.iter().find(|k| names_flag(&message, k)).cloned());
    match key {
        Some(key) => LayerError::Key { path: path.to_owned(), key, message },
        None => LayerError::File { path: path.to_owned(), message },
    }
}

/// True when `message` mentions `--long` as a whole flag (not `--long-more`).
fn names_flag(message: &str, long: &str) -> bool {
    let flag = format!("--{long}");
    message.match_indices(&flag).any(|(i, _)| {
        message[i + flag.len()..].chars().next().is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
    })
}

/// A value parser from a plain function whose error names the flag and the config key:
/// ``invalid value for --health-interval (config key `health-interval`): must be longer than zero``.
#[derive(Clone, Copy)]
pub struct Keyed<T>(fn(&str) -> Result<T, String>);

/// Wraps `f` as a [`Keyed`] value parser: `#[arg(value_parser = keyed(my_fn))]`.
pub fn keyed<T>(f: fn(&str) -> Result<T, String>) -> Keyed<T> {
    Keyed(f)
}

impl<T: Clone + Send + Sync + 'static> TypedValueParser for Keyed<T> {
    type Value = T;

    fn parse_ref(&self, cmd: &Command, arg: Option<&Arg>, value: &OsStr) -> Result<T, clap::Error> {
        let key = arg.and_then(Arg::get_long).unwrap_or("value");
        let fail = |problem: &str| {
            clap::Error::raw(
                ErrorKind::ValueValidation,
                format!("invalid value for --{key} (config key `{key}`): {problem}\n"),
            )
            .with_cmd(cmd)
        };
        let text = value.to_str().ok_or_else(|| fail("not UTF-8"))?;
        (self.0)(text).map_err(|p| fail(&p))
    }
}

#[cfg(test)]
#[path = "layered_tests.rs"]
mod tests;

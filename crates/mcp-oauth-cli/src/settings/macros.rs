//! `declare_settings!`: the machinery that turns the table in [`super::declared`] into
//! code. Adding a setting never needs a change here; the table's module documentation
//! says how to write a row.
//!
//! From the rows, in their order, it writes:
//! - `OAuthArgs`, the flags (`#[derive(clap::Args)]`): one field per `flag`, with the
//!   row's doc comment as its `--help` text;
//! - `ServerSettings`, the keys of a server's table in the configuration file
//!   (`#[derive(serde::Deserialize)]`, unknown keys refused): `url`, one `Option` field
//!   per `key`, `profiles`;
//! - `OAuthArgs::as_settings`, the flags as one more layer of keys (`from`);
//! - `ServerSettings::overlay`, a layer over another: a key set in the upper layer wins,
//!   unless the row says otherwise (`merge`, `replaces`);
//! - `apply_to_config`, the keys onto the engine's `OAuthConfig` (`apply`), in row order.
//!
//! Rows are read one recursion step each (the struct fields can only be written once all
//! are known), so the table can grow to about 120 rows before the compiler's default
//! recursion limit (128) is in the way. A row's clauses are read afterwards, once per
//! kind of code written, by `@scan`: its first argument says which kind.

macro_rules! declare_settings {
    // ---- The rows --------------------------------------------------------------------
    // Collected so far: {flag fields} {key fields} {one record per key:
    // [key (its flag, if it has one) {clauses}]}.

    // All rows read: write the code.
    (@rows {$($flags:tt)*} {$($keys:tt)*}
        {$([$k:ident ($($f:ident)?) $clauses:tt])*}
    ) => {
        /// OAuth settings for one server (flags; the configuration file supplies the rest).
        #[derive(clap::Args, Debug, Clone, Default)]
        pub struct OAuthArgs {
            $($flags)*
        }

        /// The settings of one server (or of `[defaults]`, or of a profile): the keys of
        /// one table of the configuration file, or the flags as one more layer.
        #[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct ServerSettings {
            /// The server's URL, in a table keyed by a name (`[servers.my-server]`); only
            /// there.
            pub url: Option<String>,
            $($keys)*
            /// Named accounts on this server (only in a server's table).
            pub profiles: Option<std::collections::BTreeMap<String, ServerSettings>>,
        }

        // Every row's clauses are checked once, here: an unknown clause, or a key that
        // does not say where its value goes, is a compile error that names the key.
        $($crate::settings::macros::declare_settings!(@scan check ($k [] []) $clauses);)*

        impl OAuthArgs {
            /// The flags as a settings layer.
            pub(super) fn as_settings(&self) -> anyhow::Result<ServerSettings> {
                Ok(ServerSettings {
                    url: None,
                    $($k: $crate::settings::macros::declare_settings!(
                        @scan from (self $k ($($f)?)) $clauses
                    ),)*
                    profiles: None,
                })
            }
        }

        impl ServerSettings {
            /// `self` with every setting of `over` that is set replacing it (`url` and
            /// `profiles` are not settings: neither is kept).
            pub fn overlay(&self, over: &ServerSettings) -> ServerSettings {
                let mut out = ServerSettings {
                    url: None,
                    $($k: over.$k.clone().or_else(|| self.$k.clone()),)*
                    profiles: None,
                };
                $($crate::settings::macros::declare_settings!(
                    @scan merge (self over out $k) $clauses
                );)*
                out
            }
        }

        /// The keys that map onto the engine's configuration one by one, in the table's
        /// order (the others are read by the functions their rows name with `read_by`).
        pub(super) fn apply_to_config(
            config: &mut ::mcp_oauth::OAuthConfig,
            settings: &ServerSettings,
        ) -> anyhow::Result<()> {
            $($crate::settings::macros::declare_settings!(
                @scan apply (config settings $k) $clauses
            );)*
            Ok(())
        }
    };

    // A flag that is not a key of its own (it feeds a key's `from`, or is the command's).
    (@rows {$($flags:tt)*} $keys:tt $records:tt
        $(#[doc = $doc:literal])*
        #[arg($($arg:tt)*)]
        flag $f:ident : $ft:ty;
        $($rest:tt)*
    ) => {
        $crate::settings::macros::declare_settings!(@rows
            {$($flags)* $(#[doc = $doc])* #[arg($($arg)*)] pub $f: $ft,}
            $keys $records
            $($rest)*
        );
    };

    // A flag and the key it sets.
    (@rows {$($flags:tt)*} {$($keys:tt)*} {$($records:tt)*}
        $(#[doc = $doc:literal])*
        #[arg($($arg:tt)*)]
        flag $f:ident : $ft:ty => key $k:ident : $kt:ty { $($clauses:tt)* }
        $($rest:tt)*
    ) => {
        $crate::settings::macros::declare_settings!(@rows
            {$($flags)* $(#[doc = $doc])* #[arg($($arg)*)] pub $f: $ft,}
            {$($keys)* $(#[doc = $doc])* pub $k: Option<$kt>,}
            {$($records)* [$k ($f) {$($clauses)*}]}
            $($rest)*
        );
    };

    // A key of the configuration file with no flag.
    (@rows $flags:tt {$($keys:tt)*} {$($records:tt)*}
        $(#[doc = $doc:literal])*
        key $k:ident : $kt:ty { $($clauses:tt)* }
        $($rest:tt)*
    ) => {
        $crate::settings::macros::declare_settings!(@rows
            $flags
            {$($keys)* $(#[doc = $doc])* pub $k: Option<$kt>,}
            {$($records)* [$k () {$($clauses)*}]}
            $($rest)*
        );
    };

    (@rows $flags:tt $keys:tt $records:tt $($rest:tt)+) => {
        compile_error!(concat!(
            "declare_settings!: this row is not `flag NAME: TYPE;`, ",
            "`flag NAME: TYPE => key NAME: TYPE { ... }` or `key NAME: TYPE { ... }` ",
            "(doc comments first, and a flag's #[arg(...)] last): ",
            stringify!($($rest)+)
        ));
    };

    // ---- The clauses of one key ------------------------------------------------------
    // `@scan MODE (ARGS) { clauses }`: each mode writes its code for the clauses it knows
    // and skips the others (the generic arms at the end); `check` knows them all.

    // check: every clause is known, `apply`/`try_apply`/`read_by` exactly once, at most
    // one `from`/`try_from`. (ARGS) = (key [destinations seen] [sources seen]).
    (@scan check ($k:ident [$($to:ident)*] [$($src:ident)*])
        { apply: |$c:ident, $v:ident| $e:expr, $($rest:tt)* }) => {
        $crate::settings::macros::declare_settings!(
            @scan check ($k [$($to)* apply] [$($src)*]) { $($rest)* });
    };
    (@scan check ($k:ident [$($to:ident)*] [$($src:ident)*])
        { try_apply: |$c:ident, $v:ident| $e:expr, $($rest:tt)* }) => {
        $crate::settings::macros::declare_settings!(
            @scan check ($k [$($to)* try_apply] [$($src)*]) { $($rest)* });
    };
    (@scan check ($k:ident [$($to:ident)*] [$($src:ident)*])
        { read_by: $p:path, $($rest:tt)* }) => {
        // The reader must exist: renaming it without the table does not compile.
        const _: () = {
            let _ = $p;
        };
        $crate::settings::macros::declare_settings!(
            @scan check ($k [$($to)* read_by] [$($src)*]) { $($rest)* });
    };
    (@scan check ($k:ident $to:tt [$($src:ident)*]) { from: switch, $($rest:tt)* }) => {
        $crate::settings::macros::declare_settings!(
            @scan check ($k $to [$($src)* from]) { $($rest)* });
    };
    (@scan check ($k:ident $to:tt [$($src:ident)*])
        { from: |$a:ident| $e:expr, $($rest:tt)* }) => {
        $crate::settings::macros::declare_settings!(
            @scan check ($k $to [$($src)* from]) { $($rest)* });
    };
    (@scan check ($k:ident $to:tt [$($src:ident)*])
        { try_from: |$a:ident| $e:expr, $($rest:tt)* }) => {
        $crate::settings::macros::declare_settings!(
            @scan check ($k $to [$($src)* try_from]) { $($rest)* });
    };
    (@scan check $args:tt { merge: |$a:ident, $b:ident| $e:expr, $($rest:tt)* }) => {
        $crate::settings::macros::declare_settings!(@scan check $args { $($rest)* });
    };
    (@scan check $args:tt { replaces: $other:ident, $($rest:tt)* }) => {
        $crate::settings::macros::declare_settings!(@scan check $args { $($rest)* });
    };
    (@scan check ($k:ident [$to:ident] [$($src:ident)?]) {}) => {};
    (@scan check ($k:ident [] $src:tt) {}) => {
        compile_error!(concat!(
            "setting `", stringify!($k), "`: say where its value goes with ",
            "`apply: |c, v| ...,`, `try_apply: |c, v| ...,` or `read_by: FUNCTION,`"
        ));
    };
    (@scan check ($k:ident [$($to:ident)*] [$($src:ident)*]) {}) => {
        compile_error!(concat!(
            "setting `", stringify!($k), "`: one of apply/try_apply/read_by and at most ",
            "one of from/try_from, not: ", stringify!($($to)* $($src)*)
        ));
    };
    (@scan check ($k:ident $($seen:tt)*) { $($clause:tt)* }) => {
        compile_error!(concat!(
            "setting `", stringify!($k), "`: a clause is not understood (each ends with a ",
            "comma; see the table's documentation): ", stringify!($($clause)*)
        ));
    };

    // from: the key's value in the flags' layer (an expression). Without the clause, the
    // flag's value as it is (an `Option` of the key's type); a key without a flag is unset.
    (@scan from ($this:tt $k:ident ($f:ident)) { from: switch, $($rest:tt)* }) => {
        // Given: `true`; not given: unset, so the file decides.
        $this.$f.then_some(true)
    };
    (@scan from ($this:tt $k:ident ()) { from: switch, $($rest:tt)* }) => {
        compile_error!(concat!(
            "setting `", stringify!($k), "`: `from: switch` needs a flag (`flag NAME: bool =>`)"
        ))
    };
    (@scan from ($this:tt $k:ident $f:tt) { from: |$a:ident| $e:expr, $($rest:tt)* }) => {{
        let $a: &OAuthArgs = $this;
        $e
    }};
    (@scan from ($this:tt $k:ident $f:tt) { try_from: |$a:ident| $e:expr, $($rest:tt)* }) => {{
        let $a: &OAuthArgs = $this;
        $e?
    }};
    (@scan from ($this:tt $k:ident ($f:ident)) {}) => {
        $this.$f.clone()
    };
    (@scan from ($this:tt $k:ident ()) {}) => {
        None
    };

    // merge: how a layer's value combines with the one below when both are set (instead
    // of replacing it); replaces: setting this key in a layer unsets the other key there
    // too (two sources of one value: the upper layer's choice wins whole).
    (@scan merge ($this:tt $over:ident $out:ident $k:ident)
        { merge: |$a:ident, $b:ident| $e:expr, $($rest:tt)* }) => {
        if let (Some($a), Some($b)) = (&$this.$k, &$over.$k) {
            $out.$k = Some($e);
        }
        $crate::settings::macros::declare_settings!(
            @scan merge ($this $over $out $k) { $($rest)* });
    };
    (@scan merge ($this:tt $over:ident $out:ident $k:ident)
        { replaces: $other:ident, $($rest:tt)* }) => {
        if $over.$k.is_some() {
            $out.$other = $over.$other.clone();
        }
        $crate::settings::macros::declare_settings!(
            @scan merge ($this $over $out $k) { $($rest)* });
    };
    (@scan merge $args:tt {}) => {};

    // apply / try_apply: the key's value, when set, onto the engine's configuration.
    (@scan apply ($config:ident $settings:ident $k:ident)
        { apply: |$c:ident, $v:ident| $e:expr, $($rest:tt)* }) => {
        if let Some($v) = &$settings.$k {
            let $c: &mut ::mcp_oauth::OAuthConfig = &mut *$config;
            $e;
        }
    };
    (@scan apply ($config:ident $settings:ident $k:ident)
        { try_apply: |$c:ident, $v:ident| $e:expr, $($rest:tt)* }) => {
        if let Some($v) = &$settings.$k {
            let $c: &mut ::mcp_oauth::OAuthConfig = &mut *$config;
            $e?;
        }
    };
    (@scan apply $args:tt {}) => {};

    // Any mode: a clause that is not this mode's (no `;`: `from` writes an expression).
    (@scan $mode:ident $args:tt { $name:ident: |$a:ident| $e:expr, $($rest:tt)* }) => {
        $crate::settings::macros::declare_settings!(@scan $mode $args { $($rest)* })
    };
    (@scan $mode:ident $args:tt
        { $name:ident: |$a:ident, $b:ident| $e:expr, $($rest:tt)* }) => {
        $crate::settings::macros::declare_settings!(@scan $mode $args { $($rest)* })
    };
    (@scan $mode:ident $args:tt { $name:ident: $p:path, $($rest:tt)* }) => {
        $crate::settings::macros::declare_settings!(@scan $mode $args { $($rest)* })
    };

    // ---- The entry ----------------------------------------------------------------------
    ($($rows:tt)*) => {
        $crate::settings::macros::declare_settings!(@rows {} {} {} $($rows)*);
    };
}

pub(crate) use declare_settings;

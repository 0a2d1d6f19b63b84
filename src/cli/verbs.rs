//! The one mechanism behind every RPC verb (`sts …`, `iam …`, `authz …`): [`verbs!`] turns a
//! table with one entry per verb into the clap subcommand enum and the function that builds the
//! request, calls the RPC (signed by the client's layer) and renders the answer.
//!
//! An entry is
//!
//! ```text
//! /// Help text.
//! Verb => rpc_method(pb::VerbRequest) { #[arg(long)] field: Type, … }
//!     [fixed { field: expr, … }]      // request fields that have no flag
//!     [before { statements }]         // local work before the call (files, checks)
//!     [request { expr }]              // build the request by hand instead
//!     [=> |response| json];           // the output; none when AWS prints nothing
//! ```
//!
//! Flags are named after the request fields they fill (`#[arg(long = …)]` keeps aws's flag
//! name where the field is named otherwise, e.g. `--starting-token` for `marker`), and [`Field`]
//! converts each flag's value into its field, e.g. reading a `file://` document.

use super::{CallError, read_document};
use std::path::Path;
use zeroize::Zeroizing;

/// How a flag's value becomes the request field it fills.
pub(super) trait Field<T> {
    fn into_field(self) -> Result<T, CallError>;
}

impl<T> Field<T> for T {
    fn into_field(self) -> Result<T, CallError> {
        Ok(self)
    }
}

/// A switch fills an optional flag: set or absent, never `false`.
impl Field<Option<bool>> for bool {
    fn into_field(self) -> Result<Option<bool>, CallError> {
        Ok(self.then_some(true))
    }
}

/// A policy document given inline or as `file://PATH`, read when the verb runs.
#[derive(Debug, Clone)]
pub struct Document(String);

impl From<String> for Document {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl Field<String> for Document {
    fn into_field(self) -> Result<String, CallError> {
        read_document(&self.0).map_err(CallError::Local)
    }
}

impl Field<Option<String>> for Option<Document> {
    fn into_field(self) -> Result<Option<String>, CallError> {
        self.map(Field::into_field).transpose()
    }
}

impl Field<Vec<String>> for Vec<Document> {
    fn into_field(self) -> Result<Vec<String>, CallError> {
        self.into_iter().map(Field::into_field).collect()
    }
}

/// A file given as `file://PATH` (as aws takes file arguments) or a plain path, read when the
/// verb runs.
#[derive(Debug, Clone)]
pub struct TextFile(String);

impl From<String> for TextFile {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl TextFile {
    /// The file's contents, wiped from memory when dropped.
    pub(super) fn read(&self, what: &str) -> anyhow::Result<Zeroizing<String>> {
        use anyhow::Context;
        let path = Path::new(self.0.strip_prefix("file://").unwrap_or(&self.0));
        std::fs::read_to_string(path)
            .map(Zeroizing::new)
            .with_context(|| format!("cannot read {what} `{}`", path.display()))
    }
}

/// Generates a verb enum and its `call` function from a table; see the module comment.
macro_rules! verbs {
    (@request [$($Req:ident)::+] [$($field:ident)*] [$($fixed:ident: $fexpr:expr),*]) => {
        $($Req)::+ {
            $($field: $crate::cli::verbs::Field::into_field($field)?,)*
            $($fixed: $fexpr,)*
        }
    };
    (@request [$($Req:ident)::+] [$($field:ident)*] [$($fixed:tt)*] $request:block) => {
        $request
    };
    (@output $response:ident) => {{
        let _ = $response;
        None
    }};
    (@output $response:ident |$r:ident| $out:expr) => {{
        let $r = $response;
        Some($out)
    }};
    (
        enum $Enum:ident;
        fn $call:ident(client.$service:ident);
        $(
            $(#[$doc:meta])*
            $Verb:ident => $method:ident($($Req:ident)::+) {
                $($(#[$arg:meta])* $field:ident: $ty:ty),* $(,)?
            }
            $(fixed { $($fixed:ident: $fexpr:expr),* $(,)? })?
            $(before { $($before:tt)* })?
            $(request $request:block)?
            $(=> |$r:ident| $out:expr)?
            ;
        )*
    ) => {
        #[derive(Debug, clap::Subcommand)]
        pub enum $Enum {
            $(
                $(#[$doc])*
                $Verb { $($(#[$arg])* $field: $ty,)* },
            )*
        }

        /// Runs `action`; `None` when the operation has no output.
        pub(super) async fn $call(
            c: &$crate::client::Client,
            action: $Enum,
        ) -> Result<Option<serde_json::Value>, $crate::cli::CallError> {
            Ok(match action {
                $(
                    $Enum::$Verb { $($field),* } => {
                        $($($before)*)?
                        let request: $($Req)::+ = verbs!(
                            @request [$($Req)::+] [$($field)*] [$($($fixed: $fexpr),*)?] $($request)?
                        );
                        let response = c.$service().$method(request).await?.into_inner();
                        verbs!(@output response $(|$r| $out)?)
                    }
                )*
            })
        }
    };
}
pub(super) use verbs;

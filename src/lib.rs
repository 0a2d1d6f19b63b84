//! sts-broker: a self-hosted temporary-credentials broker modelled on AWS STS and IAM MFA.
//!
//! Dependency rule (one way only):
//! `cli → server → grpc → broker → {sigv4, crypto, ids, clock, domain}`, and `store → domain`.
//! `grpc` is the only module that names tonic types or generated messages; `broker` orchestrates
//! a call (authenticate → authorize → act → audit); `sigv4`, `crypto`, `ids` and `clock` are pure;
//! `domain` holds the domain types, IAM's rules and the store contract the broker calls;
//! `store` holds the backends of that contract, the only code with SQL.

pub mod broker;
pub mod cache;
pub mod cli;
pub mod client;
pub mod clock;
pub mod credentials;
pub mod crypto;
pub mod datadir;
pub mod domain;
pub mod error;
pub mod grpc;
pub mod ids;
pub mod listener;
pub mod metrics;
pub mod mfa;
pub mod policy;
pub mod server;
pub mod sigv4;
pub mod store;

/// Code generated from `proto/` (packages `sts.v1`, `iam.v1`, `authz.v1`).
pub mod proto {
    #![allow(clippy::all, missing_docs)]

    pub mod sts {
        pub mod v1 {
            tonic::include_proto!("sts.v1");
        }
    }
    pub mod iam {
        pub mod v1 {
            tonic::include_proto!("iam.v1");
        }
    }
    pub mod authz {
        pub mod v1 {
            tonic::include_proto!("authz.v1");
        }
    }

    /// The encoded descriptor set, for gRPC reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        tonic::include_file_descriptor_set!("sts_broker_descriptor");
}

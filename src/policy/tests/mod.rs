//! Tests of the policy module that need more than one stage: the JSON fixture corpus
//! (`tests/fixtures/policy/*.json`, the readable spec), parser rejections, and property tests.

mod fixtures;
mod properties;
mod rejections;
mod unit;

//! Turning findings into output for people (table), programs (JSON) and code scanning (SARIF).
#![forbid(unsafe_code)]

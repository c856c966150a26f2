//! Inputs the fuzzer found that once crashed or broke a property, each a named test.

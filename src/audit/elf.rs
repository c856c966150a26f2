//! What a privileged binary is made of: ELF or not, and its exploit mitigations (PIE, RELRO, NX
//! stack, stack protector) and library search paths. Only setuid, setgid and file-capability
//! binaries are read this way: they are where a memory-safety bug becomes a privilege escalation,
//! and where an RPATH into a writable directory lets any user inject code.

use goblin::elf::{Elf, dynamic, header, program_header};

use super::{Evidence, Finding, Location, Rule, Severity};

/// A privileged ELF binary built without the usual mitigations.
pub const WEAK_HARDENING: Rule = Rule {
    id: "elf.weak-hardening",
    severity: Severity::Medium,
    title: "Privileged binary built without exploit mitigations",
    description: "A setuid, setgid or file-capability ELF binary lacks PIE, a non-executable \
        stack, RELRO or a stack protector. Any memory-safety bug in it is then far easier to turn \
        into root. (A stripped static binary may hide its stack protector; that is not counted.)",
    remediation: "Rebuild it with -fPIE -pie -fstack-protector-strong -Wl,-z,relro,-z,now \
        -Wl,-z,noexecstack, or drop its setuid bit / capabilities if the container does not \
        need them.",
};

/// A privileged binary that loads libraries from a path an unprivileged user can write.
pub const INSECURE_RPATH: Rule = Rule {
    id: "elf.insecure-rpath",
    severity: Severity::High,
    title: "Privileged binary searches libraries in a writable or relative path",
    description: "The RPATH/RUNPATH of a setuid, setgid or file-capability ELF binary names a \
        relative directory ($ORIGIN, empty, ./lib) or one unprivileged users can write (/tmp, \
        /var/tmp, /dev/shm, a world-writable directory of the image). A user who plants a \
        library there runs code with the binary's privileges.",
    remediation: "Rebuild without RPATH/RUNPATH (or with absolute root-owned directories only), \
        or remove the binary's setuid bit / capabilities.",
};

/// The rules of the ELF checks.
pub static RULES: &[Rule] = &[WEAK_HARDENING, INSECURE_RPATH];

/// What a privileged file turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Binary {
    Elf(ElfInfo),
    /// Starts with `#!`: the kernel ignores setuid and file capabilities on scripts.
    Script,
    /// ELF magic, but the headers do not parse.
    Malformed(String),
    /// Neither ELF nor a script (another binfmt, or data).
    Other,
    /// Larger than the audit reads.
    Unread,
}

/// RELRO level: how much of the relocation data is read-only after start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relro {
    None,
    Partial,
    Full,
}

/// The mitigations and search paths of an ELF binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElfInfo {
    pub bits: u8,
    pub machine: String,
    /// Position-independent (ET_DYN): ASLR applies to the binary itself.
    pub pie: bool,
    /// No program interpreter: statically linked.
    pub static_linked: bool,
    pub relro: Relro,
    /// The stack is not executable (PT_GNU_STACK without PF_X).
    pub nx: bool,
    /// Stack protector symbols present; None when the binary has no symbols to tell.
    pub canary: Option<bool>,
    /// RPATH and RUNPATH entries, split at `:`.
    pub search_paths: Vec<String>,
}

impl ElfInfo {
    /// One line for a person: `ELF 64-bit X86_64, dynamic, PIE, full RELRO, NX, canary`.
    pub fn summary(&self) -> String {
        let mut parts = vec![
            format!("ELF {}-bit {}", self.bits, self.machine),
            if self.static_linked {
                "static"
            } else {
                "dynamic"
            }
            .to_string(),
            if self.pie { "PIE" } else { "no PIE" }.to_string(),
            match self.relro {
                Relro::Full => "full RELRO",
                Relro::Partial => "partial RELRO",
                Relro::None => "no RELRO",
            }
            .to_string(),
            if self.nx { "NX" } else { "executable stack" }.to_string(),
            match self.canary {
                Some(true) => "canary",
                Some(false) => "no canary",
                None => "canary unknown (no symbols)",
            }
            .to_string(),
        ];
        if !self.search_paths.is_empty() {
            parts.push(format!("RPATH {}", self.search_paths.join(":")));
        }
        parts.join(", ")
    }

    /// The missing mitigations, worst first.
    pub fn weaknesses(&self) -> Vec<&'static str> {
        let mut w = Vec::new();
        if !self.nx {
            w.push("executable stack");
        }
        if !self.pie {
            w.push("no PIE");
        }
        if self.relro == Relro::None {
            w.push("no RELRO");
        }
        if self.canary == Some(false) {
            w.push("no stack protector");
        }
        w
    }
}

impl Binary {
    /// One line for a person.
    pub fn summary(&self) -> String {
        match self {
            Binary::Elf(e) => e.summary(),
            Binary::Script => "script (#!): the kernel ignores setuid on scripts".into(),
            Binary::Malformed(why) => format!("malformed ELF: {why}"),
            Binary::Other => "not an ELF binary".into(),
            Binary::Unread => "too large to inspect".into(),
        }
    }
}

/// Reads what `content` (a whole file, possibly cut at the audit's size limit) is.
pub fn inspect(content: &[u8]) -> Binary {
    if content.starts_with(b"#!") {
        return Binary::Script;
    }
    if !content.starts_with(b"\x7fELF") {
        return Binary::Other;
    }
    let elf = match Elf::parse(content) {
        Ok(e) => e,
        Err(e) => return Binary::Malformed(e.to_string()),
    };
    let phdr = |t: u32| elf.program_headers.iter().find(|p| p.p_type == t);
    let bind_now = elf.dynamic.as_ref().is_some_and(|d| {
        d.info.flags & dynamic::DF_BIND_NOW != 0
            || d.info.flags_1 & dynamic::DF_1_NOW != 0
            || d.dyns.iter().any(|x| x.d_tag == dynamic::DT_BIND_NOW)
    });
    let relro = match (phdr(program_header::PT_GNU_RELRO).is_some(), bind_now) {
        (false, _) => Relro::None,
        (true, false) => Relro::Partial,
        (true, true) => Relro::Full,
    };
    let nx =
        phdr(program_header::PT_GNU_STACK).is_some_and(|p| p.p_flags & program_header::PF_X == 0);
    let is_canary = |name: &str| {
        matches!(
            name,
            "__stack_chk_fail" | "__stack_chk_guard" | "__intel_security_cookie"
        )
    };
    let dyn_names = elf
        .dynsyms
        .iter()
        .filter_map(|s| elf.dynstrtab.get_at(s.st_name));
    let names = elf.syms.iter().filter_map(|s| elf.strtab.get_at(s.st_name));
    let canary = if elf.dynsyms.is_empty() && elf.syms.is_empty() {
        None
    } else {
        Some(dyn_names.chain(names).any(is_canary))
    };
    let search_paths = elf
        .rpaths
        .iter()
        .chain(&elf.runpaths)
        .flat_map(|p| p.split(':'))
        .map(str::to_string)
        .collect();
    Binary::Elf(ElfInfo {
        bits: if elf.is_64 { 64 } else { 32 },
        machine: header::machine_to_str(elf.header.e_machine).to_string(),
        pie: elf.header.e_type == header::ET_DYN,
        static_linked: elf.interpreter.is_none(),
        relro,
        nx,
        canary,
        search_paths,
    })
}

/// Why a library search path is dangerous for a privileged binary, if it is. `writable` says
/// whether the image lets unprivileged users write a directory.
pub fn risky_search_path(dir: &str, writable: &dyn Fn(&str) -> bool) -> Option<&'static str> {
    if dir.is_empty() {
        return Some("empty entry (the current directory)");
    }
    if dir.contains("$ORIGIN") || dir.contains("${ORIGIN}") {
        return Some("relative to the binary ($ORIGIN)");
    }
    if !dir.starts_with('/') {
        return Some("relative to the current directory");
    }
    let under = |root: &str| dir == root || dir.starts_with(&format!("{root}/"));
    if ["/tmp", "/var/tmp", "/dev/shm", "/run/shm"]
        .into_iter()
        .any(under)
        || writable(dir)
    {
        return Some("writable by unprivileged users");
    }
    None
}

/// The ELF findings for a privileged binary at `location`.
pub fn check(info: &ElfInfo, location: &Location, writable: &dyn Fn(&str) -> bool) -> Vec<Finding> {
    let mut out = Vec::new();
    let weak = info.weaknesses();
    if !weak.is_empty() {
        out.push(WEAK_HARDENING.finding(
            location.clone(),
            Some(Evidence::plain(format!(
                "{} ({})",
                weak.join(", "),
                info.summary()
            ))),
        ));
    }
    let risky: Vec<String> = info
        .search_paths
        .iter()
        .filter_map(|d| risky_search_path(d, writable).map(|why| format!("{d:?}: {why}")))
        .collect();
    if !risky.is_empty() {
        out.push(INSECURE_RPATH.finding(location.clone(), Some(Evidence::plain(risky.join("; ")))));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_and_data_are_not_elf() {
        assert_eq!(inspect(b"#!/bin/sh\necho hi\n"), Binary::Script);
        assert_eq!(inspect(b"hello"), Binary::Other);
        assert!(matches!(inspect(b"\x7fELF\x02\x01"), Binary::Malformed(_)));
    }

    #[test]
    fn the_test_binary_itself_is_analysed() {
        // This test binary is a normal Rust executable: PIE, NX, with symbols.
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let Binary::Elf(info) = inspect(&me) else {
            panic!("not ELF")
        };
        assert!(info.nx, "{}", info.summary());
        assert!(info.pie, "{}", info.summary());
        assert!(!info.static_linked);
        assert_ne!(info.relro, Relro::None);
    }

    #[test]
    fn search_paths_into_writable_or_relative_dirs_are_flagged() {
        let none = |_: &str| false;
        assert!(risky_search_path("/usr/lib/app", &none).is_none());
        assert!(risky_search_path("$ORIGIN/../lib", &none).is_some());
        assert!(risky_search_path("", &none).is_some());
        assert!(risky_search_path("lib", &none).is_some());
        assert!(risky_search_path("/tmp/lib", &none).is_some());
        assert!(risky_search_path("/opt/plugins", &|d: &str| d == "/opt/plugins").is_some());
        let info = ElfInfo {
            bits: 64,
            machine: "X86_64".into(),
            pie: false,
            static_linked: true,
            relro: Relro::None,
            nx: true,
            canary: None,
            search_paths: vec!["/var/tmp".into()],
        };
        let loc = Location::ImageFile {
            path: "/usr/local/bin/x".into(),
            layer: None,
        };
        let f = check(&info, &loc, &none);
        let rules: Vec<&str> = f.iter().map(|f| f.rule.as_str()).collect();
        assert_eq!(rules, ["elf.weak-hardening", "elf.insecure-rpath"]);
        assert!(
            f[0].evidence
                .as_ref()
                .unwrap()
                .excerpt
                .starts_with("no PIE, no RELRO")
        );
    }
}

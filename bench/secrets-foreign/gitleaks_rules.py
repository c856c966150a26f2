"""gitleaks' own rule samples (cmd/generate/config/rules/*.go), as its rule generator tests them.

Each rule function lists `tps` (true positives: `validate` fails unless the rule finds each one
exactly once) and sometimes `fps` (false positives: it fails if the rule reports any). Samples
are Go expressions: string literals joined with `+`, `generateSampleSecret(identifier, secret)`
(`IDENTIFIER_api_token = "SECRET"`, rule.go), `secrets.NewSecret(REGEX)` (a string generated
from REGEX by reggen, limit 1) over rule.go's helpers (`alphaNumeric("36")` = `[a-z0-9]{36}`,
…), `fmt.Sprintf` and local variables assigned with `:=` in the same function.

`samples(rules_dir, seed)` evaluates every list with a generator seeded once, so the bench is
reproducible, and yields (rule_id, "tp"|"fp", text). An expression it cannot evaluate raises
(the bench must not drop a sample silently).
"""
import glob
import os
import random
import re

try:  # Python 3.11+
    import re._parser as sre_parse
    import re._constants as sre_c
except ImportError:  # Python 3.10 and older
    import sre_parse
    import sre_constants as sre_c

# rule.go's helpers: name -> regex template over its size argument.
HELPERS = {
    "numeric": "[0-9]{%s}",
    "hex": "[a-f0-9]{%s}",
    "alphaNumeric": "[a-z0-9]{%s}",
    "alphaNumericExtendedShort": "[a-z0-9_-]{%s}",
    "alphaNumericExtended": "[a-z0-9=_\\-]{%s}",
    "alphaNumericExtendedLong": "[a-z0-9\\/=_\\+\\-]{%s}",
}
HEX8_4_4_4_12 = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
PRINTABLE = [chr(c) for c in range(0x21, 0x7F)]
CATEGORIES = {
    sre_c.CATEGORY_DIGIT: [chr(c) for c in range(0x30, 0x3A)],
    sre_c.CATEGORY_WORD: [c for c in PRINTABLE if c.isalnum() or c == "_"],
    sre_c.CATEGORY_SPACE: [" "],
}


class Generator:
    """reggen's generation (github.com/lucasjones/reggen, limit 1): a repeat with no upper
    bound repeats at most `limit` more times than its minimum; every choice is uniform."""

    def __init__(self, seed):
        self.rng = random.Random(seed)

    def generate(self, regex):
        return "".join(self.emit(sre_parse.parse(regex)))

    def emit(self, items):
        out = []
        for op, av in items:
            out.extend(self.one(op, av))
        return out

    def one(self, op, av):
        if op is sre_c.LITERAL:
            return [chr(av)]
        if op is sre_c.ANY:
            return [self.rng.choice(PRINTABLE)]
        if op is sre_c.IN:
            return [self.rng.choice(self.charset(av))]
        if op is sre_c.CATEGORY:
            return [self.rng.choice(CATEGORIES[av])]
        if op in (sre_c.MAX_REPEAT, sre_c.MIN_REPEAT):
            lo, hi, body = av
            hi = lo + 1 if hi is sre_c.MAXREPEAT else hi
            return [c for _ in range(self.rng.randint(lo, hi)) for c in self.emit(body)]
        if op is sre_c.SUBPATTERN:
            return self.emit(av[-1])
        if op is sre_c.BRANCH:
            return self.emit(self.rng.choice(av[1]))
        if op is sre_c.AT:
            return []
        raise ValueError(f"gitleaks_rules: regex operator {op} not generated")

    def charset(self, av):
        chars = []
        for op, v in av:
            if op is sre_c.LITERAL:
                chars.append(chr(v))
            elif op is sre_c.RANGE:
                chars.extend(chr(c) for c in range(v[0], v[1] + 1))
            elif op is sre_c.CATEGORY:
                chars.extend(CATEGORIES[v])
            else:
                raise ValueError(f"gitleaks_rules: class member {op} not generated")
        return chars


TOKEN = re.compile(r'\s+|//[^\n]*|"(?:[^"\\\n]|\\.)*"|`[^`]*`|[A-Za-z_][A-Za-z0-9_.]*|[(),+]')


def tokens(src):
    pos, out = 0, []
    while pos < len(src):
        m = TOKEN.match(src, pos)
        if not m:
            raise ValueError(f"gitleaks_rules: cannot read Go at {src[pos:pos + 40]!r}")
        t = m.group(0)
        pos = m.end()
        if not t.isspace() and not t.startswith("//"):
            out.append(t)
    return out


def go_string(t):
    if t[0] == "`":
        return t[1:-1]
    esc = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}
    return re.sub(r"\\(x[0-9a-fA-F]{2}|.)", lambda m: chr(int(m.group(1)[1:], 16)) if m.group(1)[0] == "x" else esc[m.group(1)], t[1:-1])


class Evaluator:
    """A recursive-descent reader of the sample expressions (a sum of terms; a term is a
    string literal, a variable or a call)."""

    def __init__(self, gen, env):
        self.gen, self.env = gen, env

    def exprs(self, toks):
        self.toks, self.i, out = toks, 0, []
        while self.i < len(self.toks):
            out.append(self.sum())
            if self.i < len(self.toks):
                self.expect(",")
        return out

    def expect(self, t):
        if self.toks[self.i] != t:
            raise ValueError(f"gitleaks_rules: expected {t!r}, found {self.toks[self.i]!r}")
        self.i += 1

    def sum(self):
        v = self.term()
        while self.i < len(self.toks) and self.toks[self.i] == "+":
            self.i += 1
            v += self.term()
        return v

    def term(self):
        t = self.toks[self.i]
        self.i += 1
        if t[0] in "\"`":
            return go_string(t)
        if t == "(":
            v = self.sum()
            self.expect(")")
            return v
        if self.i < len(self.toks) and self.toks[self.i] == "(":
            self.i += 1
            args = []
            while self.toks[self.i] != ")":
                args.append(self.sum())
                if self.toks[self.i] == ",":
                    self.i += 1
            self.i += 1
            return self.call(t, args)
        if t in self.env:
            return self.env[t]
        raise ValueError(f"gitleaks_rules: unknown name {t}")

    def call(self, name, args):
        if name == "generateSampleSecret":
            return f'{args[0]}_api_token = "{args[1]}"'
        if name == "secrets.NewSecret":
            return self.gen.generate(args[0])
        if name in HELPERS:
            return HELPERS[name] % args[0]
        if name == "hex8_4_4_4_12":
            return HEX8_4_4_4_12
        if name == "fmt.Sprintf":
            return args[0].replace("%s", "{}").format(*args[1:])
        raise ValueError(f"gitleaks_rules: unknown function {name}")


def block(src, start):
    """The text between the brace at `start` and its match (string literals skipped)."""
    depth, i = 0, start
    for m in re.finditer(r'"(?:[^"\\\n]|\\.)*"|`[^`]*`|//[^\n]*|[{}]', src[start:]):
        t = m.group(0)
        depth += (t == "{") - (t == "}")
        if depth == 0:
            return src[start + 1: start + m.start()]
    raise ValueError("gitleaks_rules: unbalanced braces")


def rule_samples(body, gen):
    rule_id = re.search(r'RuleID:\s*"([^"]+)"', body).group(1)
    env, out = {}, []
    for m in re.finditer(r"\n\t(\w+) :=\s*(\[\]string\{|)", body):
        name = m.group(1)
        if m.group(2):
            start = m.end() - 1
            items = Evaluator(gen, env).exprs(tokens(block(body, start)))
            kind = {"tps": "tp", "fps": "fp"}.get(name)
            if kind:
                out.extend((rule_id, kind, s) for s in items)
        elif name != "r":
            line = body[m.end():].split("\n", 1)[0]
            env[name] = Evaluator(gen, env).exprs(tokens(line))[0]
    return out


def samples(rules_dir, seed=20230315):
    gen = Generator(seed)
    out = []
    for path in sorted(glob.glob(os.path.join(rules_dir, "*.go"))):
        src = open(path, encoding="utf-8").read()
        for m in re.finditer(r"\nfunc \w+\(\) \*config\.Rule \{", src):
            body = block(src, m.end() - 1)
            if "validate(" in body:
                out.extend(rule_samples(body, gen))
    return out

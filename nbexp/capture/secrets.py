"""Scrub secrets before anything reaches the ledger.

Three rules, all in :func:`scrub_text`:

- a *value shaped like a credential* is replaced wherever it appears: private key blocks,
  AWS, GitHub, GitLab, OpenAI / Anthropic, Stripe, Google API, Slack (tokens and webhook
  URLs), Hugging Face, npm, PyPI, SendGrid keys, JWTs, bearer and basic auth headers, the
  password of a URL (``postgresql://user:[REDACTED]@host/db``) and of a connection string
  or query string (``...;Pwd=[REDACTED];``, ``?access_token=[REDACTED]``);
- a *name that looks secret* (password, token, secret, api_key, ...) hides the value given
  to it: ``NAME = "v"``, ``"name": "v"``, ``f(name="v")``, ``os.environ["NAME"] = "v"``,
  ``os.environ.setdefault("NAME", "v")``, ``%env NAME=v``, ``export NAME=v``; a name
  ending in *key* hides a value that looks like a key (32+ hex digits, or 20+ letters and
  digits mixing cases);
- a value once hidden by name (or found in an environment variable with a secret name) is
  *remembered* for the life of the process, and replaced wherever it shows up later: in an
  error message, a run name, a note, a data summary.

Code keeps its shape: only the secret text is replaced by :data:`REDACTED`. Detection is
by compiled regular expressions (a few hundred microseconds for a 200-line cell), not by
entropy: an opaque secret that is neither named nor shaped like a known credential (say a
password passed positionally to a function nbexp cannot see) is not found here; see
:func:`nbexp.capture.code.prepare` for positional arguments.
"""

from __future__ import annotations

import os
import re
import threading

REDACTED = "[REDACTED]"

_SECRET_NAME = re.compile(
    r"pass(?:word|wd|phrase)?(?![a-z])|pwd|secret|token(?!s|iz)|api[_-]?key|apikey|access[_-]?key|"
    r"private[_-]?key|secret[_-]?key|credential|auth(?!or)|\bpw\b|_pw\b",
    re.IGNORECASE,
)
# names that contain a secret word but name something else: tokenizer settings, counts
_NOT_SECRET_NAME = re.compile(
    r"(?:max|min|num|n|pad|bos|eos|unk|sep|cls|mask|start|end|stop|special|new|total)_?tokens?\b|"
    r"_?auth(?:ority|ored)",
    re.IGNORECASE,
)
# names ending in "key" (wandb.login(key=...), COMET_KEY, license_key): hidden when the value looks like a key
_KEY_NAME = re.compile(r"(?:^|[_.\-\s]|(?<=[a-z]))key$", re.IGNORECASE)
_KEY_VALUE = re.compile(r"[0-9a-fA-F]{32,}|(?=[\w+/=\-]*[0-9])(?=[\w+/=\-]*[a-z])(?=[\w+/=\-]*[A-Z])[\w+/=\-]{20,}")

# Credential shapes, after detect-secrets' plugins and gitleaks' rules (prefixes and lengths), each
# with the lowercase keywords one of which a line must hold for the pattern to run on it: Python's
# regex engine tries a pattern at every position, so a cell pays only for the lines that may hold one.
_LINE_RULES: list[tuple[tuple[str, ...], str]] = [
    (("akia", "asia"), r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),  # AWS access key id
    (("ghp_", "gho_", "ghu_", "ghs_", "ghr_"), r"\bgh[pousr]_[A-Za-z0-9_]{30,}\b"),  # GitHub tokens
    (("github_pat_",), r"\bgithub_pat_[A-Za-z0-9_]{22,}\b"),
    (
        ("glpat-", "gldt-", "glft-", "glrt-", "glsoat-", "glcbt-", "glptt-", "glagent-", "gloas-"),
        r"\bgl(?:pat|dt|ft|rt|soat|cbt|ptt|agent|oas)-[A-Za-z0-9_\-]{20,}",
    ),  # GitLab tokens
    (("sk-",), r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_\-]{20,}"),  # OpenAI / Anthropic style
    (("k_live_", "k_test_", "k_prod_"), r"\b[rs]k_(?:live|test|prod)_[A-Za-z0-9]{10,}"),  # Stripe
    (("whsec_",), r"\bwhsec_[A-Za-z0-9]{24,}"),  # Stripe webhook secret
    (("aiza",), r"\bAIza[0-9A-Za-z_\-]{35}"),  # Google API key
    (("xox", "xapp-"), r"\bxox[abposre]-[A-Za-z0-9\-]{10,}|\bxapp-[A-Za-z0-9\-]{10,}"),  # Slack tokens
    (("hooks.slack.com",), r"https?://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9_/\-]+"),
    (("hf_",), r"\bhf_[A-Za-z0-9]{30,}\b"),  # Hugging Face
    (("npm_",), r"\bnpm_[A-Za-z0-9]{36}\b"),  # npm
    (("pypi-",), r"\bpypi-AgE[A-Za-z0-9_\-]{50,}"),  # PyPI upload tokens
    (("sg.",), r"\bSG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43}\b"),  # SendGrid
    (("eyj",), r"\beyJ[A-Za-z0-9_\-]{10,}\.eyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]*"),  # JWT
    (("bearer",), r"(?i:\bbearer)\s+[A-Za-z0-9\-._~+/]{16,}=*"),  # bearer tokens
    (("basic",), r"(?i:\bbasic)\s+[A-Za-z0-9+/]{16,}={0,2}"),  # basic auth header
]
_LINE_PATTERNS = [re.compile(p) for _, p in _LINE_RULES]
# the password of a URL (scheme://user:PASSWORD@host): the rest of the URL stays
_URL_PASSWORD = re.compile(r"(?P<url>\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/?#@'\"]*:)(?P<pw>[^\s/?#'\"]+)@")
# a secret-named field of a query or connection string (?access_token=X&, ;Pwd=X;): only the value
_FIELD = re.compile(r"(?P<field>[?&;](?P<fname>[A-Za-z_][\w.\-]*)=)(?P<fval>[^\s&;'\"#]+)")
# whole-text shapes: a private key block spans lines; an AWS secret access key is 40 base64
# characters in quotes (with mixed case and digits: see _aws_secret), too common a shape to key on
_PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----")
_AWS_SECRET = re.compile(r"(?P<q>['\"])(?P<v>[A-Za-z0-9/+]{40})['\"]")
# words one of which a secret name holds: the name rules run on the lines that hold one
_NAME_WORDS = ("pass", "pwd", "pw", "secret", "token", "key", "credential", "auth")
_NAME_RULE = len(_LINE_RULES)
# (keywords, rule) of every rule: a line holding a keyword is scrubbed by its rule (-1: a password in a URL)
_KEYWORDS: list[tuple[tuple[str, ...], int]] = [
    *((words, i) for i, (words, _) in enumerate(_LINE_RULES)),
    (("://",), -1),
    (_NAME_WORDS, _NAME_RULE),
]


def _trie(words: list[str]) -> str:
    """A regex matching any of ``words``, factored by their common prefixes (``a(?:iza|kia|uth)``): Python's
    regex engine tries each alternative of a flat ``aiza|akia|auth`` at every position, this one the first
    character's branch alone (a 50-line cell: 36 us -> 18 us)."""
    groups: dict[str, list[str]] = {}
    for w in words:
        if w:
            groups.setdefault(w[0], []).append(w[1:])
    alts = [re.escape(c) + _trie(rest) for c, rest in sorted(groups.items())]
    if not alts:
        return ""
    body = alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"
    return f"(?:{body})?" if "" in words else body


# any keyword at all: the lines worth a look (see _lines_to_scrub)
_ANY_WORD = re.compile(_trie(sorted({w for words, _ in _KEYWORDS for w in words})))

# NAME = "v" / NAME: str = "v" / "name": "v" / name="v" / ["name"] = "v" / ("name", "v")
_QUOTED = r"""(?P<q>[rbuRBU]?[fF]?[rR]?(?P<qc>["']))(?P<val>(?:\\.|(?!(?P=qc))[^\\\n])*)(?P=qc)"""
_ASSIGNED = re.compile(
    r"""(?P<lhs>(?:(?P<name>[A-Za-z_][\w.]*)(?:\s*:\s*[A-Za-z_][\w.\[\], |]*?)?"""
    r"""|(?P<qname>["'][^"'\n]+["'])\]?)\s*[=:]\s*"""
    r"""|\(\s*(?P<aname>["'][^"'\n]+["'])\s*,\s*)""" + _QUOTED
)
# %env NAME=v, %set_env NAME v, export NAME=v (shell cells, .env text)
_ENV_LINE = re.compile(r"(?P<lhs>(?:%(?:set_)?env|\bexport)\s+(?P<name>[A-Za-z_]\w*)(?:=|\s+))(?P<val>[^\s;]+)")

MIN_REMEMBERED = 6  # shorter values are too common words to hide everywhere
MAX_REMEMBERED = 512

_lock = threading.Lock()
_remembered: dict[str, None] = {}  # insertion-ordered set
_remembered_re: re.Pattern | None = None
_generation = 0
_env_scanned = False
_PLAIN = re.compile(r"[A-Za-z_]+|[\d.,:\-]+|[A-Za-z_]+://[\w.\-]*")  # words, numbers: kept, or code breaks


def is_secret_name(name: str) -> bool:
    """True when ``name`` (a param key, variable, column or dict key) looks like a secret.

    Example:
        >>> is_secret_name("DB_PASSWORD"), is_secret_name("max_tokens"), is_secret_name("author")
        (True, False, False)
    """
    return bool(_SECRET_NAME.search(name)) and not _NOT_SECRET_NAME.search(name)


def _key_like(name: str, value: str) -> bool:
    return bool(_KEY_NAME.search(name)) and bool(_KEY_VALUE.fullmatch(value))


def remember(value: str) -> None:
    """Hide ``value`` wherever it appears from now on (a secret found by its name)."""
    global _remembered_re, _generation
    value = value.strip()
    if (
        len(value) < MIN_REMEMBERED
        or value in _remembered
        or REDACTED in value
        or len(set(value)) < 3
        or _PLAIN.fullmatch(value)
    ):
        return
    with _lock:
        _generation += 1
        _remembered[value] = None
        while len(_remembered) > MAX_REMEMBERED:
            _remembered.pop(next(iter(_remembered)))
        alternatives = "|".join(re.escape(v) for v in sorted(_remembered, key=len, reverse=True))
        _remembered_re = re.compile(rf"(?<![\w\-])(?:{alternatives})(?![\w\-])")


def generation() -> int:
    """Changes whenever a value is remembered: part of the key of cached scrubbed texts."""
    return _generation


def _scan_environment() -> None:
    """Remember the values of environment variables with secret names (``GITHUB_TOKEN``...): a
    token read with ``os.environ`` and echoed by an error message is hidden there too."""
    global _env_scanned
    _env_scanned = True
    for name, value in list(os.environ.items()):
        if name in ("PWD", "OLDPWD") or len(value) < 8 or value.startswith(("/", "~", ".")) or "\n" in value:
            continue
        if is_secret_name(name):
            remember(value)


def _url_password(m: re.Match) -> str:
    return f"{m.group('url')}{REDACTED}@"


def _field(m: re.Match) -> str:
    return f"{m.group('field')}{REDACTED}" if is_secret_name(m.group("fname")) else m.group(0)


def _aws_secret(m: re.Match) -> str:
    v = m.group("v")
    if v.lower() == v or v.upper() == v or not any(c.isdigit() for c in v):
        return m.group(0)  # not mixed case and digits: a hex hash, a word
    return f"{m.group('q')}{REDACTED}{m.group('q')}"


def _hide(m: re.Match) -> str:
    name = (m.group("name") or m.group("qname") or m.group("aname")).strip("\"'")
    val = m.group("val")
    if not val or val == REDACTED:
        return m.group(0)
    if not is_secret_name(name.rsplit(".", 1)[-1] if m.group("name") else name) and not _key_like(name, val):
        return m.group(0)
    remember(val)
    qc = m.group("qc")
    return f"{m.group('lhs')}{m.group('q')[:-1]}{qc}{REDACTED}{qc}"


def _hide_env(m: re.Match) -> str:
    val = m.group("val").strip("\"'")
    if not val or REDACTED in val or not (is_secret_name(m.group("name")) or _key_like(m.group("name"), val)):
        return m.group(0)
    remember(val)
    return f"{m.group('lhs')}{REDACTED}"


def scrub_text(text: str) -> str:
    """Replace secrets in free text or code, keeping its shape (see the module docstring).

    Example:
        >>> scrub_text('API_KEY = "abc123"  # key')
        'API_KEY = "[REDACTED]"  # key'
        >>> scrub_text("engine = create_engine('postgresql://me:pw@db/sales')")
        "engine = create_engine('postgresql://me:[REDACTED]@db/sales')"
    """
    if not text:
        return text
    if not _env_scanned:
        _scan_environment()
    low = _lower(text)
    if "private key" in low:
        text = _PRIVATE_KEY.sub(REDACTED, text)
        low = _lower(text)
    lines = _lines_to_scrub(low)
    if lines:
        out, at = [], 0
        for start in sorted(lines):
            end, rules = lines[start]
            out += [text[at:start], _scrub_line(text[start:end], rules)]
            at = end
        out.append(text[at:])
        text = "".join(out)
    if "'" in text or '"' in text:
        text = _AWS_SECRET.sub(_aws_secret, text)
    pattern = _remembered_re
    if pattern is not None:
        text = pattern.sub(REDACTED, text)
    return text


def _lower(text: str) -> str:
    """``text`` lowercased character by character, as long as ``text``: the lines found in it are cut from
    ``text`` by the same offsets (``"İ".lower()`` is two characters, which shifted every line after it, and a
    password on such a line was left as it was)."""
    low = text.lower()
    if len(low) == len(text):
        return low
    return "".join(c if len(c.lower()) != 1 else c.lower() for c in text)


def _lines_to_scrub(low: str) -> dict[int, tuple[int, set[int]]]:
    """``{line start: (line end, rules)}`` for the lines of ``low`` holding a rule's keyword: one scan for any
    keyword finds the lines (every line holding one has a match at or before it), then each is read for which
    (most lines of code hold none: a 50-line cell 48 us -> 18 us, a run's name 15 us -> 1 us)."""
    lines: dict[int, tuple[int, set[int]]] = {}
    found = _ANY_WORD.search(low)
    while found is not None:
        start = low.rfind("\n", 0, found.start()) + 1
        end = low.find("\n", found.start())
        end = len(low) if end == -1 else end
        line = low[start:end]
        lines[start] = (end, {rule for words, rule in _KEYWORDS if any(word in line for word in words)})
        found = _ANY_WORD.search(low, end)
    return lines


def _scrub_line(line: str, rules: set[int]) -> str:
    for i in sorted(rules):
        if i == -1:
            line = _URL_PASSWORD.sub(_url_password, line)
        elif i == _NAME_RULE:
            if "=" in line:
                line = _FIELD.sub(_field, line)
            line = _ASSIGNED.sub(_hide, line)
            if "env" in line or "export" in line:
                line = _ENV_LINE.sub(_hide_env, line)
        else:
            line = _LINE_PATTERNS[i].sub(REDACTED, line)
    return line


def scrub_value(key: str, value):
    """A param value with secrets hidden: by its key's name, or by its text."""
    if is_secret_name(key.rsplit(".", 1)[-1]):
        if isinstance(value, str):
            remember(value)
        return REDACTED
    if isinstance(value, str):
        if _key_like(key.rsplit(".", 1)[-1], value):
            remember(value)
            return REDACTED
        return scrub_text(value)
    return value

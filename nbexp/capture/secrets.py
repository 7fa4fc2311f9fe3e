"""Scrub secrets before anything reaches the ledger.

Two rules: a *name* that looks secret (password, token, secret, api_key, ...)
hides its value, and a *value* shaped like a credential (AWS, GitHub, OpenAI,
Slack keys, bearer tokens, private key blocks) is replaced wherever it appears.
Code keeps its shape: only the secret text is replaced by :data:`REDACTED`.
"""

from __future__ import annotations

import re

REDACTED = "[REDACTED]"

SECRET_NAME = re.compile(
    r"(pass(word|wd|phrase)?|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|"
    r"private[_-]?key|credential|auth)",
    re.IGNORECASE,
)

_VALUE_PATTERNS = [
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----",
    r"\b(AKIA|ASIA)[0-9A-Z]{16}\b",                      # AWS access key id
    r"\bgh[pousr]_[A-Za-z0-9]{30,}\b",                   # GitHub tokens
    r"\bgithub_pat_[A-Za-z0-9_]{22,}\b",
    r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_\-]{20,}",          # OpenAI / Anthropic style
    r"\bxox[abposr]-[A-Za-z0-9\-]{10,}",                 # Slack
    r"\bhf_[A-Za-z0-9]{30,}\b",                          # Hugging Face
    r"(?i:\bbearer)\s+[A-Za-z0-9\-._~+/]{16,}=*",       # bearer tokens
    # AWS secret access key: 40 base64 characters in quotes, mixed case and digits
    r"(?<=['\"])(?=[A-Za-z0-9/+]{0,39}[A-Z])(?=[A-Za-z0-9/+]{0,39}[a-z])"
    r"(?=[A-Za-z0-9/+]{0,39}[0-9])[A-Za-z0-9/+]{40}(?=['\"])",
]
SECRET_VALUE = re.compile("|".join(f"(?:{p})" for p in _VALUE_PATTERNS))

# NAME = "value"  /  "name": "value"  /  name="value" (keyword argument)
_ASSIGNED = re.compile(
    r"""(?P<lhs>(?P<name>[A-Za-z_][\w.]*|["'][^"'\n]+["'])\s*[=:]\s*)"""
    r"""(?P<q>[rbuf]?["'])(?P<val>[^"'\n]*)["']"""
)


def is_secret_name(name: str) -> bool:
    """True when ``name`` (a param key, variable or dict key) looks like a secret."""
    return bool(SECRET_NAME.search(name))


def scrub_text(text: str) -> str:
    """Replace secrets in free text or code, keeping its shape.

    Example:
        >>> scrub_text('API_KEY = "abc123"  # key')
        'API_KEY = "[REDACTED]"  # key'
    """
    if not text:
        return text
    text = SECRET_VALUE.sub(REDACTED, text)

    def _hide(m: re.Match) -> str:
        name = m.group("name").strip("\"'")
        if is_secret_name(name) and m.group("val"):
            quote = m.group("q")[-1]
            return f"{m.group('lhs')}{m.group('q')[:-1]}{quote}{REDACTED}{quote}"
        return m.group(0)

    return _ASSIGNED.sub(_hide, text)


def scrub_value(key: str, value):
    """A param value with secrets hidden: by its key's name, or by its text."""
    if is_secret_name(key.rsplit(".", 1)[-1]):
        return REDACTED
    if isinstance(value, str):
        return scrub_text(value)
    return value

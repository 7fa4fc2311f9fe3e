"""Secrets never reach the ledger (DESIGN.md "Security")."""

from __future__ import annotations

from pathlib import Path

import pytest

from nbexp.capture.secrets import scrub_text

PLANTED = {
    "openai": "sk-proj-Zq8vW2mXyT4uB7nK1pL0rS5dF3gH6jQa",
    "aws_id": "AKIAIOSFODNN7EXAMPLQ",
    "aws_secret": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKQZ",
    "github": "ghp_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8",
    "password": "hunter2-correct-horse",
    "bearer": "eyJhbGciOiJIUzI1NiJ9.payload.signature1234",
    "hf": "hf_abcdefghijklmnopqrstuvwxyzABCDEFGH",
}


def test_planted_secrets_absent_from_every_byte(cell, ledger_path):
    cell("%nbexp track")
    cell(f'OPENAI_KEY = "{PLANTED["openai"]}"\nDB_PASSWORD = "{PLANTED["password"]}"\n'
         f'aws = {{"id": "{PLANTED["aws_id"]}", "secret_access_key": "{PLANTED["aws_secret"]}"}}\n'
         f'headers = {{"Authorization": "Bearer {PLANTED["bearer"]}"}}\nlr = 0.1')
    cell(f'token_value = "{PLANTED["github"]}"\nhub = "{PLANTED["hf"]}"')
    cell(f'raise ValueError("bad key {PLANTED["openai"]}")')
    cell(f'%nbexp note using {PLANTED["github"]}')
    cell(f"%nbexp param api_key={PLANTED['hf']}")
    cell("%nbexp stop")
    raw = b"".join(p.read_bytes() for p in Path(ledger_path).parent.iterdir() if p.is_file())
    for name, secret in PLANTED.items():
        assert secret.encode() not in raw, name
    assert b"lr = 0.1" in raw and b"[REDACTED]" in raw         # code kept its shape


@pytest.mark.parametrize("text, expected", [
    ('API_KEY = "abc"', 'API_KEY = "[REDACTED]"'),
    ("connect(password='pw', host='db')", "connect(password='[REDACTED]', host='db')"),
    ('{"token": "t0k"}', '{"token": "[REDACTED]"}'),
    ('n_layers = 3\nname = "bob"', 'n_layers = 3\nname = "bob"'),
    ('sha = "0123456789abcdef0123456789abcdef01234567"', 'sha = "0123456789abcdef0123456789abcdef01234567"'),
])
def test_scrub_text_keeps_shape(text, expected):
    assert scrub_text(text) == expected

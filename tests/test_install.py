"""Install files agree with the code: `.env` stays out of git, and the README's configuration
table, `.env.example` and the settings classes name the same variables with the same defaults,
so none of the three can drift from the others."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from kernel.settings import Settings, WebSettings

ROOT = Path(__file__).resolve().parents[1]

# Defaults that depend on the machine: the README describes them in words.
_MACHINE_DEFAULTS = {"ARTMATCH_HOME"}


def _settings_defaults() -> dict[str, Any]:
    """ARTMATCH_* variable -> the code's default, from the settings classes themselves."""
    found: dict[str, Any] = {}

    def walk(model: BaseModel, prefix: str) -> None:
        for name in type(model).model_fields:
            value = getattr(model, name)
            if isinstance(value, BaseModel):
                walk(value, f"{prefix}{name.upper()}__")
            else:
                found[prefix + name.upper()] = value

    walk(Settings(_env_file=None), "ARTMATCH_")  # type: ignore[call-arg]
    walk(WebSettings(_env_file=None), "ARTMATCH_WEB_")  # type: ignore[call-arg]
    return found


def _readme_table() -> dict[str, str | None]:
    """Variable -> its default in the README's configuration table (None: said in words)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, str | None] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[0].startswith("`ARTMATCH_"):
            continue
        names = re.findall(r"`([^`]+)`", cells[0])
        # "`ARTMATCH_STORAGE__S3_ENDPOINT`, `..._S3_BUCKET`": the first name's group prefix.
        group = names[0].rsplit("__", 1)[0] + "_" if "__" in names[0] else "ARTMATCH"
        literal = re.fullmatch(r"`([^`]*)`(?:\s*\(.*\))?", cells[1])
        for name in names:
            full = group + name[3:] if name.startswith("...") else name
            rows[full] = literal.group(1) if literal and len(names) == 1 else None
    return rows


def _env_example() -> dict[str, str]:
    """Variable -> value in `.env.example`, set or commented out (``# NAME=value``)."""
    found = {}
    for line in (ROOT / ".env.example").read_text(encoding="utf-8").splitlines():
        m = re.fullmatch(r"#?\s*(ARTMATCH_[A-Z0-9_]+)=(.*)", line.strip())
        if m:
            found[m.group(1)] = m.group(2).strip()
    return found


def _same(text: str, default: Any) -> bool:
    if isinstance(default, bool):
        return text.lower() == str(default).lower()
    if isinstance(default, int | float):
        try:
            return float(text) == float(default)
        except ValueError:
            return False
    if isinstance(default, tuple | list):
        try:
            return json.loads(text) == list(default)
        except ValueError:
            return False
    return text == str(default)


def test_dotenv_is_ignored_by_git_and_its_example_is_not() -> None:
    patterns = {
        line.strip()
        for line in (ROOT / ".gitignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert ".env" in patterns
    assert not any(p.startswith(".env.") or p == ".env*" for p in patterns)


def test_readme_env_example_and_settings_name_the_same_variables() -> None:
    code, readme, example = set(_settings_defaults()), set(_readme_table()), set(_env_example())
    assert code - readme == set(), "settings missing from the README's configuration table"
    assert readme - code == set(), "README configuration rows no setting reads"
    assert code - example == set(), "settings missing from .env.example"
    assert example - code == set(), ".env.example variables no setting reads"


def test_readme_and_env_example_state_the_code_defaults() -> None:
    defaults, readme, example = _settings_defaults(), _readme_table(), _env_example()
    for name, default in defaults.items():
        if name in _MACHINE_DEFAULTS:
            continue
        if default is None:
            # Unset by default ("a SQLite file in ARTMATCH_HOME"): both describe it in words.
            continue
        stated = readme.get(name)
        if stated is not None:
            assert _same(stated, default), (name, stated, default)
        value = example.get(name, "")
        secret = getattr(default, "get_secret_value", None)
        assert _same(value, secret() if secret else default), (name, value, default)

"""A provider settings file with a YAML error names the file, line and column, never the
text of the line, which may hold a password (issue 10, item 10)."""

from __future__ import annotations

import pytest

from terrapipe.cli.main import main

PASSWORD = "S3cr3t-Pa55w0rd"

BROKEN = {
    "unclosed flow": (
        f"'https://data.example.org/':\n  username: alice\n  password: {PASSWORD}\n"
        "  headers: {X-Api-Key: K3y-Value-987\n",
        5,
    ),
    "text after a quoted value": (
        f"'https://data.example.org/':\n  username: alice\n  password: \"{PASSWORD}\" x\n",
        3,
    ),
    "a tab": (f"'https://data.example.org/':\n  username: alice\n\tpassword: {PASSWORD}\n", 3),
    "an alias": (f"'https://data.example.org/':\n  password: *{PASSWORD}\n", 2),
    "a tag": (f"'https://data.example.org/':\n  password: !vault {PASSWORD}\n", 2),
}


def _run(argv: list[str], capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as info:
        main(argv)
    out, err = capsys.readouterr()
    return info.value.code, out + err


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_settings_file_names_file_and_line_not_the_password(case, tmp_path, capsys):
    text, line = BROKEN[case]
    path = tmp_path / "providers.yml"
    path.write_text(text)
    code, output = _run(["download", "-d", str(tmp_path / "dl"), "-c", str(path)], capsys)
    assert code == 2
    assert PASSWORD not in output and "K3y-Value-987" not in output
    assert str(path) in output and f"line {line}," in output and "column" in output
    assert "Traceback" not in output

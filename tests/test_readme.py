"""The README and docs/ as a newcomer meets them: the walk-through runs as written, every relative
link leads to a file (and heading) that exists, every command shown names the settings it needs."""
from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT

README = PROJECT_ROOT / "README.md"
DOCS = sorted((PROJECT_ROOT / "docs").glob("*.md"))
WALK_THROUGH_PORT = "5000"


def walk_through() -> str:
    """The fenced bash block under the README's "Walk-through" heading."""
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Walk-through\n", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```bash\n(.*?)```", section, re.S)
    assert match, "the README's Walk-through section has no ```bash block"
    return match.group(1)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.integration
def test_the_walk_through_runs_as_written(tmp_path):
    # As written, but for moto_server's port (a free one, so that parallel runs do not collide),
    # in a folder of its own holding the project's data/ and docs/, so that out/ is the test's.
    script = walk_through()
    assert f"-p {WALK_THROUGH_PORT}" in script and f"127.0.0.1:{WALK_THROUGH_PORT}" in script
    script = script.replace(WALK_THROUGH_PORT, str(_free_port()))
    for folder in ("data", "docs"):
        (tmp_path / folder).symlink_to(PROJECT_ROOT / folder)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "NOVA_", "MOTO_"))}
    env.update({"PYTHONPATH": str(PROJECT_ROOT), "AWS_CONFIG_FILE": os.devnull,
                "AWS_SHARED_CREDENTIALS_FILE": os.devnull, "AWS_EC2_METADATA_DISABLED": "true",
                "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"})
    process = subprocess.Popen(["bash", "-e", "-o", "pipefail", "-c", script], cwd=tmp_path, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = process.communicate(timeout=300)
    finally:
        try:
            os.killpg(process.pid, signal.SIGTERM)  # moto_server, if the block stopped before `kill %1`
        except ProcessLookupError:
            pass
    assert process.returncode == 0, f"stdout:\n{out}\nstderr:\n{err}"

    walk = tmp_path / "out" / "walk"
    assert (walk / "prepared" / "train" / "train.jsonl").is_file()
    assert "execution_accuracy: 0.5000 (5/10" in out and "lenient_execution_accuracy: 0.7000" in out
    assert "answer_accuracy: 0.8000" in out, "the figures the README's comment gives"
    assert "written to out/walk/definition.json" in err and "next: the same command without --dry-run" in err
    assert "created (no pipeline of this name was deployed)" in out
    assert re.search(r"^started arn:aws:sagemaker:us-east-1:123456789012:pipeline/nova-finqa-sft/execution/\S+$",
                     out, re.M)
    assert "| run 1 | 20 | 50.0% | 5/10 |" in (walk / "report" / "accuracy_report.md").read_text()


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, markup and punctuation dropped, spaces as '-'."""
    text = re.sub(r"[`*_]|\[|\]\([^)]*\)", "", heading.strip()).lower()
    text = "".join(c for c in text if c in " -" or unicodedata.category(c)[0] in "LN")
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
    anchors: set[str] = set()
    for heading in re.findall(r"^#{1,6} (.+)$", text, re.M):
        slug, n = _slug(heading), 1
        while slug in anchors:
            slug, n = f"{_slug(heading)}-{n}", n + 1
        anchors.add(slug)
    return anchors


def _relative_links(path: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
    targets = re.findall(r"\]\(([^)\s]+)\)", text)
    return [t for t in targets if not re.match(r"^[a-z][a-z0-9+.-]*:", t)]


@pytest.mark.parametrize("page", [README, *DOCS], ids=lambda p: p.relative_to(PROJECT_ROOT).as_posix())
def test_every_relative_link_leads_to_a_file_and_heading_that_exist(page):
    broken = []
    for link in _relative_links(page):
        target, _, anchor = link.partition("#")
        resolved = (page.parent / target).resolve() if target else page
        if not resolved.exists():
            broken.append(f"{link}: no such file")
        elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
            broken.append(f"{link}: no heading #{anchor} in {resolved.name}")
    assert not broken, f"{page.name}: " + "; ".join(broken)


def test_the_readme_is_read_in_five_minutes_and_links_every_page():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) < 200
    linked = {link.partition("#")[0] for link in _relative_links(README)}
    assert not [p.name for p in DOCS if f"docs/{p.name}" not in linked], "a docs/ page the README does not link"


def _documented_commands(module: str) -> list[list[str]]:
    """The arguments of each `python -m MODULE ...` line in a fenced block of the README or docs/."""
    commands = []
    for page in (README, *DOCS):
        for block in re.findall(r"```(?:bash|sh)?\n(.*?)```", page.read_text(encoding="utf-8"), re.S):
            for line in block.replace("\\\n", " ").splitlines():
                segment: list[str] = []
                for word in [*shlex.split(line, comments=True), "&&"]:
                    if word not in ("&&", ";", "|", "&"):
                        segment.append(word)
                        continue
                    if segment[:3] == ["python", "-m", module]:
                        commands.append(segment[3:])
                    segment = []
    return commands


@pytest.mark.parametrize("module", ["pipeline.upsert", "scripts.deploy_approval_hook"])
def test_every_command_shown_gives_the_settings_it_requires(module):
    # The README once showed `python -m scripts.deploy_approval_hook` bare; it fails with
    # "missing setting: --bucket". A command shown must run as shown (environment aside for the
    # region, which a shell usually has).
    from pipeline.settings import Settings, SettingsError

    command = __import__(module, fromlist=["build_parser"])
    parser, required = command.build_parser(), command.REQUIRED_SETTINGS
    commands = _documented_commands(module)
    assert commands, f"no `python -m {module}` in the README or docs/"
    for arguments in commands:
        try:
            Settings.resolve(parser.parse_args(arguments), environ={"AWS_REGION": "us-east-1"}, required=required)
        except SettingsError as error:
            assert "missing setting" not in str(error), f"`python -m {module} {shlex.join(arguments)}`: {error}"

"""Security review finding 7: CI's OIDC token only where it is used, and Actions pinned by commit.

GitHub gives a job an OIDC token only with `id-token: write`; a pull request's code runs in the
test job, so that job must not hold it. The deploy job runs in the `production` environment,
whose token subject is `repo:OWNER/REPO:environment:production`: the role's trust policy names
that, and the workflow says so. An action referenced by tag runs whatever the tag points at
today; a commit SHA does not move.
"""
from __future__ import annotations

import re

import yaml

from tests.conftest import PROJECT_ROOT

WORKFLOW = PROJECT_ROOT / ".github" / "workflows" / "pipeline.yml"
USES = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<action>[^@\s]+)@(?P<ref>\S+)(?P<comment>.*)$")


def _workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))


def _deploy_jobs(workflow: dict) -> set[str]:
    """The jobs that assume an AWS role."""
    return {name for name, job in workflow["jobs"].items()
            if any("configure-aws-credentials" in str(step.get("uses", "")) for step in job.get("steps", []))}


def test_only_the_deploy_job_may_ask_for_an_oidc_token():
    workflow = _workflow()
    assert "id-token" not in (workflow.get("permissions") or {}), "id-token at the workflow level reaches every job"
    deploy = _deploy_jobs(workflow)
    assert deploy == {"upsert"}
    for name, job in workflow["jobs"].items():
        permissions = job.get("permissions") or {}
        if name in deploy:
            assert permissions.get("id-token") == "write", name
            assert job.get("environment") == "production"
            assert job.get("if") and "refs/heads/main" in job["if"] and "push" in job["if"]
        else:
            assert "id-token" not in permissions, f"job {name} runs pull-request code and must not get the token"


def test_the_trust_policy_subject_for_the_environment_is_documented():
    text = WORKFLOW.read_text(encoding="utf-8")
    assert "repo:OWNER/REPO:environment:production" in text
    header = text.split("name: pipeline")[0]
    assert "refs/heads/main" not in header, "the token of a job with an environment has no ref subject"
    docs = (PROJECT_ROOT / "docs" / "security.md").read_text(encoding="utf-8")
    assert "repo:OWNER/REPO:environment:production" in docs


def test_every_action_is_pinned_by_commit_with_its_tag_named():
    uses = [USES.match(line) for line in WORKFLOW.read_text(encoding="utf-8").splitlines()]
    uses = [match for match in uses if match]
    assert len(uses) >= 4
    for match in uses:
        assert re.fullmatch(r"[0-9a-f]{40}", match["ref"]), f"{match['action']}@{match['ref']} is not a commit SHA"
        assert re.search(r"#\s*v\d+(\.\d+){2}\b", match["comment"]), f"{match['action']}: name the release tag"

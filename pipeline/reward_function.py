"""The RFT reward Lambda: its name and ARN (which the RFT recipe holds), and its deployment.

`pipeline.upsert` deploys it for a reinforcement fine-tuning recipe, each time to the same end
state (a second run changes nothing that is already right), reusing the approval hook's
pieces (`scripts.deploy_approval_hook.Deployer`, `scripts.lambda_bundle`):
- the role `<group>-rft-reward`, which only Lambda can assume and which may only write the
  function's own logs (scripts/policies/reward_function_*.json): the reward reads and calls
  nothing;
- the log group, with a retention period;
- the function `SageMaker-<group>-reward` running `steps.reward.lambda_handler` from a
  deterministic zip of `steps/`, redeployed only when that code changed. The name carries
  "SageMaker": AWS's RFT tooling requires it of reward functions on HyperPod
  (aws/nova-forge-sdk, `validate_rft_lambda_name`) and its RFT evaluation sample of every
  reward function, so the same function serves wherever a user takes the recipe;
- a statement in the function's resource policy that lets the pipeline's role (`--role-arn`,
  which the training job runs as) invoke it. AWS's RFT pages ask for `lambda:InvokeFunction`
  for the SageMaker execution role; within one account the function's own policy grants it,
  so the user's role needs no change.

The ARN is known before anything is deployed: the function lives in the pipeline role's
account and the pipeline's region, so a dry run can render the recipe with it.
"""
from __future__ import annotations

import hashlib
import json
import sys

from pipeline.settings import Settings
from scripts.aws import found
from scripts.deploy_approval_hook import Deployer, _bounded, render_policy
from scripts.lambda_bundle import REWARD_HANDLER, reward_zip
from steps.open_weights_models import pipeline_is_open_weights
from steps.reward import CONTRACT_VARIABLE, NOVA, OPEN_WEIGHTS

RUNTIME = "python3.13"
TIMEOUT_SECONDS = 300
"""AWS allows a reward function 15 minutes and asks for seconds; AWS's own RFT tooling deploys
reward functions with 300 s (aws/nova-forge-sdk, `deploy_lambda`). A batch of 1,000 FinQA
samples takes a tenth of a second (bench/bench_reward.py)."""
MEMORY_MB = 512
"""Lambda gives CPU in proportion to memory, and the training job's rollouts wait for rewards."""


class RewardFunctionError(RuntimeError):
    """The reward function cannot be the one the recipe names; the message says why."""


def function_name(settings: Settings) -> str:
    return _bounded(f"SageMaker-{settings.model_package_group}-reward")


def role_name(settings: Settings) -> str:
    return _bounded(f"{settings.model_package_group}-rft-reward")


def function_arn(settings: Settings) -> str:
    """The reward function's ARN, from the pipeline role's partition and account."""
    _, partition, _, _, account, _ = settings.role_arn.split(":", 5)
    return f"arn:{partition}:lambda:{settings.region}:{account}:function:{function_name(settings)}"


def reward_contract(settings: Settings) -> str:
    """The contract the training job expects of the reward (steps/reward.py): open-weights
    models' `{statusCode, body}` when the pipeline customizes an open-weights model, else Nova's."""
    return OPEN_WEIGHTS if pipeline_is_open_weights(settings) else NOVA


def deploy(session, settings: Settings, out=None) -> str:
    """Create or update the reward function and what it needs, saying what changed on `out`
    (standard output by default); its ARN."""
    deployer = Deployer(session, settings, out=out or sys.stdout)
    _, partition, _, _, account, _ = settings.role_arn.split(":", 5)
    caller = deployer.sts.get_caller_identity()["Account"]
    if caller != account:
        raise RewardFunctionError(
            f"--role-arn {settings.role_arn} is in account {account}, but these credentials are of account "
            f"{caller}: the recipe names the reward function in the role's account; deploy with credentials of it")
    name = function_name(settings)
    values = {"Partition": partition, "Region": settings.region, "AccountId": account, "FunctionName": name}
    role_arn = deployer.ensure_role(role_name(settings), render_policy("reward_function_trust.json", values),
                                    render_policy("reward_function_permissions.json", values),
                                    "Runs the FinQA reward function of Nova reinforcement fine-tuning")
    deployer.ensure_log_group(f"/aws/lambda/{name}")
    arn = deployer.ensure_function(name, reward_zip(), {
        "Role": role_arn, "Handler": REWARD_HANDLER, "Runtime": RUNTIME, "Timeout": TIMEOUT_SECONDS,
        "MemorySize": MEMORY_MB, "Environment": {"Variables": {CONTRACT_VARIABLE: reward_contract(settings)}},
        "Description": "Scores FinQA responses for reinforcement fine-tuning (steps.reward)"})
    if arn != function_arn(settings):
        raise RewardFunctionError(f"the reward function is {arn}, but the recipe names {function_arn(settings)}")
    _allow_invocation(deployer, name, settings.role_arn)
    return arn


def _allow_invocation(deployer: Deployer, name: str, role_arn: str) -> None:
    # One statement per pipeline role, never replaced: pipelines with other roles may share the function.
    statement_id = "pipeline-role-" + hashlib.sha256(role_arn.encode()).hexdigest()[:16]
    existing = found(deployer.lambda_.get_policy, FunctionName=name)
    policy = json.loads(existing["Policy"]) if existing else {"Statement": []}
    if any(statement.get("Sid") == statement_id for statement in policy["Statement"]):
        return
    deployer.lambda_.add_permission(FunctionName=name, StatementId=statement_id, Action="lambda:InvokeFunction",
                                    Principal=role_arn)
    deployer.say(f"allowed {role_arn} to invoke Lambda {name}")

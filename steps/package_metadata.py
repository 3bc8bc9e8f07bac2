"""The keys of a registered model package's CustomerMetadataProperties, named once.

The pipeline's RegisterModel step writes them (`pipeline.definition`); the operator's tools
read them (`scripts.report`, `scripts.import_to_bedrock`, which the approval hook runs), and
the Bedrock import writes its progress under its own keys. Values are text: botocore's
CustomerMetadataProperties take strings of letters, digits, spaces and _.:/=+-@ only.

One more set of keys is named where it is made, and written beside these: the recipe
values, one per recipe parameter under its flag's name (`steps.recipes.RecipeParameter.dest`:
epochs, learning_rate, ...).
"""
from __future__ import annotations

# Written by the pipeline when it registers the model.
RECIPE = "recipe"
BASE_MODEL = "base_model"
CHECKPOINT_S3_URI = "checkpoint_s3_uri"
TRAINING_JOB = "training_job"
TRAIN_RECORDS = "train_records"
VALIDATION_RECORDS = "validation_records"
EVAL_RECORDS = "eval_records"
EVAL_DATA_S3_URI = "eval_data_s3_uri"
REWARD_LAMBDA_ARN = "reward_lambda_arn"
ACCURACY = "accuracy"
BASELINE_ACCURACY = "baseline_accuracy"
ACCURACY_THRESHOLD = "accuracy_threshold"  # with the two above, the gate's figures the approval hook checks
TRAINING_INSTANCE_TYPE = "training_instance_type"
TRAINING_INSTANCE_COUNT = "training_instance_count"
TRAINING_BILLABLE_SECONDS = "training_billable_seconds"
EVALUATION_INSTANCE_TYPE = "evaluation_instance_type"
PIPELINE_EXECUTION_ARN = "pipeline_execution_arn"
# How the model was trained: SFT, DPO, RFT, or "SFT then DPO" when training started from an
# approved package's checkpoint (its ARN under SOURCE_MODEL_PACKAGE_ARN: the lineage). Metadata
# values allow no ">"; scripts/report.py shows "SFT -> DPO".
TECHNIQUE = "technique"
SOURCE_MODEL_PACKAGE_ARN = "source_model_package_arn"
# DPO: the training questions the model answered, and how many it got right (no pair made);
# TRAIN_RECORDS holds the pairs it trained on.
TRAINING_QUESTIONS = "training_questions"
TRAINING_ANSWERS_RIGHT = "training_answers_right"
# The preparation step's cost estimate (steps.estimate), beside what was billed: key -> the
# estimate's field. scripts/report.py prices every job of the execution.
ESTIMATED_TRAINING_HOURS = "estimated_training_hours"
ESTIMATED_TRAINING_COST_USD = "estimated_training_cost_usd"
ESTIMATED_EVALUATION_COST_USD = "estimated_evaluation_cost_usd"
TRAINING_PRICE_PER_HOUR_USD = "training_price_per_hour_usd"
EVALUATION_PRICE_PER_HOUR_USD = "evaluation_price_per_hour_usd"
REGISTRY_FIELDS = {
    ESTIMATED_TRAINING_HOURS: "training_hours",
    ESTIMATED_TRAINING_COST_USD: "training_cost_usd",
    ESTIMATED_EVALUATION_COST_USD: "evaluation_cost_usd",
    TRAINING_PRICE_PER_HOUR_USD: "price_per_hour_usd",
    EVALUATION_PRICE_PER_HOUR_USD: "evaluation_price_per_hour_usd",
}

# Written onto the package a serverless job registered, by the gate's steps (steps.model_package).
PLATFORM = "platform"
BASE_MODEL_ARN = "base_model_arn"
TRAINING_TYPE = "training_type"
PRIMARY_METRIC = "primary_metric"
EVALUATION_S3_URI = "evaluation_s3_uri"
REWARD_EVALUATOR_ARN = "reward_evaluator_arn"

# Written by the Bedrock import (scripts.import_to_bedrock) as it goes.
BEDROCK_IMPORT_STATUS = "bedrock_import_status"
BEDROCK_IMPORT_ERROR = "bedrock_import_error"
BEDROCK_IMPORT_SOURCE = "bedrock_import_source"
BEDROCK_IMPORT_CLAIM = "bedrock_import_claim"
BEDROCK_MODEL_ARN = "bedrock_model_arn"
BEDROCK_DEPLOYMENT_ARN = "bedrock_deployment_arn"
BEDROCK_PROVISIONED_MODEL_ARN = "bedrock_provisioned_model_arn"
BEDROCK_SMOKE_TEST = "bedrock_smoke_test"
# ... and, for an open-weights model served on a SageMaker endpoint (scripts/sagemaker_endpoint.py):
# the endpoint's name (also its endpoint config's and model's) and the inference component asked.
SAGEMAKER_ENDPOINT_NAME = "sagemaker_endpoint_name"
SAGEMAKER_INFERENCE_COMPONENT = "sagemaker_inference_component"

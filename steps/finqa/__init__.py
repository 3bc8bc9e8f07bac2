"""Everything the project knows about FinQA: records, prompts, programs, answers.

Imported by every step that needs it; nothing here imports the SageMaker SDK.
"""

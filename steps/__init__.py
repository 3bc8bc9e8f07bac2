"""Code that runs inside the SageMaker jobs: plain Python, runnable locally on files."""

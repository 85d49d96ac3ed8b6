"""jumpstream: stream tokens from a SageMaker JumpStart LLM through a Lambda function URL."""
